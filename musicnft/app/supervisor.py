"""`musicnft run`: the embedded hot path as three supervised processes.

Each stage runs as its own process (as it would in the cloud), in its own session so a terminal's
Ctrl-C reaches only the supervisor, which then stops them in order: the producer first (it flushes),
then delivery and consumer (they drain the stream, flush and exit). A delivery or consumer that dies
is restarted with backoff, during the run and during the drain (as `--once`), at most
`--max-restarts` times within 10 minutes; the stream's checkpoints make a restart lose nothing.
The exit code says whether the work is done (EXIT_*): 0 only when every record the stream accepted
reached the lake and posts_hot (or a dead-letter).

`dagster dev`, the dashboard and the stages each get their own process group; at the end every
group is stopped (polite signal, grace period, SIGKILL) and a last sweep (`proctree`) kills any
descendant left, so no process outlives the command, on Ctrl-C and SIGTERM too.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from musicnft import wiring
from musicnft.adapters.local_stream import LocalStream
from musicnft.app import proctree
from musicnft.app.processes import (
    REPO_ROOT,
    child_env,
    dagster_dev_command,
    dagster_env,
    dashboard_command,
    dashboard_env,
    stage_command,
)
from musicnft.app.status import collect_status, format_status
from musicnft.settings import Settings
from musicnft.stop_event import StopEvent

log = logging.getLogger("musicnft.run")

DAGSTER_YAML = """\
# Written by `musicnft run --dagster`. No internet here: telemetry off.
telemetry:
  enabled: false
# Two cores: at most two runs at once; never two runs of the same day partition (the drop
# sensor, the 15-minute schedule and the re-run sensor can all ask for one); one backfill run at
# a time. Queued runs start within a second.
run_queue:
  max_concurrent_runs: 2
  dequeue_interval_seconds: 1
  tag_concurrency_limits:
    - key: "dagster/partition"
      value:
        applyLimitPerUniqueValue: true
      limit: 1
    - key: "dagster/backfill"
      limit: 1
# A run whose worker died (not one whose asset failed: the assets retry their steps, and the
# failed_windows_sensor re-runs failed windows with backoff) is retried once.
run_retries:
  enabled: true
  max_retries: 1
  retry_on_asset_or_op_failure: false
# The drop sensor and the re-run sensor tick side by side.
sensors:
  use_threads: true
  num_workers: 2
"""


def dagster_home(settings: Settings) -> Path:
    """The Dagster instance of the embedded profile (overridable with DAGSTER_HOME, which the
    settings carry), created with its dagster.yaml when new."""
    path = settings.dagster_home or settings.data_dir / "dagster"
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "dagster.yaml").exists():
        (path / "dagster.yaml").write_text(DAGSTER_YAML)
    return path


# Exit codes of `musicnft run` (also in its --help and the README).
EXIT_OK = 0  # every record the stream accepted reached the lake and posts_hot (or a dead-letter)
EXIT_FAILED = 1  # the producer failed, or (--dagster) a final window's checks failed; drained
EXIT_UNDRAINED = 3  # records remain undelivered or unconsumed (the stream still has them)
EXIT_INTERRUPTED = 130  # a second Ctrl-C/SIGTERM: stopped at once, without draining

STAGE_READER = {"deliver": "delivery", "consume": "consumer"}
RESTART_WINDOW = 600.0  # --max-restarts counts restarts of one stage within this many seconds
DRAIN_TIMEOUT = 600.0  # a drain that takes longer is stopped and reported as not drained
GRACE = 20.0  # seconds a process group has between the polite signal and SIGKILL
STALL_LOOK_SECONDS = 2.0  # how often the drain looks at each stage's checkpoint


class Interrupted(Exception):
    """A second signal: stop everything at once."""


class Supervisor:
    def __init__(self, settings: Settings, args: argparse.Namespace) -> None:
        self.settings = settings
        self.args = args
        self.stop = StopEvent()  # set by the signal handler (musicnft/stop_event.py)
        self.forced = False
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.sessions: list[int] = []  # every child's session (= process group) id
        self.subreaper = False  # set by run(): orphans of our children re-parent to us
        self.restarts: dict[str, list[float]] = {"deliver": [], "consume": [], "dashboard": []}
        self.deaths: dict[str, int] = {"deliver": 0, "consume": 0}
        self.gave_up: set[str] = set()
        self.drained: dict[str, bool] = {"deliver": False, "consume": False}
        self.producer_rc: int | None = None
        self.started_at = datetime.now(UTC)
        self.dagster: subprocess.Popen[bytes] | None = None
        self.dashboard: subprocess.Popen[bytes] | None = None
        self.sales: subprocess.Popen[bytes] | None = None  # --sales: the sales replay
        self.sales_rc: int | None = None
        self.checks_failed = False
        self.max_restarts = int(getattr(args, "max_restarts", 10))
        self.finishing = False  # the last sweep has begun: a signal must not interrupt it
        self.restart_at: dict[str, float] = {}  # stage -> when its scheduled restart is due
        # what this process had started before: never swept (run in-process, by a test worker)
        self.spared = proctree.existing_descendants()

    # ---- children ------------------------------------------------------------------------------
    def _command(self, stage: str, once: bool = False) -> list[str]:
        cmd = stage_command(stage, "--data-dir", str(self.settings.data_dir))
        if stage == "produce":
            cmd += ["--speed", self.args.speed]
            if self.args.file:
                cmd += ["--file", self.args.file]
            if self.args.restamp:
                cmd.append("--restamp")
        elif once:
            cmd.append("--once")
        return cmd

    def _popen(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Every child starts in its own session: its own process group, stopped as a whole."""
        proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        self.sessions.append(proc.pid)
        return proc

    def _spawn(self, stage: str, once: bool = False) -> None:
        self.procs[stage] = self._popen(self._command(stage, once), env=child_env(self.settings))
        log.info("started %s%s (pid %d)", stage, " --once" if once else "", self.procs[stage].pid)

    def _may_restart(self, stage: str) -> bool:
        """At most --max-restarts restarts of one stage within RESTART_WINDOW seconds."""
        now = time.monotonic()
        recent = [t for t in self.restarts[stage] if now - t < RESTART_WINDOW]
        self.restarts[stage] = recent
        return len(recent) < self.max_restarts

    def _backoff(self, stage: str) -> float:
        """Seconds to wait before the next restart: none for the first in the window, then
        1, 2, 4, ... up to 30."""
        n = len(self.restarts[stage])
        return 0.0 if n == 0 else min(30.0, 2.0 ** (n - 1))

    def _tend(self, stage: str, once: bool) -> str:
        """One look at a delivery/consumer process, never blocking: "running"; "restarting" (a
        restart is scheduled; made here once its backoff is over, with --once when draining);
        "ended" (it exited and nobody has decided yet what to do about it)."""
        if self.procs[stage].poll() is None:
            return "running"
        due = self.restart_at.get(stage)
        if due is None:
            return "ended"
        if time.monotonic() >= due:
            del self.restart_at[stage]
            self._check_forced()
            self.restarts[stage].append(time.monotonic())
            self._spawn(stage, once=once)
        return "restarting"

    def _schedule_restart(self, stage: str, rc: int | None) -> str:
        """A process of `stage` ended without finishing: schedule its restart within the bound
        ("restarting"), or give up on the stage ("gave_up")."""
        self.deaths[stage] += 1
        if not self._may_restart(stage):
            log.error(
                "%s exited with code %s and was restarted %d times in %.0f minutes: giving up "
                "on it (--max-restarts %d)",
                stage,
                rc,
                len(self.restarts[stage]),
                RESTART_WINDOW / 60,
                self.max_restarts,
            )
            self.gave_up.add(stage)
            return "gave_up"
        delay = self._backoff(stage)
        log.error(
            "%s exited with code %s; restarting%s (restart %d)",
            stage,
            rc,
            f" in {delay:.0f}s" if delay else "",
            len(self.restarts[stage]) + 1,
        )
        self.restart_at[stage] = time.monotonic() + delay
        return "restarting"

    def _sleep(self, seconds: float, interruptible: bool = False) -> None:
        """Sleep (reaping orphans this process adopted); `interruptible`: until a stop is asked
        for. A second signal raises `Interrupted`."""
        deadline = time.monotonic() + seconds
        while True:
            self._check_forced()
            proctree.reap_adopted(p.pid for p in self._popens())
            left = deadline - time.monotonic()
            if left <= 0 or (interruptible and self.stop.is_set()):
                return
            time.sleep(min(0.2, left))

    def _popens(self) -> list[subprocess.Popen[bytes]]:
        extra = [p for p in (self.dagster, self.dashboard, self.sales) if p is not None]
        return [*self.procs.values(), *extra]

    def _sweep_sessions(self) -> list[int]:
        """The sessions whose processes a stop sweeps besides our descendants. A child's session
        id is its pid: once that child has exited, the number can belong to an unrelated
        process, group or session (pids wrap), which a sweep by id would kill. As a subreaper,
        everything our children started stays our descendant, so no id is needed; without one
        (not Linux) the ids are the only way to reach a child's escaped processes."""
        return [] if self.subreaper else list(self.sessions)

    def _check_forced(self) -> None:
        if self.forced:
            raise Interrupted

    def _on_signal(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            if not self.forced:
                log.warning("second %s: stopping every child now, without draining", name)
                self.forced = True
                for pid in proctree.pids_to_stop(
                    self._sweep_sessions(), root=os.getpid(), spare=self.spared
                ):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                if not self.finishing:
                    raise Interrupted
            return
        log.info("%s received: stopping the producer, then draining the stream", name)
        self.stop.set()

    def _fresh(self) -> None:
        s = self.settings
        dagster = s.data_dir / "dagster"
        # Kinesis readers' checkpoints and the producer's spool belong to the stream: a stale
        # checkpoint would make readers of a new stream skip its first records.
        # The sales collector's memory of what it wrote describes the lake: it goes with it.
        stores = (
            s.stream_path.parent,
            s.checkpoint_path.parent,
            s.spool_path.parent,
            s.data_dir / "sales",
        )
        for path in (*stores, s.lake_dir, s.warehouse_dir, s.dead_letter_dir, dagster):
            if path.exists():
                shutil.rmtree(path)
        log.info(
            "--fresh: removed previous stream, checkpoints, spool, lake, warehouse and "
            "dead-letters in %s",
            s.data_dir,
        )

    # ---- the run -------------------------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self.subreaper = proctree.become_subreaper()
        if self.args.fresh:
            self._fresh()
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            return self._run()
        except Interrupted:
            return EXIT_INTERRUPTED
        finally:
            self.finishing = True
            left = proctree.kill_everything(self._sweep_sessions(), grace=5.0, spare=self.spared)
            if left:
                log.warning("stopped %d leftover process(es): %s", len(left), left)

    def _run(self) -> int:
        if self.args.dagster:
            self._start_dagster()
        if self.args.dashboard:
            self._start_dashboard()
        for stage in ("deliver", "consume", "produce"):
            self._spawn(stage)
        if getattr(self.args, "sales", False):
            self._start_sales()
        try:
            self._supervise()
        finally:
            self._check_forced()
            self._shutdown()
            if self.args.dagster:
                self._stop_dagster()
            if self.dashboard is not None:
                proctree.stop_group(self.dashboard, signal.SIGTERM, GRACE, "the dashboard")
        self._check_forced()
        if self.args.dagster:
            try:
                self._final_windows()
            except Exception:  # the verdict and the status still come; exit 1 says it failed
                log.exception("final windows failed")
                self.checks_failed = True
        return self._verdict()

    def _supervise(self) -> None:
        started = time.monotonic()
        deadline = started + self.args.seconds if self.args.seconds else None
        last_report = started
        while not self.stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                log.info("%.0f seconds are up: stopping", self.args.seconds)
                return
            producer = self.procs["produce"]
            if self.producer_rc is None and producer.poll() is not None:
                self.producer_rc = producer.returncode
                if self.producer_rc == 0:
                    log.info("producer finished its replay")
                else:
                    log.error("producer exited with code %d", self.producer_rc)
                if self.args.exit_when_done or self.producer_rc != 0:
                    return
            for stage in ("deliver", "consume"):
                # A long-running stage never ends by itself: any exit is a death.
                if self._tend(stage, once=False) == "ended":
                    rc = self.procs[stage].returncode
                    if self._schedule_restart(stage, rc) == "gave_up":
                        return  # a stage that keeps dying: stop, drain what can, exit non-zero
            self._tend_dashboard()
            self._tend_sales()
            if now - last_report >= 15:
                last_report = now
                self._report()
            self._sleep(0.5, interruptible=True)

    def _tend_dashboard(self) -> None:
        """The dashboard never ends by itself either: a dead one (a port taken meanwhile, a
        crash) is reported with its exit code and started again, within the same bound as a
        stage; past it the pipeline keeps running without a dashboard, and says so."""
        if self.dashboard is None or self.dashboard.poll() is None:
            return
        rc = self.dashboard.returncode
        if not self._may_restart("dashboard"):
            log.error("the dashboard keeps dying (last exit code %d): running without it", rc)
            self.dashboard = None
            return
        log.error("the dashboard exited with code %d: starting it again", rc)
        self.restarts["dashboard"].append(time.monotonic())
        self._start_dashboard()

    def _start_sales(self) -> None:
        """The sales replay (`musicnft sales --source replay`) at the producer's speed, restamped
        like the posts, so the demo's sales land beside its talk."""
        cmd = stage_command(
            "sales", "--data-dir", str(self.settings.data_dir), "--source", "replay",
            "--speed", self.args.speed, "--flush-seconds", "5",
        )  # fmt: skip
        if self.args.restamp:
            cmd.append("--restamp")
        self.sales = self._popen(cmd, env=child_env(self.settings))
        log.info("started the sales replay (pid %d)", self.sales.pid)

    def _tend_sales(self, stopped: bool = False) -> None:
        """The sales replay ends by itself when its sample is replayed: say how it ended, once.
        It is not restarted (what it wrote stays; a second replay would only repeat sales)."""
        if self.sales is None or self.sales_rc is not None or self.sales.poll() is None:
            return
        self.sales_rc = self.sales.returncode
        if stopped and self.sales_rc in (0, -signal.SIGTERM):
            log.info("the sales replay stopped (what it had read is in the lake)")
        elif self.sales_rc == 0:
            log.info("the sales replay finished")
        else:
            log.error("the sales replay exited with code %d", self.sales_rc)

    def _lag(self, stage: str) -> int | None:
        """Records the stage's reader has not committed yet (None: the stream does not say)."""
        if self.settings.stream_backend != "local":
            return None
        progress = self._progress(stage)
        return 0 if progress is None else progress[1]

    def _progress(self, stage: str) -> tuple[int, int] | None:
        """(checkpoint, lag) of the stage's reader on the local stream (None: not local)."""
        if self.settings.stream_backend != "local" or not self.settings.stream_path.exists():
            return None
        with LocalStream(
            self.settings.stream_path, shards=self.settings.stream_shards, readers=()
        ) as s:
            reader = STAGE_READER[stage]
            return int(s.checkpoint(reader)), int(s.lag(reader))

    def _stop_if_stalled(self, stage: str, seen: dict[str, tuple[int, float]]) -> None:
        """A live draining stage whose checkpoint has not moved for `stage_stall_seconds` (twice
        the delivery buffer's age at least) while records wait for it is hung, not slow: it is
        SIGKILLed, and the drain starts it again with --once (its uncommitted records are read
        again: nothing is lost). A `musicnft deliver` once hung on its stop signal for good."""
        if self.procs[stage].poll() is not None:
            return
        progress = self._progress(stage)
        if progress is None:
            return
        checkpoint, lag = progress
        now = time.monotonic()
        last = seen.get(stage)
        if last is None or last[0] != checkpoint or not lag:
            seen[stage] = (checkpoint, now)
            return
        limit = max(self.settings.stage_stall_seconds, 2 * self.settings.delivery_buffer_seconds)
        if now - last[1] < limit:
            return
        log.error(
            "%s made no progress for %.0fs while draining (%d records wait for it): stopping it "
            "and starting it again",
            stage,
            now - last[1],
            lag,
        )
        proctree.stop_group(self.procs[stage], signal.SIGKILL, 1.0, stage)
        del seen[stage]

    def _shutdown(self) -> None:
        """Stop the producer (it flushes), then drain: delivery and consumer finish what is on
        the stream. A drain process that dies is restarted (`--once`) within the same bound as
        any stage; one that cannot finish is reported by `_verdict`."""
        if self.sales is not None and self.sales.poll() is None:
            if self.args.exit_when_done and self.producer_rc == 0 and not self.stop.is_set():
                # the posts' replay is done: the sales' replay finishes too (it is shorter)
                deadline = time.monotonic() + DRAIN_TIMEOUT
                while self.sales.poll() is None and time.monotonic() < deadline:
                    if self.stop.is_set():
                        break
                    self._sleep(0.2)
            # it writes what it holds on SIGTERM, before the final windows read the lake
            stopped = self.sales.poll() is None
            proctree.stop_group(self.sales, signal.SIGTERM, 60.0, "the sales replay")
            self._tend_sales(stopped)
        producer = self.procs.get("produce")
        if producer is not None:
            if producer.poll() is None:
                proctree.stop_group(producer, signal.SIGTERM, 60.0, "the producer")
            if self.producer_rc is None:
                self.producer_rc = producer.returncode
                if self.producer_rc in (-signal.SIGTERM, 130):
                    self.producer_rc = 0
        # Every live stage drains on SIGTERM; a dead one is started again with --once (a restart
        # already scheduled is made with --once).
        for stage in ("deliver", "consume"):
            if self.procs[stage].poll() is None:
                self.procs[stage].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        pending = [s for s in ("deliver", "consume") if s not in self.gave_up]
        seen: dict[str, tuple[int, float]] = {}  # stage -> (checkpoint, since when)
        next_look = time.monotonic()
        while pending:
            self._check_forced()
            if time.monotonic() > deadline:
                for stage in pending:
                    log.error("%s did not drain within %.0fs; stopping it", stage, DRAIN_TIMEOUT)
                    proctree.stop_group(self.procs[stage], signal.SIGKILL, 1.0, stage)
                return
            if time.monotonic() >= next_look:  # (the stream's counters, every few seconds)
                next_look = time.monotonic() + STALL_LOOK_SECONDS
                for stage in pending:
                    self._stop_if_stalled(stage, seen)
            for stage in list(pending):
                if self._tend(stage, once=True) != "ended":
                    continue
                rc = self.procs[stage].returncode
                lag = self._lag(stage) if rc == 0 else None
                if rc == 0 and not lag:
                    self.drained[stage] = True
                    pending.remove(stage)
                    log.info("%s drained", stage)
                    continue
                if rc == 0:
                    log.warning("%s stopped with %d records left; draining again", stage, lag)
                if self._schedule_restart(stage, rc) == "gave_up":
                    pending.remove(stage)
            self._sleep(0.2)

    def _verdict(self) -> int:
        """Print the status, then the exit code: see EXIT_*."""
        try:
            status = self._status()
            print(format_status(status), flush=True)
        except Exception as exc:  # the verdict must not depend on the lake or warehouse answering
            log.error("status unavailable: %s", exc)
            status = {"delivery_lag": self._lag("deliver"), "consumer_lag": self._lag("consume")}
        lags = {
            "not yet delivered to the lake": status.get("delivery_lag"),
            "not yet consumed": status.get("consumer_lag"),
        }
        undone = {k: v for k, v in lags.items() if v}
        unknown = [s for s in ("deliver", "consume") if not self.drained[s]]
        if undone or (unknown and all(v is None for v in lags.values())):
            what = ", ".join(f"{v:,} {k}" for k, v in undone.items()) or (
                f"{' and '.join(unknown)} did not finish draining"
            )
            why = "; ".join(
                f"{stage} died {self.deaths[stage]} time(s)"
                + (" and was given up" if stage in self.gave_up else "")
                for stage in ("deliver", "consume")
                if self.deaths[stage]
            )
            print(
                f"musicnft run: NOT drained: {what}"
                + (f" ({why})" if why else "")
                + "; nothing is lost (the stream keeps them): run `musicnft run` again without "
                "--fresh, or `musicnft deliver --once` and `musicnft consume --once`",
                file=sys.stderr,
                flush=True,
            )
            return EXIT_UNDRAINED
        if self.gave_up:
            print(
                f"musicnft run: {' and '.join(sorted(self.gave_up))} kept dying (beyond "
                f"--max-restarts {self.max_restarts}): the run stopped early",
                file=sys.stderr,
                flush=True,
            )
            return EXIT_FAILED
        if self.producer_rc not in (0, None):
            print(
                f"musicnft run: the producer failed (exit code {self.producer_rc}); what it put "
                "on the stream was drained",
                file=sys.stderr,
                flush=True,
            )
            return EXIT_FAILED
        if self.checks_failed:
            print(
                "musicnft run: the final windows failed or failed their checks",
                file=sys.stderr,
                flush=True,
            )
            return EXIT_FAILED
        return EXIT_OK

    def _start_dagster(self) -> None:
        home = dagster_home(self.settings)
        # From here on every child (and the final windows) uses this instance.
        self.settings = dataclasses.replace(self.settings, dagster_home=home)
        cmd = dagster_dev_command(self.args.dagster_host, self.args.dagster_port)
        self.dagster = self._popen(cmd, cwd=REPO_ROOT, env=dagster_env(self.settings))
        log.info(
            "started dagster dev (pid %d): UI at http://%s:%d (instance %s)",
            self.dagster.pid,
            self.args.dagster_host,
            self.args.dagster_port,
            home,
        )

    def _start_dashboard(self) -> None:
        cmd = dashboard_command(self.args.dashboard_host, self.args.dashboard_port)
        self.dashboard = self._popen(cmd, env=dashboard_env(self.settings))
        log.info(
            "dashboard: http://%s:%d (refreshes itself; fills as windows are materialized)",
            self.args.dashboard_host,
            self.args.dashboard_port,
        )

    def _stop_dagster(self) -> None:
        """Stop `dagster dev` and everything it started (runs and their step processes stay in
        its process group). After a normal end, runs already executing may finish first (up to
        2 minutes); after Ctrl-C/SIGTERM they are stopped at once. Then the whole group gets
        SIGINT (what a terminal's Ctrl-C gives dagster: runs stop as interrupted), then SIGKILL
        after a grace period; runs left unfinished are marked canceled."""
        if self.dagster is None:
            return
        if self.dagster.poll() is None and not self.stop.is_set():
            self.dagster.send_signal(signal.SIGINT)  # dagster dev stops its own children
            try:
                self.dagster.wait(60)
            except subprocess.TimeoutExpired:
                log.error("dagster dev did not stop within 60s")
            try:
                self._settle_runs()
            except Exception as exc:  # stopping must go on: the group is stopped below
                log.warning("could not wait for Dagster runs: %s", exc)
        proctree.stop_group(self.dagster, signal.SIGINT, GRACE, "dagster dev and its runs")
        log.info("dagster dev stopped")
        self._cancel_unfinished_runs()

    def _cancel_unfinished_runs(self) -> None:
        """Runs whose workers were stopped stay STARTED in the instance: mark them canceled."""
        try:
            import dagster as dg

            from musicnft_dagster.recording import open_instance

            assert self.settings.dagster_home is not None
            instance = open_instance(self.settings.dagster_home)
            active = [
                dg.DagsterRunStatus.QUEUED,
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
                dg.DagsterRunStatus.CANCELING,
            ]
            for run in instance.get_runs(filters=dg.RunsFilter(statuses=active)):
                instance.report_run_canceled(run, message="musicnft run stopped")
        except Exception as exc:  # bookkeeping only; the processes are already gone
            log.warning("could not mark unfinished Dagster runs canceled: %s", exc)

    def _settle_runs(self, timeout: float = 120.0) -> None:
        """Runs already executing finish on their own (their workers outlive `dagster dev`): wait
        for them before the final windows, and cancel queued runs nothing will launch now."""
        from musicnft_dagster.recording import settle_runs

        assert self.settings.dagster_home is not None  # set by _start_dagster
        if not settle_runs(self.settings.dagster_home, timeout):
            log.warning("runs still executing after %.0fs; going on", timeout)

    def _final_windows(self) -> None:
        """Materialize every window this run's drops touched, so none is left half-done when the
        sensor had no tick left to see the last drops (same code and checks as the assets)."""
        from musicnft.batch.backfill import run_backfill
        from musicnft_dagster.recording import dagster_recorder

        report = run_backfill(
            wiring.open_lake(self.settings),
            wiring.open_warehouse(self.settings),
            [k.lower() for k in self.settings.keywords],
            on_window=dagster_recorder(self.settings.dagster_home),
            files_since=self.started_at,
        )
        log.info(
            "final windows: %d materialized, %d with failed checks",
            len(report.windows),
            len(report.failed),
        )
        if report.failed:
            self.checks_failed = True

    def _status(self) -> dict[str, Any]:
        return collect_status(
            self.settings, wiring.open_lake(self.settings), wiring.open_warehouse(self.settings)
        )

    def _report(self) -> None:
        try:
            s = self._status()
        except Exception as exc:  # a report is best effort; never stop the pipeline for it
            log.warning("status unavailable: %s", exc)
            return
        log.info(
            "status: produced=%s lake=%s posts_hot=%s dead_letter=%s (delivery lag %s, consumer lag %s)",
            s["produced"],
            s["lake"],
            s["posts_hot"],
            s["dead_letter"],
            s["delivery_lag"],
            s["consumer_lag"],
        )
