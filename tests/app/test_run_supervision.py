"""`musicnft run` never reports success with work undone (issue #20): every stage, the drain
processes included, is SIGKILLed during a replay; the supervisor restarts them within its bound,
and the exit code says whether every accepted record reached the lake and posts_hot."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from musicnft.adapters.local_stream import LocalStream
from musicnft.devtools.sample import write_sample
from tests.support.expectations import expected_from
from tests.support.paths import cli

pytestmark = pytest.mark.slow

STAGES = ("produce", "deliver", "consume")


def _children(root: int) -> dict[int, list[str]]:
    """Live descendants of `root` and their command lines (from /proc)."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if fields[0] != "Z":
                parent[int(entry.name)] = int(fields[1])
    out: dict[int, list[str]] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        for child, ppid in parent.items():
            if ppid == pid:
                stack.append(child)
                try:
                    raw = Path(f"/proc/{child}/cmdline").read_bytes()
                except OSError:
                    continue
                out[child] = raw.decode(errors="replace").split("\0")
    return out


def _stage_procs(root: int) -> dict[str, tuple[int, bool]]:
    """stage -> (pid, started with --once) for the supervisor's stage processes."""
    found: dict[str, tuple[int, bool]] = {}
    for pid, argv in _children(root).items():
        if "musicnft" in argv and len(argv) > argv.index("musicnft") + 1:
            stage = argv[argv.index("musicnft") + 1]
            if stage in STAGES:
                found[stage] = (pid, "--once" in argv)
    return found


def _checkpoint(data_dir: Path, reader: str) -> int:
    path = data_dir / "stream" / "musicnft-posts.sqlite"
    if not path.exists():
        return 0
    with LocalStream(path, readers=()) as s:
        return s.checkpoint(reader)


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


def _status(env: dict[str, str]) -> dict:
    proc = subprocess.run(
        cli("status", "--json"), env=env, capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)


@pytest.fixture
def replay(tmp_path: Path, cli_env: dict[str, str]) -> tuple[Path, dict[str, str]]:
    sample = tmp_path / "sample.jsonl"
    write_sample(sample, lines=6000, seed=11)
    env = dict(cli_env)
    env["MUSICNFT_DELIVERY_BUFFER_BYTES"] = "40000"  # many small files: many chances to die
    env["MUSICNFT_DELIVERY_BUFFER_SECONDS"] = "0.2"
    env["MUSICNFT_CONSUMER_BATCH_SIZE"] = "50"
    return sample, env


READER = {"deliver": "delivery", "consume": "consumer"}


def _start_run(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`musicnft run` with `args`, its output captured."""
    return subprocess.Popen(
        cli("run", *args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _stop(run: subprocess.Popen[str]) -> None:
    """Nothing outlives the test: a run still going (a failed test) is killed."""
    if run.poll() is None:
        run.kill()
        run.wait()


def test_every_stage_and_the_drain_processes_killed_during_a_replay_still_exit_0_complete(
    replay: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    sample, env = replay
    expected = expected_from(sample)
    rng = random.Random(20)
    # GIVEN `musicnft run` replaying 6,000 lines (about 15 s at 5000x their pace)
    run = _start_run(env, "--file", str(sample), "--speed", "5000", "--exit-when-done")
    kills: list[tuple[str, str]] = []  # (phase, stage)
    seen_once: set[str] = set()
    drain_kills = {"deliver": 0, "consume": 0}
    last_kill: dict[str, int] = {}
    started: dict[int, int] = {}
    deadline = time.monotonic() + 400
    try:
        # WHEN delivery and consumer are SIGKILLed at random while the producer replays (each
        # once it has committed progress), then, once the producer is done, each drain process
        # is killed twice: the stage that was draining, then the `--once` started in its place
        while run.poll() is None and time.monotonic() < deadline:
            procs = _stage_procs(run.pid)
            if "produce" in procs:
                stage = rng.choice(("deliver", "consume"))
                if stage in procs and sum(1 for _, s in kills if s == stage) < 3:
                    pid, _ = procs[stage]
                    start = started.setdefault(pid, _checkpoint(data_dir, READER[stage]))
                    if _checkpoint(data_dir, READER[stage]) > start and last_kill.get(stage) != pid:
                        time.sleep(rng.random() * 0.3)
                        if _kill(pid):
                            kills.append(("replay", stage))
                            last_kill[stage] = pid
            elif any(k[0] == "replay" for k in kills) or _checkpoint(data_dir, "delivery") > 0:
                for stage in ("deliver", "consume"):
                    if stage not in procs or drain_kills[stage] >= 2:
                        continue
                    pid, once = procs[stage]
                    if once:
                        seen_once.add(stage)
                    fresh = last_kill.get(stage) != pid and (drain_kills[stage] == 0 or once)
                    if fresh and _kill(pid):
                        kills.append(("drain", stage))
                        drain_kills[stage] += 1
                        last_kill[stage] = pid
            time.sleep(0.02)
        out, err = run.communicate(timeout=max(1, deadline - time.monotonic()))
    finally:
        _stop(run)
    # THEN every stage was killed during the replay and twice while draining, and restarted
    assert drain_kills == {"deliver": 2, "consume": 2}, (kills, err[-3000:])
    assert any(k == ("replay", "deliver") for k in kills), kills
    assert any(k == ("replay", "consume") for k in kills), kills
    assert seen_once == {"deliver", "consume"}
    assert err.count("restarting") >= len(kills) - 1
    # AND the run exits 0 only because everything accepted reached the lake and posts_hot
    assert run.returncode == 0, err[-4000:]
    status = _status(env)
    assert status["delivery_lag"] == 0 and status["consumer_lag"] == 0
    assert status["produced"] == len(expected.posts)
    assert status["lake_unique"] == expected.unique
    assert status["lake"] >= len(expected.posts)  # at-least-once: repeats, never gaps
    assert status["posts_hot_unique"] == expected.unique
    assert status["dead_letter"] == len(expected.rejected)
    assert "not yet consumed" in out and "NOT drained" not in err


def test_a_stage_that_keeps_dying_makes_the_run_exit_3_with_one_line(
    replay: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    sample, env = replay
    expected = expected_from(sample)
    # GIVEN a run allowed one restart per stage
    run = _start_run(
        env, "--file", str(sample), "--speed", "max", "--exit-when-done", "--max-restarts", "1"
    )
    killed: set[int] = set()
    deadline = time.monotonic() + 300
    try:
        # WHEN every consumer process it starts is SIGKILLed as soon as it appears
        while run.poll() is None and time.monotonic() < deadline:
            consume = _stage_procs(run.pid).get("consume")
            on_stream = _checkpoint(data_dir, "delivery") > 0
            if consume and on_stream and consume[0] not in killed and _kill(consume[0]):
                killed.add(consume[0])
            time.sleep(0.02)
        _out, err = run.communicate(timeout=max(1, deadline - time.monotonic()))
    finally:
        _stop(run)
    # THEN it gives up on the consumer, drains the lake, says so on one line and exits 3
    assert run.returncode == 3, err[-3000:]
    lines = [line for line in err.splitlines() if "NOT drained" in line]
    assert len(lines) == 1 and "not yet consumed" in lines[0], err[-3000:]
    status = _status(env)
    assert status["consumer_lag"] > 0 and f"{status['consumer_lag']:,}" in lines[0]
    # every record the stream accepted reached the lake (on a loaded machine the producer may not
    # have reached the end of the file when the run gave up: what it did produce is what counts)
    assert status["delivery_lag"] == 0 and status["lake"] == status["produced"]
    assert 0 < status["lake_unique"] <= expected.unique
    if status["produced"] == len(expected.posts):  # the whole file went in
        assert status["lake_unique"] == expected.unique
    # AND nothing was lost: the stream still had it all
    subprocess.run(cli("consume", "--once"), env=env, check=True, capture_output=True)
    after = _status(env)
    assert after["consumer_lag"] == 0 and after["posts_hot_unique"] == status["lake_unique"]


def test_a_killed_producer_exits_1_after_draining_what_it_put_on_the_stream(
    replay: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    sample, env = replay
    run = _start_run(env, "--file", str(sample), "--speed", "5000", "--exit-when-done")
    deadline = time.monotonic() + 300
    killed = False
    try:
        # WHEN the producer is SIGKILLed mid-replay (once part of the file is on the stream)
        while run.poll() is None and time.monotonic() < deadline and not killed:
            producer = _stage_procs(run.pid).get("produce")
            if producer and _checkpoint(data_dir, "delivery") > 0:
                killed = _kill(producer[0])
            time.sleep(0.02)
        _out, err = run.communicate(timeout=max(1, deadline - time.monotonic()))
    finally:
        _stop(run)
    # THEN the run exits 1 (the replay is incomplete), and what the stream accepted is drained
    assert killed
    assert run.returncode == 1, err[-3000:]
    assert "the producer failed" in err
    status = _status(env)
    assert status["delivery_lag"] == 0 and status["consumer_lag"] == 0
    assert 0 < status["produced"] < 6000
    assert status["lake_unique"] == status["posts_hot_unique"] > 0


def test_a_stage_hung_while_draining_is_stopped_and_started_again_with_once(
    replay: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    sample, env = replay
    expected = expected_from(sample)
    env["MUSICNFT_STAGE_STALL_SECONDS"] = "5"
    run = _start_run(env, "--file", str(sample), "--speed", "max", "--exit-when-done")
    frozen: int | None = None
    deadline = time.monotonic() + 300
    try:
        # WHEN the delivery process hangs (SIGSTOP: it takes no signal but SIGKILL) early in the
        # replay, and stays hung through the drain
        while run.poll() is None and frozen is None and time.monotonic() < deadline:
            deliver = _stage_procs(run.pid).get("deliver")
            if deliver and _checkpoint(data_dir, "delivery") > 0:
                os.kill(deliver[0], signal.SIGSTOP)
                frozen = deliver[0]
            time.sleep(0.01)
        _out, err = run.communicate(timeout=max(1, deadline - time.monotonic()))
    finally:
        _stop(run)
    # THEN the drain stops it, drains again with --once, and the run ends complete (exit 0)
    assert frozen is not None
    assert run.returncode == 0, err[-3000:]
    assert "deliver made no progress" in err, err[-3000:]
    status = _status(env)
    assert status["delivery_lag"] == 0 and status["consumer_lag"] == 0
    assert status["lake_unique"] == expected.unique == status["posts_hot_unique"]
