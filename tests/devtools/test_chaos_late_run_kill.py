"""A run worker SIGKILLed after its run finished (still writing its last events, exiting) kills
no run: Dagster rightly keeps the run SUCCESS. CI once saw the chaos run count such a kill and
then fail on "no FAILURE run"; the driver now takes the kill back and kills the next backfill's
run instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicnft.devtools.chaos import EmbeddedChaos, Kill
from tests.support.chaos_driver import idle_driver


def _backfills(chaos: EmbeddedChaos, statuses: list[list[str]]) -> list[int]:
    """Each backfill attempt kills one run worker (pid 100, 101, ...) and leaves the instance
    with the next list of run statuses; returns the pids killed."""
    runs: list[str] = []
    killed: list[int] = []

    def attempt(cmd: list[str], made: int) -> tuple[int, int]:
        pid = 100 + len(killed)
        killed.append(pid)
        kill = Kill("dagster-run", pid, chaos._now())
        chaos.kills.append(kill)
        chaos.pending_runs.append(kill)
        runs.extend(statuses[len(killed) - 1])
        return 0, made + 1

    def dagster_runs() -> dict[str, int]:
        return {s: runs.count(s) for s in set(runs)}

    chaos._backfill_attempt = attempt  # type: ignore[method-assign]
    chaos.dagster_runs = dagster_runs  # type: ignore[method-assign]
    return killed


def test_a_kill_after_the_run_finished_is_taken_back_and_made_on_the_next_backfill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chaos = idle_driver(tmp_path)
    killed = _backfills(chaos, [["SUCCESS", "SUCCESS"], ["FAILURE", "SUCCESS", "SUCCESS"]])
    assert chaos.backfill() == 0
    assert killed == [100, 101]  # a second backfill, whose run the kill really ended
    assert [(k.stage, k.pid) for k in chaos.kills] == [("dagster-run", 101)]
    assert "pid 100 came after its run had finished" in capsys.readouterr().err


def test_a_kill_that_failed_its_run_is_kept(tmp_path: Path) -> None:
    chaos = idle_driver(tmp_path)
    killed = _backfills(chaos, [["FAILURE", "SUCCESS"]])
    assert chaos.backfill() == 0
    assert killed == [100] and [k.pid for k in chaos.kills] == [100]


def test_kills_that_never_land_still_end_the_backfills(tmp_path: Path) -> None:
    chaos = idle_driver(tmp_path)
    killed = _backfills(chaos, [["SUCCESS"]] * 5)
    assert chaos.backfill() == 0
    # bounded: after batch_kills * 2 attempts the last kill stays counted, and the run's checks
    # (a FAILURE run per run kill) report it
    assert killed == [100, 101, 102]
    assert [k.pid for k in chaos.kills] == [102]
