"""`make chaos`: replay a large sample through the embedded profile while SIGKILLing its processes
at random points and deleting posts at the source, then prove that nothing was lost, nothing
doubled and nothing deleted survived (issue 12; deletions: issue 19 item 4).

Why this exists: the supervisor's tests kill each stage once or twice on a few thousand lines. The
promises (at-least-once on the stream, exactly one row per post in `posts_hot` and `posts`, every
malformed line dead-lettered, every window counting exactly its posts, a deleted post gone from
everything) are about every crash at any point, so this driver kills the producer, delivery,
consumer and the Dagster runs of the backfill many times over a replay of 100,000 posts and counts
the outcome from the stores themselves:

1. a seeded sample (`devtools.sample`, with its re-deliveries and malformed lines) is written, and
   what it should give is computed in this process with the hot path's own parser; a seeded 3%
   of its posts is deleted at the source (`DeletionPlan`: a third by tombstones put on the stream
   before the replay reaches their posts, a third by tombstones put on the stream at random
   points of the replay, a third by `musicnft forget --ids-file` at the end);
2. `musicnft run --fresh --file SAMPLE --exit-when-done` replays it (with deletions planned, the
   driver empties the data directory itself and puts the `before` tombstones on the new stream
   first, then runs it without `--fresh`, which would remove them); at random points of the replay
   (drawn from the seed) one stage process is SIGKILLed. The supervisor restarts delivery and
   consumer; a killed producer ends the run (a file replay has no resume position), so the driver
   starts `musicnft run` again without `--fresh`, which replays the file from its first line:
   the stream gets everything again (every deleted post again after its tombstone) and the
   pipeline must absorb the repeats;
3. `musicnft backfill` over the sample's range runs through Dagster (its own webserver and
   daemon); the run worker executing the windows is SIGKILLed at random points of its life.
   Dagster records the killed run as failed and retries it (dagster.yaml's run_retries); a backfill
   that still fails is started again until one completes;
4. `musicnft forget --ids-file --rebuild` deletes the last third (and applies every tombstone the
   consumer recorded), then the daily sweep's full purge of the lake runs once;
5. the lake's unique post ids (its raw/ files as they are on disk), `posts_hot`, `posts` (read-only
   warehouse queries), `window_metrics_15m` per window, the window tables' keys, the dead-letter
   files, `musicnft status --json` and the Dagster instance's runs are compared with the input.

`--profile cloud` (or `both`) does steps 1-2 (without the deletions) with MUSICNFT_PROFILE=cloud on
moto server (Kinesis, S3) and the BigQuery emulator, each behind a `devtools.fault_proxy.FaultProxy`:
Kinesis throttled all along, then down for 60 s, then BigQuery down for 60 s, during a paced
replay of `--cloud-posts` posts while `--cloud-kills` stage processes are SIGKILLed (`CloudChaos`);
its windows are materialized by `backfill --no-dagster`.

The result is a `ChaosResult` (the shortened tests in tests/app/test_chaos.py check it) and one
table on stdout; the exit code is 1 when a post was lost or doubled, a deleted post survived, a
window counted wrong, a run was left started, or a malformed line was not dead-lettered.

    python -m musicnft.devtools.chaos [--profile embedded|cloud|both] [--posts N] [--kills K]
        [--seed S] [--speed max|N] [--delete-share F] [--cloud-posts N] [--cloud-kills K]
        [--kinesis-outage S] [--bq-outage S]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from musicnft import wiring
from musicnft.adapters.local_stream import LocalStream
from musicnft.app import proctree
from musicnft.app.processes import child_env, stage_command
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.lake_layout import RAW_PREFIX
from musicnft.contract.schema import encode_record
from musicnft.contract.tombstone import Tombstone
from musicnft.contract.windows import window_start
from musicnft.devtools.fault_proxy import (
    FaultProxy,
    any_request,
    google_unavailable,
    kinesis_request,
    kinesis_throttled,
    kinesis_unavailable,
)
from musicnft.devtools.moto_state import reset_moto
from musicnft.devtools.sample import write_sample
from musicnft.hotpath.decode import ControlMessage, RejectedRecord
from musicnft.hotpath.normalize_x import normalize_x_line
from musicnft.settings import Settings
from producer.replay import iter_lines

STREAM_STAGES = ("produce", "deliver", "consume")
STAGE_WEIGHTS = {"produce": 0.15, "deliver": 0.425, "consume": 0.425}
# The sample's posts per hour of post time: 100,000 posts span about a day (about 100 windows),
# not the shipped sample's two weeks, so the backfill stays minutes long on a small machine.
POSTS_PER_HOUR = 4000.0
# Well-formed unique posts per sample line (the rest: re-deliveries, malformed, keep-alives).
UNIQUE_SHARE = 0.96
RUN_TIMEOUT = 3600.0  # one `musicnft run` attempt longer than this is a failure of its own
WINDOW = timedelta(minutes=15)
BACKFILL_TIMEOUT = 3600.0  # one `musicnft backfill` attempt longer than this is stopped
RUN_WORKER_MARK = "spawn_main"  # argv of a Dagster run worker (the code server's spawned child)
# A run in one of these states needs a live worker: once the backfill's Dagster has stopped, one
# left here is a run whose death nobody recorded. (QUEUED / NOT_STARTED runs, such as those the
# sensors ask for while the backfill runs, wait for the next daemon: nothing is lost.)
RUNNING_RUNS = ("STARTING", "STARTED", "CANCELING")


# ---- what the input should give ------------------------------------------------------------


@dataclass
class Expected:
    """What a replay file should produce, computed with the hot path's own parser."""

    ids: set[str] = field(default_factory=set)  # unique valid post ids
    valid: int = 0  # valid post lines, re-deliveries included
    malformed: set[str] = field(default_factory=set)  # refs ("file:line") of rejected lines
    first: datetime | None = None
    last: datetime | None = None
    order: list[str] = field(default_factory=list)  # unique ids, in the file's order
    window_of: dict[str, datetime] = field(default_factory=dict)  # post id -> its 15-minute window

    def window_counts(self, without: Collection[str] = ()) -> dict[datetime, int]:
        """Posts per window (what window_metrics_15m's `all` rows must count), less `without`."""
        out: dict[datetime, int] = {}
        for pid, w in self.window_of.items():
            if pid not in without:
                out[w] = out.get(w, 0) + 1
        return out


def expected_from(path: Path, keywords: tuple[str, ...], max_record_bytes: int) -> Expected:
    matcher = KeywordMatcher(keywords)
    now = datetime.now(UTC)
    out = Expected()
    for ref, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            post = normalize_x_line(line, matcher, now)
        except ControlMessage:
            continue
        except RejectedRecord:
            out.malformed.add(ref)
            continue
        if len(encode_record(post)) > max_record_bytes:
            out.malformed.add(ref)
            continue
        out.valid += 1
        pid = str(post["post_id"])
        created = post["created_at"]
        if pid not in out.ids:
            out.ids.add(pid)
            out.order.append(pid)
            out.window_of[pid] = window_start(created)
        out.first = created if out.first is None else min(out.first, created)
        out.last = created if out.last is None else max(out.last, created)
    return out


# ---- which posts are deleted, and when ------------------------------------------------------

DELETE_SHARE = 0.03  # share of the unique posts deleted at the source during the run
TOMBSTONE_SOURCE = "x_compliance"  # X's compliance events name X posts (the sample's)


@dataclass
class DeletionPlan:
    """The posts the run deletes (issue 19 item 4), drawn from the seed, a third each:

    - `before`: tombstones put on the stream as soon as the first replay starts, for posts of
      the file's second half (the replay reaches them later: each arrives after its tombstone);
    - `during`: tombstones put on the stream at random points of the replay, interleaved with
      the SIGKILLs (their posts may be on the stream already or not yet);
    - `after`: `musicnft forget --ids-file` once the posts are in the lake, `posts_hot`, `posts`
      and the windows (half the ids as X writes them, half with our `x:` prefix).

    A replay after a producer kill sends every post again: every `before` and `during` post then
    also arrives (again) after its tombstone."""

    before: list[str] = field(default_factory=list)
    during: list[tuple[float, list[str]]] = field(default_factory=list)  # (replay progress, ids)
    after: list[str] = field(default_factory=list)

    @property
    def ids(self) -> set[str]:
        return {*self.before, *(i for _, chunk in self.during for i in chunk), *self.after}

    @property
    def during_ids(self) -> list[str]:
        return [i for _, chunk in self.during for i in chunk]


def plan_deletions(expected: Expected, share: float, seed: int) -> DeletionPlan:
    rng = random.Random(f"deletions-{seed}")  # apart from the kill plan's draws
    order = expected.order
    third = round(len(order) * share / 3)
    if third == 0:
        return DeletionPlan()
    before = rng.sample(order[len(order) // 2 :], third)
    taken = set(before)
    others = rng.sample([p for p in order if p not in taken], 2 * third)
    during_ids, after = others[:third], others[third:]
    chunks = min(4, len(during_ids))
    points = sorted(rng.uniform(0.1, 0.9) for _ in range(chunks))
    during = [(at, during_ids[i::chunks]) for i, at in enumerate(points)]
    return DeletionPlan(before, during, after)


def tombstone_records(post_ids: Collection[str]) -> list[tuple[str, bytes]]:
    now = datetime.now(UTC)
    stones = (Tombstone(pid, None, "delete", TOMBSTONE_SOURCE, now) for pid in post_ids)
    return [(t.partition_key, t.to_stream_record()) for t in stones]


# ---- the result ------------------------------------------------------------------------------


@dataclass
class Kill:
    stage: str
    pid: int
    at: float  # seconds since the chaos run started
    outage: float | None = None  # seconds until a process of the stage ran again


@dataclass
class ChaosResult:
    profile: str
    lines: int
    input_unique: int
    input_malformed: int
    lake_unique: int
    posts_hot_rows: int
    posts_hot_unique: int
    posts_rows: int
    posts_unique: int
    lost: int  # input posts missing from the lake, posts_hot or posts (the worst of the three)
    doubled: int  # extra rows in posts_hot and posts beyond one per post
    unexpected: int  # post ids in a table that the input does not hold
    dead_lettered: int  # distinct input lines in the dead-letter files
    not_dead_lettered: int  # malformed input lines found in no dead-letter file
    kills: list[Kill]
    run_attempts: int
    run_exit_codes: list[int]
    backfill_exit_code: int
    wall_seconds: float
    faults: dict[str, float] = field(default_factory=dict)  # cloud: outage seconds, throttles
    # deletions (issue 19 item 4): how many of each kind, and what the stores still show
    deleted_before: int = 0
    deleted_during: int = 0
    deleted_after: int = 0
    tombstones_before_posts: int = 0  # `before` tombstones on the stream before their post
    deleted_visible: int = 0  # deleted ids still in the lake's raw/ files, posts_hot or posts
    status_deleted: int | None = None  # `musicnft status --json`'s `deleted`, after the purge
    status_deleted_pending: int | None = None  # its `deleted_pending` (must be 0)
    forget_exit_code: int = 0
    # windows (embedded): windows whose `all` post_count differs from the input less the deleted
    # posts (a killed Dagster run that left a window short or stale), and rows beyond one per
    # key in the window tables; None when not measured
    windows_checked: int | None = None
    windows_wrong: int | None = None
    window_duplicate_rows: int | None = None
    dagster_runs: dict[str, int] = field(default_factory=dict)  # status -> runs in the instance

    @property
    def deleted(self) -> int:
        return self.deleted_before + self.deleted_during + self.deleted_after

    @property
    def dagster_unfinished(self) -> int:
        """Runs left started with no worker (a killed run Dagster did not record as failed)."""
        return sum(n for k, n in self.dagster_runs.items() if k in RUNNING_RUNS)

    @property
    def fault_outage_seconds(self) -> float:
        return sum(v for k, v in self.faults.items() if k.endswith("outage_s"))

    @property
    def kills_survived(self) -> int:
        return sum(1 for k in self.kills if k.outage is not None)

    @property
    def outage_seconds(self) -> float:
        return sum(k.outage or 0.0 for k in self.kills) + self.fault_outage_seconds

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.doubled == 0
            and self.unexpected == 0
            and self.not_dead_lettered == 0
            and self.backfill_exit_code == 0
            and self.deleted_visible == 0
            and self.forget_exit_code == 0
            and not self.status_deleted_pending
            and not self.windows_wrong
            and not self.window_duplicate_rows
            and self.dagster_unfinished == 0
        )

    def kills_by_stage(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for k in self.kills:
            out[k.stage] = out.get(k.stage, 0) + 1
        return out


def format_table(results: list[ChaosResult]) -> str:
    rows: list[tuple[str, ...]] = [
        ("profile", *(r.profile for r in results)),
        ("posts in (unique, valid)", *(f"{r.input_unique:,}" for r in results)),
        (
            "kills survived / made",
            *(f"{r.kills_survived} / {len(r.kills)}" for r in results),
        ),
        (
            "  by stage",
            *(
                " ".join(f"{s}={n}" for s, n in sorted(r.kills_by_stage().items())) or "-"
                for r in results
            ),
        ),
        ("outage seconds", *(f"{r.outage_seconds:,.1f}" for r in results)),
        (
            "  Kinesis / BigQuery down (s)",
            *(
                f"{r.faults['kinesis_outage_s']:,.0f} / {r.faults['bigquery_outage_s']:,.0f}"
                if r.faults
                else "-"
                for r in results
            ),
        ),
        (
            "  Kinesis calls+records throttled",
            *(f"{r.faults['kinesis_throttled']:,.0f}" if r.faults else "-" for r in results),
        ),
        (
            "deleted (before / during / after)",
            *(
                f"{r.deleted:,} ({r.deleted_before:,} / {r.deleted_during:,} / {r.deleted_after:,})"
                for r in results
            ),
        ),
        (
            "  tombstone before its post",
            *(f"{r.tombstones_before_posts:,}" for r in results),
        ),
        ("deleted still visible (must be 0)", *(f"{r.deleted_visible:,}" for r in results)),
        (
            "status deleted / pending (must be 0)",
            *(
                "-"
                if r.status_deleted is None
                else f"{r.status_deleted:,} / {r.status_deleted_pending:,}"
                for r in results
            ),
        ),
        ("posts lost (must be 0)", *(f"{r.lost:,}" for r in results)),
        ("posts doubled (must be 0)", *(f"{r.doubled:,}" for r in results)),
        ("unexpected post ids (must be 0)", *(f"{r.unexpected:,}" for r in results)),
        (
            "dead-lettered / malformed in",
            *(f"{r.dead_lettered:,} / {r.input_malformed:,}" for r in results),
        ),
        ("malformed not dead-lettered", *(f"{r.not_dead_lettered:,}" for r in results)),
        (
            "lake / posts_hot / posts unique",
            *(f"{r.lake_unique:,} / {r.posts_hot_unique:,} / {r.posts_unique:,}" for r in results),
        ),
        (
            "windows wrong / checked (must be 0)",
            *(
                "-" if r.windows_checked is None else f"{r.windows_wrong:,} / {r.windows_checked:,}"
                for r in results
            ),
        ),
        (
            "duplicate window rows (must be 0)",
            *(
                "-" if r.window_duplicate_rows is None else f"{r.window_duplicate_rows:,}"
                for r in results
            ),
        ),
        (
            "Dagster runs",
            *(
                " ".join(f"{k.lower()}={n}" for k, n in sorted(r.dagster_runs.items())) or "-"
                for r in results
            ),
        ),
        ("run attempts (exit codes)", *(f"{r.run_attempts} {r.run_exit_codes}" for r in results)),
        ("wall time", *(f"{r.wall_seconds / 60:,.1f} min" for r in results)),
        ("verdict", *("PASS" if r.ok else "FAIL" for r in results)),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                  enumerate(zip(row, widths, strict=True)))
        for row in rows
    )  # fmt: skip


# ---- processes -----------------------------------------------------------------------------


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


def stage_pids(root: int) -> dict[str, int]:
    """stage -> pid of the supervisor's live stage processes (by their `musicnft STAGE` argv)."""
    found: dict[str, int] = {}
    for proc in proctree.descendants(root):
        if proc.state == "Z":
            continue
        argv = _argv(proc.pid)
        if "musicnft" in argv and len(argv) > argv.index("musicnft") + 1:
            stage = argv[argv.index("musicnft") + 1]
            if stage in STREAM_STAGES:
                found[stage] = proc.pid
    return found


def run_worker_pids(root: int) -> list[int]:
    """The live Dagster run workers below `root` (`musicnft backfill` -> dagster-daemon -> its
    code server -> one multiprocessing child per run, which executes the run's steps)."""
    found = []
    for proc in proctree.descendants(root):
        if proc.state != "Z" and any(RUN_WORKER_MARK in arg for arg in _argv(proc.pid)):
            found.append(proc.pid)
    return found


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


def _appended(stream: Path) -> int:
    if not stream.exists():
        return 0
    try:
        with LocalStream(stream, readers=()) as s:
            return int(s.total_appended())
    except Exception:  # the file may be mid-creation: progress is only a trigger here
        return 0


# ---- the embedded run ----------------------------------------------------------------------


class EmbeddedChaos:
    def __init__(
        self,
        sample: Path,
        expected: Expected,
        data_dir: Path,
        kills: int,
        seed: int,
        speed: str,
        log_path: Path,
        batch_kills: int | None = None,
        deletions: DeletionPlan | None = None,
    ) -> None:
        self.sample = sample
        self.expected = expected
        self.deletions = deletions or DeletionPlan()
        self.before_due = bool(self.deletions.before)
        self.during_due = list(self.deletions.during)
        self.tombstones_before_posts = 0
        self.forget_rc = 0
        self.pending_runs: list[Kill] = []  # killed Dagster runs whose successor has not started
        self.attempt_started = time.monotonic()
        self.in_process_backfill = False  # True: `backfill --no-dagster`, no run to kill
        self.run_seconds = 20.0  # a Dagster run worker's life: a guess until one has lived it
        self.data_dir = data_dir
        self.rng = random.Random(seed)
        self.speed = speed
        self.log_path = log_path
        self.t0 = time.monotonic()
        self.kills: list[Kill] = []
        self.batch_kills = max(1, kills // 8) if batch_kills is None else batch_kills
        stream_kills = max(0, kills - self.batch_kills)
        producer_cap = max(1, stream_kills // 6)
        # The plan: (fraction of the current attempt's replay, stage), in order.
        plan: list[tuple[float, str]] = []
        produce = 0
        for at in sorted(self.rng.uniform(0.03, 0.97) for _ in range(stream_kills)):
            stages, weights = zip(*STAGE_WEIGHTS.items(), strict=True)
            stage = self.rng.choices(stages, weights)[0]
            if stage == "produce":
                if produce >= producer_cap:
                    stage = self.rng.choice(("deliver", "consume"))
                else:
                    produce += 1
            plan.append((at, stage))
        # every stage dies at least once when there are kills enough for each
        for stage in STREAM_STAGES:
            counts = {s: sum(1 for _, t in plan if t == s) for s in STREAM_STAGES}
            if counts[stage] == 0 and len(plan) >= len(STREAM_STAGES):
                spare = [i for i, (_, t) in enumerate(plan) if counts[t] > 1]
                i = self.rng.choice(spare)
                plan[i] = (plan[i][0], stage)
        # Producer kills are kept apart, due in the first 70% of an attempt's replay (a replay at
        # `max` can end between two looks at its progress): each one is made, if need be in a
        # further replay; the others follow the replay's progress in order.
        self.producer_plan = [at * 0.7 for at, stage in plan if stage == "produce"]
        self.plan = [(at, stage) for at, stage in plan if stage != "produce"]
        self.settings = Settings.from_env().with_data_dir(data_dir)
        # many small lake files: many points to die between (the children read these through
        # their own settings; this process never reads its environment for configuration)
        self.env = child_env(
            self.settings,
            MUSICNFT_DELIVERY_BUFFER_BYTES="1000000",
            MUSICNFT_DELIVERY_BUFFER_SECONDS="1",
            # Lambda-sized batches: each insert is a DuckLake snapshot and file, so batches of
            # 100 make a 100,000-post replay crawl on a small machine (see the README)
            MUSICNFT_CONSUMER_BATCH_SIZE="500",
            DAGSTER_DISABLE_TELEMETRY="1",
        )

    def _now(self) -> float:
        return time.monotonic() - self.t0

    def _log(self, message: str) -> None:
        print(f"chaos [{self._now():7.1f}s] {message}", file=sys.stderr, flush=True)

    def _record_kill(self, stage: str, pid: int) -> Kill | None:
        if not _kill(pid):
            return None
        kill = Kill(stage, pid, self._now())
        self.kills.append(kill)
        self._log(f"SIGKILL {stage} (pid {pid}), kill {len(self.kills)}")
        return kill

    # -- the stream stages --------------------------------------------------------------------
    def _attempt(self, fresh: bool, pending: list[Kill]) -> int:
        """One `musicnft run`; kills from the plan as its replay passes their points. Returns
        its exit code. `pending`: kills whose stage has not come back yet (across attempts)."""
        cmd = stage_command(
            "run", "--file", str(self.sample), "--speed", self.speed, "--exit-when-done",
            "--max-restarts", "1000",
        )  # fmt: skip
        if fresh:
            cmd.append("--fresh")
        stream = self.settings.stream_path
        base = 0 if fresh else _appended(stream)
        target = max(1, self.expected.valid)
        seen: dict[int, float] = {}  # pid -> first seen (a process is killed after it ran a bit)
        min_age = self.rng.uniform(0.2, 1.5)
        with open(self.log_path, "ab") as log:
            run = subprocess.Popen(
                cmd, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + RUN_TIMEOUT
        self.attempt_started = time.monotonic()
        last_poll = 0.0
        progress = 0.0
        try:
            while run.poll() is None and time.monotonic() < deadline:
                procs = stage_pids(run.pid)
                now = self._now()
                for live in procs.values():
                    seen.setdefault(live, now)
                for kill in list(pending):
                    back = procs.get(kill.stage)
                    if back is not None and back != kill.pid:
                        kill.outage = now - kill.at
                        pending.remove(kill)
                if time.monotonic() - last_poll > 0.2:
                    last_poll = time.monotonic()
                    progress = self._progress(stream, base, target)
                    self._tombstones(progress)
                producer = procs.get("produce")
                if (
                    self.producer_plan
                    and producer is not None
                    and progress >= self.producer_plan[0]
                ):
                    made = self._record_kill("produce", producer)
                    if made is not None:
                        pending.append(made)
                        self.producer_plan.pop(0)
                        # ends this run; its producer is not started again in it
                if self.plan:
                    at, stage = self.plan[0]
                    draining = "produce" not in procs and progress > 0.5
                    alive = [s for s in ("deliver", "consume") if s in procs]
                    died = any(k.stage == stage for k in self.kills)
                    if draining and stage not in procs and alive and died:
                        # the replay is over (or that stage has drained): kill a drain process;
                        # a stage that never died yet waits for the next replay instead
                        stage = self.rng.choice(alive)
                    victim = procs.get(stage)
                    blocked = any(k.stage == stage for k in pending)
                    due = progress >= at or draining
                    ripe = victim is not None and now - seen[victim] >= min_age
                    if due and victim is not None and ripe and not blocked:
                        made = self._record_kill(stage, victim)
                        if made is not None:
                            pending.append(made)
                            self.plan.pop(0)
                            min_age = self.rng.uniform(0.2, 1.5)
                self._tick()
                time.sleep(0.1)
            if run.poll() is None:
                self._log(f"musicnft run did not end within {RUN_TIMEOUT:.0f}s: stopping it")
                proctree.stop_group(run, signal.SIGTERM, 30.0, "musicnft run")
        finally:
            if run.poll() is None:  # an exception here (Ctrl-C): nothing outlives the driver
                proctree.stop_group(run, signal.SIGKILL, 5.0, "musicnft run")
            run.wait()
        return int(run.returncode)

    def _drain(self) -> None:
        for stage in ("deliver", "consume"):
            with open(self.log_path, "ab") as log:
                rc = subprocess.run(
                    stage_command(stage, "--once"), env=self.env, stdout=log, stderr=log
                ).returncode
            self._log(f"musicnft {stage} --once exited {rc}")

    def _progress(self, stream: Path, base: int, target: int) -> float:
        """How far the current attempt's replay is (0..1): records it put on the stream."""
        return (_appended(stream) - base) / target

    def _put_tombstones(self, post_ids: Collection[str]) -> None:
        """Tombstones on the stream beside the producer's posts, as a second writer would put
        them (Bluesky's delete events come from the producer; X's compliance events likewise)."""
        with LocalStream(
            self.settings.stream_path, shards=self.settings.stream_shards, readers=()
        ) as s:
            s.put_records(tombstone_records(post_ids))

    def _tombstones(self, progress: float) -> None:
        """The deletion plan's `during` tombstones that are due at this point of the replay."""
        while self.during_due and progress >= self.during_due[0][0]:
            _, ids = self.during_due.pop(0)
            self._put_tombstones(ids)
            self._log(f"{len(ids)} tombstones on the stream at {progress:.0%} of the replay")

    def _tick(self) -> None:
        """Called about ten times a second during a run (the cloud profile's faults)."""

    def _before_tombstones_first(self) -> None:
        """The plan's `before` tombstones on a new, empty stream, ahead of every post.

        The data directory is removed first: what the first run's `--fresh` would remove, and
        the rest (this driver owns it). Put once the fresh run was producing, as they were, a
        replay at `max` speed could be over before this driver looked again: 0 of 30 tombstones
        landed before their posts once Python's bytecode caches made the stages start faster."""
        shutil.rmtree(self.data_dir, ignore_errors=True)
        stream = self.settings.stream_path
        # (a post's first record comes at or after its rank among the unique posts: those ranked
        # at or past what the stream held before the put certainly come after their tombstone)
        appended = _appended(stream)
        self._put_tombstones(self.deletions.before)
        self.before_due = False
        position = {pid: i for i, pid in enumerate(self.expected.order)}
        self.tombstones_before_posts = sum(
            1 for pid in self.deletions.before if position[pid] >= appended
        )
        self._log(
            f"{len(self.deletions.before)} tombstones on the new stream before the replay "
            f"(before their posts: {self.tombstones_before_posts}; {appended:,} records before)"
        )

    def replay(self) -> list[int]:
        codes: list[int] = []
        pending: list[Kill] = []
        fresh = True
        if self.before_due:
            self._before_tombstones_first()
            fresh = False  # `--fresh` would remove them; the data directory is new already
        max_attempts = 2 + len(self.producer_plan) * 2
        while len(codes) < max_attempts:
            producer_kills_due = len(self.producer_plan)
            rc = self._attempt(fresh, pending)
            codes.append(rc)
            if len(self.producer_plan) < producer_kills_due:
                # the replay a killed producer needs is owed whatever the budget went on
                # before: replays at `max` can end before the kill point (seen in CI: three
                # replays, the producer killed in the fourth, the last attempt; its kill counted
                # as not survived though every post was there)
                max_attempts = max(max_attempts, len(codes) + 1)
            self._log(f"musicnft run exited {rc}")
            fresh = False
            producer_killed = any(k.stage == "produce" for k in pending)
            if rc == 3:
                # not drained within the supervisor's drain timeout (a slow consumer on a busy
                # machine): finish as its message says, without replaying the file again
                self._drain()
            if rc in (0, 3) and not producer_killed and not self.producer_plan:
                if self.plan and len(codes) < max_attempts:
                    # the replay (at `max`, faster than this driver looks) or a stage's drain
                    # ended before these kill points: one more replay to make them in
                    due = ", ".join(stage for _, stage in self.plan)
                    self._log(f"kills not made yet ({due}): replaying again")
                    continue
                break
            # a killed producer ends its run (exit 1): the next run replays the file again; so
            # does a producer kill not yet made (its replay ended first)
        if self.during_due:  # the replay ended before their points: now
            ids = [i for _, chunk in self.during_due for i in chunk]
            self._put_tombstones(ids)
            self.during_due = []
            self._log(f"{len(ids)} tombstones on the stream after the replay ended")
            self._drain()
        now = self._now()
        for kill in pending:  # stages that never came back within the replay
            if kill.stage != "produce":
                kill.outage = None
            else:
                kill.outage = now - kill.at if codes and codes[-1] == 0 else None
        return codes

    # -- the batch path -----------------------------------------------------------------------
    def _range(self) -> tuple[datetime, datetime]:
        exp = self.expected
        assert exp.first is not None and exp.last is not None
        return window_start(exp.first), window_start(exp.last) + WINDOW

    def backfill(self) -> int:
        """`musicnft backfill` over the sample's range, through Dagster (its own webserver and
        daemon; the daemon's code server runs each run in a child process): the run workers are
        SIGKILLed at random points of their lives, `batch_kills` times in all. Dagster records a
        killed run as failed and retries it once (run_retries); a backfill whose run failed for
        good exits 1 and is started again until one completes."""
        start, end = self._range()
        cmd = stage_command("backfill", "--start", start.isoformat(), "--end", end.isoformat())
        if self.in_process_backfill:
            cmd.append("--no-dagster")
        made = attempts = 0
        while True:
            attempts += 1
            rc, made = self._backfill_attempt(cmd, made)
            self._log(
                f"musicnft backfill exited {rc} ({made} of {self.batch_kills} run kills made)"
            )
            if rc == 0 and made and attempts <= self.batch_kills * 2:
                made -= self._uncount_late_run_kills(made)
            if rc == 0 and (made >= self.batch_kills or attempts > self.batch_kills * 2):
                return rc
            if rc != 0 and attempts > self.batch_kills * 3 + 2:
                return rc
            # failed (its runs killed): run it again; or it finished before its kills were made

    def _uncount_late_run_kills(self, made: int) -> int:
        """How many of the `made` run kills came too late, now taken back: a run worker still
        alive after its run finished (writing its last events, exiting) can be SIGKILLed, and its
        run rightly stays SUCCESS, so no run was killed. The instance has one FAILURE per kill
        of a live run; kills beyond that are forgotten (the latest first) and made again on the
        next backfill's runs."""
        late = made - self.dagster_runs().get("FAILURE", 0)
        for _ in range(max(0, late)):
            kill = next(k for k in reversed(self.kills) if k.stage == "dagster-run")
            self.kills.remove(kill)
            if kill in self.pending_runs:
                self.pending_runs.remove(kill)
            self._log(
                f"SIGKILL of dagster-run pid {kill.pid} came after its run had finished (no "
                "failed run in the instance): not counted, the next backfill's run is killed"
            )
        return max(0, late)

    def _backfill_attempt(self, cmd: list[str], made: int) -> tuple[int, int]:
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        seen: dict[int, float] = {}  # run worker pid -> first seen (monotonic)
        delay = self.rng.uniform(0.5, max(2.0, 0.9 * self.run_seconds))
        try:
            while proc.poll() is None and time.monotonic() - began < BACKFILL_TIMEOUT:
                workers = run_worker_pids(proc.pid)
                for pid in set(seen) - set(workers):  # ended by itself: how long runs live
                    if not any(k.pid == pid for k in self.kills):
                        self.run_seconds = max(2.0, time.monotonic() - seen[pid])
                    seen.pop(pid)
                for pid in workers:
                    seen.setdefault(pid, time.monotonic())
                    for kill in list(self.pending_runs):
                        if pid != kill.pid:  # a run worker again: the retry or the next backfill
                            kill.outage = self._now() - kill.at
                            self.pending_runs.remove(kill)
                if made < self.batch_kills:
                    for pid in workers:
                        if time.monotonic() - seen[pid] >= delay:
                            killed = self._record_kill("dagster-run", pid)
                            if killed is not None:
                                made += 1
                                self.pending_runs.append(killed)
                                delay = self.rng.uniform(0.5, max(2.0, 0.9 * self.run_seconds))
                            break
                time.sleep(0.1)
            if proc.poll() is None:
                self._log(f"musicnft backfill did not end within {BACKFILL_TIMEOUT:.0f}s: stopping")
                proctree.stop_group(proc, signal.SIGINT, 90.0, "musicnft backfill")
        finally:
            if proc.poll() is None:  # Ctrl-C of the driver: stop it (it stops its Dagster)
                proctree.stop_group(proc, signal.SIGINT, 90.0, "musicnft backfill")
            proc.wait()
        return int(proc.returncode), made

    # -- deletions after the posts landed, the purge, the proof --------------------------------
    def forget_after(self) -> int:
        """`musicnft forget --ids-file` for the `after` posts (in the lake, posts_hot, posts and
        the windows by now), re-materializing the windows it touched (`--rebuild`): the purge
        pass also applies every stream tombstone the consumer recorded."""
        if not self.deletions.ids:
            return 0
        ids_file = self.log_path.parent / "forget.txt"
        lines = [
            pid.removeprefix("x:") if i % 2 else pid for i, pid in enumerate(self.deletions.after)
        ]
        ids_file.write_text("# chaos run: deleted at the source\n" + "\n".join(lines) + "\n")
        with open(self.log_path, "ab") as log:
            rc = subprocess.run(
                stage_command("forget", "--ids-file", str(ids_file), "--rebuild"),
                env=self.env,
                stdout=log,
                stderr=log,
            ).returncode
        self._log(f"musicnft forget ({len(lines)} ids) exited {rc}")
        self.forget_rc = rc
        return rc

    def sweep(self) -> None:
        """The scheduled physical purge (the `deletions` asset's daily sweep: every raw/ and
        scored/ file against every tombstone), run once here, then the windows it names."""
        if not self.deletions.ids:
            return
        from musicnft.batch import window_pipeline as wp
        from musicnft.batch.backfill import materialize_windows
        from musicnft.batch.deletions import apply_deletions

        lake, warehouse = wiring.open_lake(self.settings), wiring.open_warehouse(self.settings)
        result = apply_deletions(lake, warehouse, full_scan=True)
        for chunk in wp.chunked(result.windows):
            materialize_windows(lake, warehouse, chunk, list(self.settings.keywords))
        self._log(
            f"deletions sweep: {len(result.files_rewritten)} lake file(s) rewritten, removed "
            f"{result.rows_removed}, {result.pending} pending, {len(result.windows)} window(s) "
            "re-materialized"
        )

    def status(self) -> dict[str, object]:
        with open(self.log_path, "ab") as log:
            out = subprocess.run(
                stage_command("status", "--json"), env=self.env, stdout=subprocess.PIPE, stderr=log
            )
        try:
            return dict(json.loads(out.stdout))
        except ValueError:
            self._log(f"musicnft status --json exited {out.returncode} without JSON")
            return {}

    def dagster_runs(self) -> dict[str, int]:
        """Runs in the instance by status, read once the backfill's Dagster has stopped: a
        killed run must end FAILURE, none left STARTED."""
        import dagster as dg

        home = self.settings.dagster_home or self.settings.data_dir / "dagster"
        if not (home / "dagster.yaml").exists():
            return {}
        out: dict[str, int] = {}
        with dg.DagsterInstance.from_config(str(home)) as instance:
            for run in instance.get_runs():
                out[run.status.value] = out.get(run.status.value, 0) + 1
        return out


# ---- the counts ------------------------------------------------------------------------------


def _lake_ids(settings: Settings) -> set[str]:
    import pyarrow.parquet as pq

    lake = wiring.open_lake(settings)
    ids: set[str] = set()
    for obj in lake.list_objects(RAW_PREFIX):
        if obj.key.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(lake.get(obj.key)), columns=["post_id"])
            ids.update(str(v) for v in table.column("post_id").to_pylist())
    return ids


def _table_ids(settings: Settings, table: str) -> tuple[int, set[str]]:
    warehouse = wiring.open_warehouse(settings, read_only=True)
    rows = warehouse.query(f"SELECT post_id FROM {table}").column("post_id").to_pylist()
    return len(rows), {str(v) for v in rows}


def _dead_letter_refs(directory: Path) -> Iterator[str]:
    for path in sorted(directory.glob("*.jsonl")) if directory.exists() else ():
        with open(path, "rb") as fh:
            for line in fh:
                try:
                    ref = json.loads(line).get("ref")
                except (ValueError, AttributeError):
                    continue
                if isinstance(ref, str):
                    yield ref


# Each window table's key: one row per key (more is a doubled window).
WINDOW_TABLE_KEYS = {
    "window_metrics_15m": ("window_start", "keyword"),
    "hashtag_counts_15m": ("window_start", "hashtag"),
    "location_counts_15m": ("window_start", "location"),
    "entity_metrics_15m": ("window_start", "entity"),
    "reconciliation_15m": ("window_start",),
}


def window_check(settings: Settings, expected: Expected, deleted: set[str]) -> tuple[int, int, int]:
    """(windows checked, windows whose `all` post_count in window_metrics_15m is not the number
    of input posts of that window less the deleted ones, rows beyond one per key in the window
    tables). A window a killed run left short, stale (still counting a deleted post) or
    doubled shows here."""
    warehouse = wiring.open_warehouse(settings, read_only=True)
    want = expected.window_counts(deleted)
    got: dict[datetime, int] = {}
    for row in warehouse.query(
        "SELECT window_start, post_count FROM window_metrics_15m WHERE keyword = 'all'"
    ).to_pylist():
        w = row["window_start"].astimezone(UTC)
        got[w] = got.get(w, 0) + int(row["post_count"] or 0)
    lo, hi = min(expected.window_of.values()), max(expected.window_of.values())
    checked = {w for w in want} | {w for w in got if lo <= w <= hi}
    wrong = sum(1 for w in checked if want.get(w, 0) != got.get(w, 0))
    extra = 0
    for table, key in WINDOW_TABLE_KEYS.items():
        cols = ", ".join(key)
        row = warehouse.query(
            f"SELECT (SELECT count(*) FROM {table}) - "
            f"(SELECT count(*) FROM (SELECT DISTINCT {cols} FROM {table})) AS extra"
        ).to_pylist()[0]
        extra += int(row["extra"] or 0)
    return len(checked), wrong, extra


def measure(
    settings: Settings,
    expected: Expected,
    lines: int,
    kills: list[Kill],
    codes: list[int],
    backfill_rc: int,
    wall: float,
    profile: str = "embedded",
    faults: dict[str, float] | None = None,
    deleted: set[str] | None = None,
    windows: bool = False,
) -> ChaosResult:
    lake = _lake_ids(settings)
    hot_rows, hot = _table_ids(settings, "posts_hot")
    posts_rows, posts = _table_ids(settings, "posts")
    gone = deleted or set()
    want = expected.ids - gone
    lost = max(len(want - lake), len(want - hot), len(want - posts))
    unexpected = len((lake | hot | posts) - expected.ids)
    refs = set(_dead_letter_refs(settings.dead_letter_dir))
    checked, wrong, extra = window_check(settings, expected, gone) if windows else (None,) * 3
    return ChaosResult(
        profile=profile,
        lines=lines,
        input_unique=len(expected.ids),
        input_malformed=len(expected.malformed),
        lake_unique=len(lake),
        posts_hot_rows=hot_rows,
        posts_hot_unique=len(hot),
        posts_rows=posts_rows,
        posts_unique=len(posts),
        lost=lost,
        doubled=(hot_rows - len(hot)) + (posts_rows - len(posts)),
        unexpected=unexpected,
        dead_lettered=len(refs & expected.malformed),
        not_dead_lettered=len(expected.malformed - refs),
        kills=kills,
        run_attempts=len(codes),
        run_exit_codes=codes,
        backfill_exit_code=backfill_rc,
        wall_seconds=wall,
        faults=faults or {},
        deleted_visible=len((lake | hot | posts) & gone),
        windows_checked=checked,
        windows_wrong=wrong,
        window_duplicate_rows=extra,
    )


def run_embedded(
    workdir: Path,
    posts: int = 100_000,
    kills: int = 24,
    seed: int = 12,
    speed: str = "max",
    batch_kills: int | None = None,
    delete_share: float = DELETE_SHARE,
) -> ChaosResult:
    """The embedded chaos run in `workdir` (sample, data dir, log): see the module docstring."""
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    sample = workdir / "sample.jsonl"
    lines = math.ceil(posts / UNIQUE_SHARE)
    write_sample(sample, lines=lines, seed=seed, posts_per_hour=POSTS_PER_HOUR)
    base = Settings.from_env()
    expected = expected_from(sample, base.keywords, base.max_record_bytes)
    plan = plan_deletions(expected, delete_share, seed)
    chaos = EmbeddedChaos(
        sample, expected, workdir / "data", kills, seed, speed, workdir / "run.log", batch_kills,
        plan,
    )  # fmt: skip
    chaos._log(
        f"sample: {lines:,} lines, {len(expected.ids):,} unique valid posts, "
        f"{len(expected.malformed):,} malformed; {len(chaos.plan) + len(chaos.producer_plan)} "
        f"stream kills planned, {chaos.batch_kills} Dagster run kills; {len(plan.ids):,} posts "
        f"deleted ({len(plan.before)} before, {len(plan.during_ids)} during, {len(plan.after)} "
        f"after); log {chaos.log_path}"
    )
    codes = chaos.replay()
    backfill_rc = chaos.backfill()
    chaos.forget_after()
    chaos.sweep()
    status = chaos.status()
    result = measure(
        chaos.settings, expected, lines, chaos.kills, codes, backfill_rc,
        time.monotonic() - started, deleted=plan.ids, windows=True,
    )  # fmt: skip
    result.deleted_before = len(plan.before)
    result.deleted_during = len(plan.during_ids)
    result.deleted_after = len(plan.after)
    result.tombstones_before_posts = chaos.tombstones_before_posts
    result.forget_exit_code = chaos.forget_rc
    held, pending = status.get("deleted"), status.get("deleted_pending")
    if isinstance(held, int) and isinstance(pending, int):
        result.status_deleted, result.status_deleted_pending = held, pending
    else:
        result.status_deleted_pending = -1  # no answer: not proven
    result.dagster_runs = chaos.dagster_runs()
    return result


# ---- the cloud profile on moto server and the BigQuery emulator ----------------------------

AWS_TEST_ENV = {  # moto accepts any credentials; these never leave this machine
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@contextlib.contextmanager
def _aws_credentials() -> Iterator[None]:
    """moto's test credentials in this process's environment while it counts (boto3 reads
    them there); the previous values are put back after."""
    saved = {k: os.environ.get(k) for k in AWS_TEST_ENV}
    os.environ.update(AWS_TEST_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class _Outage:
    start: float  # seconds after the run starts
    end: float
    began: float | None = None  # monotonic times it really began and ended
    ended: float | None = None


class CloudChaos(EmbeddedChaos):
    """The same replay with MUSICNFT_PROFILE=cloud: Kinesis and S3 on moto server, BigQuery on
    the emulator, each behind a `FaultProxy`. During the run: Kinesis throttled all along
    (`throttle` share of its calls), then down for `kinesis_outage` seconds, then BigQuery down for
    `bq_outage` seconds. `kills` SIGKILLs of the producer, delivery and consumer at points of the
    paced replay (its progress is its elapsed share: Kinesis has no cheap count of what was put),
    as in the embedded profile; the windows are materialized by `backfill --no-dagster` (no
    Dagster run to kill) and no deletions are made here (the embedded profile has those)."""

    def __init__(
        self,
        sample: Path,
        expected: Expected,
        data_dir: Path,
        seed: int,
        speed: str,
        log_path: Path,
        env: dict[str, str],
        aws: FaultProxy,
        bq: FaultProxy,
        kinesis_outage: float,
        bq_outage: float,
        throttle: float,
        kills: int = 0,
    ) -> None:
        super().__init__(sample, expected, data_dir, kills, seed, speed, log_path, batch_kills=0)
        self.in_process_backfill = True  # the windows go to the BigQuery emulator in this process
        exp = expected
        span = (exp.last - exp.first).total_seconds() if exp.first and exp.last else 0.0
        self.replay_seconds = max(10.0, span / float(speed)) if speed != "max" else 60.0

        self.env = env
        self.settings = Settings.from_env(env)
        self.aws, self.bq = aws, bq
        self.throttle = throttle
        # (start, end) in seconds after the run starts; the second begins when the first ends
        self.outages = {
            "kinesis": _Outage(15.0, 15.0 + kinesis_outage),
            "bigquery": _Outage(25.0 + kinesis_outage, 25.0 + kinesis_outage + bq_outage),
        }
        self.run_started: float | None = None

    def _progress(self, stream: Path, base: int, target: int) -> float:
        """Kinesis has no cheap count of what was put: the paced replay's elapsed share."""
        return (time.monotonic() - self.attempt_started) / self.replay_seconds

    def _proxy(self, name: str) -> FaultProxy:
        return self.aws if name == "kinesis" else self.bq

    def _drain(self) -> None:
        for stage in ("deliver", "consume"):
            with open(self.log_path, "ab") as log:
                rc = subprocess.run(
                    stage_command(stage, "--once"), env=self.env, stdout=log, stderr=log
                ).returncode
            self._log(f"musicnft {stage} --once exited {rc}")

    def _tick(self) -> None:
        if self.run_started is None:
            self.run_started = time.monotonic()
            self.aws.throttle(self.throttle)
        t = time.monotonic() - self.run_started
        for name, span in self.outages.items():
            if span.began is None and t >= span.start:
                self._proxy(name).down()
                span.began = time.monotonic()
                self._log(f"{name} DOWN (outage of {span.end - span.start:.0f}s begins)")
            elif span.began is not None and span.ended is None and t >= span.end:
                self._proxy(name).up()
                span.ended = time.monotonic()
                self._log(f"{name} up again")

    def end_faults(self) -> dict[str, float]:
        """Lift every fault still on; what was injected (outage seconds really spent down)."""
        self.aws.throttle(0.0)
        out: dict[str, float] = {}
        for name, span in self.outages.items():
            if span.began is not None and span.ended is None:
                self._proxy(name).up()
                span.ended = time.monotonic()
            down = span.ended - span.began if span.began is not None and span.ended else 0.0
            out[f"{name}_outage_s"] = down
        out["kinesis_throttled"] = float(self.aws.throttled)
        out["kinesis_refused"] = float(self.aws.refused)
        out["bigquery_refused"] = float(self.bq.refused)
        return out


def run_cloud(
    workdir: Path,
    posts: int = 5_000,
    seed: int = 12,
    speed: str = "25",
    kinesis_outage: float = 60.0,
    bq_outage: float = 60.0,
    throttle: float = 0.05,
    kills: int = 4,
) -> ChaosResult:
    """The cloud profile's chaos run in `workdir`: see `CloudChaos`; moto server and the BigQuery
    emulator are started here and stopped at the end."""
    import boto3
    from moto.server import ThreadedMotoServer

    from musicnft.adapters.bigquery.migrate import migrate
    from musicnft.adapters.bigquery.warehouse import bigquery_client
    from musicnft.devtools.bq_emulator import PROJECT, bigquery_emulator

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto server's access log
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    sample = workdir / "sample.jsonl"
    lines = math.ceil(posts / UNIQUE_SHARE)
    write_sample(sample, lines=lines, seed=seed, posts_per_hour=POSTS_PER_HOUR)
    base = Settings.from_env()
    expected = expected_from(sample, base.keywords, base.max_record_bytes)
    data_dir = workdir / "data"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    moto = f"http://{host}:{port}"
    reset_moto(moto)  # a clean state: the process may have run moto before
    stream, bucket, dataset = "musicnft-posts", "musicnft-lake", "musicnft"
    credentials = {
        "region_name": AWS_TEST_ENV["AWS_DEFAULT_REGION"],
        "aws_access_key_id": AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
    }
    boto3.client("kinesis", endpoint_url=moto, **credentials).create_stream(
        StreamName=stream, ShardCount=2
    )
    boto3.client("s3", endpoint_url=moto, **credentials).create_bucket(Bucket=bucket)
    aws = FaultProxy(moto, kinesis_request, kinesis_unavailable, kinesis_throttled, seed=seed)
    try:
        with bigquery_emulator(workdir / "bq-emulator.log") as bq_endpoint:
            migrate(bigquery_client(PROJECT, endpoint=bq_endpoint), dataset)
            bq = FaultProxy(bq_endpoint, any_request, google_unavailable, seed=seed)
            try:
                env = child_env(
                    base.with_data_dir(data_dir),
                    **AWS_TEST_ENV,
                    MUSICNFT_PROFILE="cloud",
                    MUSICNFT_AWS_ENDPOINT_URL=aws.endpoint,
                    MUSICNFT_S3_BUCKET=bucket,
                    MUSICNFT_STREAM_NAME=stream,
                    MUSICNFT_WAREHOUSE="bigquery",
                    MUSICNFT_BIGQUERY_PROJECT=PROJECT,
                    MUSICNFT_BIGQUERY_DATASET=dataset,
                    MUSICNFT_BIGQUERY_ENDPOINT=bq.endpoint,
                    MUSICNFT_DELIVERY_BUFFER_BYTES="1000000",
                    MUSICNFT_DELIVERY_BUFFER_SECONDS="2",
                    DAGSTER_DISABLE_TELEMETRY="1",
                )
                chaos = CloudChaos(
                    sample, expected, data_dir, seed, speed, workdir / "run.log", env,
                    aws, bq, kinesis_outage, bq_outage, throttle, kills,
                )  # fmt: skip
                chaos._log(
                    f"cloud sample: {lines:,} lines, {len(expected.ids):,} unique valid posts; "
                    f"moto {moto} behind {aws.endpoint}, BigQuery {bq_endpoint} behind "
                    f"{bq.endpoint}; log {chaos.log_path}"
                )
                try:
                    codes = chaos.replay()
                finally:
                    faults = chaos.end_faults()
                backfill_rc = chaos.backfill()
                with _aws_credentials():  # this process reads S3 and BigQuery to count
                    return measure(
                        chaos.settings, expected, lines, chaos.kills, codes, backfill_rc,
                        time.monotonic() - started, profile="cloud", faults=faults,
                    )  # fmt: skip
            finally:
                bq.close()
    finally:
        aws.close()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m musicnft.devtools.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--posts", type=int, default=100_000, help="unique posts (default 100000)")
    p.add_argument("--kills", type=int, default=24, help="SIGKILLs in all (default 24)")
    p.add_argument("--seed", type=int, default=12, help="sample and kill points (default 12)")
    p.add_argument("--speed", default="max", help="embedded replay speed: max or N (default max)")
    p.add_argument("--profile", choices=["embedded", "cloud", "both"], default="embedded")
    p.add_argument(
        "--cloud-posts", type=int, default=5_000, help="cloud profile's posts (default 5000)"
    )
    p.add_argument(
        "--cloud-kills",
        type=int,
        default=4,
        help="SIGKILLs of the cloud profile's producer, delivery and consumer (default 4)",
    )
    p.add_argument(
        "--delete-share",
        type=float,
        default=DELETE_SHARE,
        help=f"share of the posts deleted at the source (embedded; default {DELETE_SHARE})",
    )
    p.add_argument(
        "--cloud-speed",
        default="25",
        help="cloud replay speed (default 25: the replay outlasts the outages)",
    )
    p.add_argument("--kinesis-outage", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument("--bq-outage", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument(
        "--throttle", type=float, default=0.05, help="share of Kinesis calls throttled (0.05)"
    )
    p.add_argument("--workdir", type=Path, help="keep samples, data and logs here (default: temp)")
    args = p.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="musicnft-chaos-"))
    results: list[ChaosResult] = []
    try:
        if args.profile in ("embedded", "both"):
            results.append(
                run_embedded(
                    workdir / "embedded",
                    args.posts,
                    args.kills,
                    args.seed,
                    args.speed,
                    delete_share=args.delete_share,
                )
            )
        if args.profile in ("cloud", "both"):
            results.append(
                run_cloud(
                    workdir / "cloud",
                    args.cloud_posts,
                    args.seed,
                    args.cloud_speed,
                    args.kinesis_outage,
                    args.bq_outage,
                    args.throttle,
                    args.cloud_kills,
                )
            )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(format_table(results), flush=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
