"""Which 15-minute windows a run recomputes.

A run is for one day partition (the sensors and the schedule) or a range of days (a backfill,
BackfillPolicy). Its tags narrow that down: `musicnft/windows` names windows (comma-separated
window keys), `musicnft/window_range` keeps a [first, end) range of windows (`musicnft backfill
--start/--end` within a day). Without either, every window of the days. Windows before the first
partition window or after the window in progress are never computed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from musicnft.contract.windows import WINDOW, parse_window_key, window_key, window_start
from musicnft_dagster.jobs import RANGE_TAG, WINDOWS_TAG
from musicnft_dagster.partitions import day_key

RANGE_SEPARATOR = "/"


class WindowSelectionError(ValueError):
    """A run's tags name windows outside the run's partitions (a mistake worth failing for)."""


def windows_tag(windows: Iterable[str]) -> str:
    return ",".join(sorted(set(windows)))


def range_tag(first: datetime, end: datetime) -> str:
    return f"{window_key(first)}{RANGE_SEPARATOR}{window_key(end)}"


def select_windows(
    start: datetime,
    end: datetime,
    tags: Mapping[str, str],
    first: datetime,
    now: datetime | None = None,
) -> list[datetime]:
    """The windows of the partitions' time span [start, end) that the run's tags select, from
    `first` (the first window of the partitions) to the window in progress at `now`."""
    last = window_start(now or datetime.now(UTC))
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    named = tags.get(WINDOWS_TAG, "").strip()
    if named:
        windows = sorted({parse_window_key(k.strip()) for k in named.split(",") if k.strip()})
        outside = [window_key(w) for w in windows if not start <= w < end]
        if outside:
            raise WindowSelectionError(
                f"{WINDOWS_TAG} names windows outside the run's partitions "
                f"[{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}): {', '.join(outside[:5])}"
            )
    else:
        windows = []
        w = window_start(start)
        while w < end:
            windows.append(w)
            w += WINDOW
    bounds = tags.get(RANGE_TAG, "").strip()
    if bounds:
        lo_key, _, hi_key = bounds.partition(RANGE_SEPARATOR)
        lo, hi = parse_window_key(lo_key), parse_window_key(hi_key)
        windows = [w for w in windows if lo <= w < hi]
    return [w for w in windows if first <= w <= last]


def window_run(key: str) -> dict[str, Any]:
    """The `partition_key` and `tags` of a run of one window (by its window key), e.g.
    `dg.materialize(WINDOW_ASSETS, **window_run("2021-12-01-01:30"), resources=...)`."""
    return {"partition_key": day_key(parse_window_key(key)), "tags": {WINDOWS_TAG: key}}
