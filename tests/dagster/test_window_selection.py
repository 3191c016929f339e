"""Which 15-minute windows a day-partition run recomputes, and how a backfill is planned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from musicnft.contract.windows import WINDOW, parse_window_key
from musicnft_dagster.backfill import plan_backfill
from musicnft_dagster.jobs import RANGE_TAG, TRIGGER_TAG, WINDOWS_TAG
from musicnft_dagster.windows import (
    WindowSelectionError,
    range_tag,
    select_windows,
    window_run,
    windows_tag,
)

DAY = datetime(2021, 12, 1, tzinfo=UTC)
FIRST = datetime(2021, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 30, 12, 7, tzinfo=UTC)


def w(key: str) -> datetime:
    return parse_window_key(key)


def test_without_tags_a_run_recomputes_every_window_of_its_days() -> None:
    windows = select_windows(DAY, DAY + timedelta(days=2), {}, FIRST, NOW)
    assert len(windows) == 2 * 96
    assert windows[0] == DAY and windows[-1] == DAY + timedelta(days=2) - WINDOW


def test_the_windows_tag_names_the_windows() -> None:
    tags = {WINDOWS_TAG: windows_tag(["2021-12-01-01:30", "2021-12-01-00:15"])}
    assert select_windows(DAY, DAY + timedelta(days=1), tags, FIRST, NOW) == [
        w("2021-12-01-00:15"),
        w("2021-12-01-01:30"),
    ]
    # a window outside the run's partitions is a mistake, not silently ignored
    with pytest.raises(WindowSelectionError, match="2021-12-02-00:00"):
        select_windows(DAY, DAY + timedelta(days=1), {WINDOWS_TAG: "2021-12-02-00:00"}, FIRST, NOW)


def test_the_range_tag_trims_the_days_to_a_range_of_windows() -> None:
    tags = {RANGE_TAG: range_tag(w("2021-12-01-23:00"), w("2021-12-02-00:30"))}
    got = select_windows(DAY, DAY + timedelta(days=2), tags, FIRST, NOW)
    assert got == [w(k) for k in ("2021-12-01-23:00", "2021-12-01-23:15", "2021-12-01-23:30")] + [
        w(k) for k in ("2021-12-01-23:45", "2021-12-02-00:00", "2021-12-02-00:15")
    ]


def test_windows_before_the_first_or_after_the_window_in_progress_are_never_computed() -> None:
    today = datetime(2026, 11, 30, tzinfo=UTC)
    got = select_windows(today, today + timedelta(days=1), {}, FIRST, NOW)
    assert got[-1] == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # the window in progress
    late_start = datetime(2021, 12, 1, 6, 0, tzinfo=UTC)
    assert select_windows(DAY, DAY + timedelta(days=1), {}, late_start, NOW)[0] == late_start


def test_window_run_is_the_day_and_the_window() -> None:
    assert window_run("2021-12-01-01:30") == {
        "partition_key": "2021-12-01",
        "tags": {WINDOWS_TAG: "2021-12-01-01:30"},
    }


def test_a_backfill_covers_the_days_of_the_windows_trimmed_to_them() -> None:
    windows = [w("2021-12-01-22:00"), w("2021-12-02-01:15"), w("2021-12-04-00:00")]
    plan = plan_backfill(windows)
    assert plan.days == ["2021-12-01", "2021-12-02", "2021-12-04"]
    assert plan.tags == {
        TRIGGER_TAG: "backfill",
        RANGE_TAG: "2021-12-01-22:00/2021-12-04-00:15",
    }
    # an explicit [start, end) keeps its bounds (an unaligned end includes its window)
    start, end = datetime(2021, 12, 1, 6, 0, tzinfo=UTC), datetime(2021, 12, 1, 7, 5, tzinfo=UTC)
    ranged = plan_backfill([start], (start, end))
    assert ranged.days == ["2021-12-01"]
    assert ranged.tags[RANGE_TAG] == "2021-12-01-06:00/2021-12-01-07:15"
    # days that are not partitions (before the start, after today) are left out
    assert plan_backfill([datetime(2020, 1, 1, tzinfo=UTC)]).days == []
