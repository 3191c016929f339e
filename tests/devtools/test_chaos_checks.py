"""The chaos run's own checks (musicnft.devtools.chaos), fast: the deletion plan, the window check
and the verdict must catch a window a killed run left short or doubled, a deleted post still
counted, and a Dagster run left started. The slow runs are in tests/app/test_chaos.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from musicnft import wiring
from musicnft.contract.tables import TABLES
from musicnft.devtools.chaos import (
    ChaosResult,
    Expected,
    format_table,
    plan_deletions,
    window_check,
)
from musicnft.settings import Settings

W0 = datetime(2021, 12, 1, 0, 0, tzinfo=UTC)
W1 = W0 + timedelta(minutes=15)


def _expected() -> Expected:
    exp = Expected()
    for i, w in enumerate([W0, W0, W0, W1, W1]):
        pid = f"x:{i + 1}"
        exp.ids.add(pid)
        exp.order.append(pid)
        exp.window_of[pid] = w
    exp.first, exp.last = W0, W1 + timedelta(minutes=5)
    return exp


def _write_windows(settings: Settings, counts: list[tuple[datetime, int]]) -> None:
    warehouse = wiring.open_warehouse(settings)
    rows = [{"window_start": w, "keyword": "all", "post_count": n} for w, n in counts]
    warehouse.append(
        "window_metrics_15m", pa.Table.from_pylist(rows, schema=TABLES["window_metrics_15m"])
    )


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}).with_data_dir(tmp_path / "data")


def test_the_window_check_passes_windows_that_count_their_posts_less_the_deleted(
    tmp_path: Path,
) -> None:
    # GIVEN windows of 3 and 2 posts, one post of the second deleted, counted as such
    settings = _settings(tmp_path)
    _write_windows(settings, [(W0, 3), (W1, 1)])
    # WHEN checked
    checked, wrong, extra = window_check(settings, _expected(), {"x:4"})
    # THEN both windows are right, once each
    assert (checked, wrong, extra) == (2, 0, 0)


def test_the_window_check_catches_a_short_window_a_deleted_post_and_a_doubled_row(
    tmp_path: Path,
) -> None:
    # GIVEN a window short of a post (its run killed half-way), and a window that still counts
    # its deleted post, and a second row for the first window's key
    settings = _settings(tmp_path)
    _write_windows(settings, [(W0, 2), (W1, 2), (W0, 0)])
    # WHEN checked
    checked, wrong, extra = window_check(settings, _expected(), {"x:4"})
    # THEN both windows are wrong and the doubled row is counted
    assert (checked, wrong, extra) == (2, 2, 1)


def test_a_missing_window_is_wrong(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _write_windows(settings, [(W0, 3)])
    assert window_check(settings, _expected(), set())[1] == 1


def _result(**changes: object) -> ChaosResult:
    base = ChaosResult(
        profile="embedded", lines=10, input_unique=5, input_malformed=0, lake_unique=4,
        posts_hot_rows=4, posts_hot_unique=4, posts_rows=4, posts_unique=4, lost=0, doubled=0,
        unexpected=0, dead_lettered=0, not_dead_lettered=0, kills=[], run_attempts=1,
        run_exit_codes=[0], backfill_exit_code=0, wall_seconds=1.0, deleted_after=1,
        status_deleted=1, status_deleted_pending=0, windows_checked=2, windows_wrong=0,
        window_duplicate_rows=0, dagster_runs={"SUCCESS": 2, "FAILURE": 1},
    )  # fmt: skip
    for k, v in changes.items():
        setattr(base, k, v)
    return base


def test_the_verdict_fails_on_a_surviving_deletion_a_wrong_window_or_a_run_left_started() -> None:
    assert _result().ok
    assert _result(dagster_runs={"SUCCESS": 1, "QUEUED": 1}).ok  # waits for the next daemon
    assert "PASS" in format_table([_result()])
    for bad in (
        {"deleted_visible": 1},
        {"status_deleted_pending": 1},
        {"windows_wrong": 1},
        {"window_duplicate_rows": 3},
        {"dagster_runs": {"SUCCESS": 1, "STARTED": 1}},
        {"dagster_runs": {"SUCCESS": 1, "STARTING": 1}},
        {"forget_exit_code": 1},
    ):
        result = _result(**bad)
        assert not result.ok, bad
        assert "FAIL" in format_table([result])


def test_the_deletion_plan_is_seeded_disjoint_and_puts_before_tombstones_ahead_of_their_posts() -> (
    None
):
    exp = Expected()
    exp.order = [f"x:{i}" for i in range(3000)]
    exp.ids = set(exp.order)
    plan = plan_deletions(exp, 0.03, seed=7)
    assert plan == plan_deletions(exp, 0.03, seed=7)
    assert len(plan.before) == len(plan.during_ids) == len(plan.after) == 30
    assert len(plan.ids) == 90  # disjoint
    assert all(exp.order.index(p) >= 1500 for p in plan.before)  # the file's second half
    assert [at for at, _ in plan.during] == sorted(at for at, _ in plan.during)
