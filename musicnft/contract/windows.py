"""15-minute windows (UTC): the unit of every aggregate table and every Dagster partition."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

WINDOW = timedelta(minutes=15)
# Dagster's TimeWindowPartitionsDefinition key format for sub-daily windows.
KEY_FORMAT = "%Y-%m-%d-%H:%M"


def window_start(ts: datetime) -> datetime:
    ts = ts.astimezone(UTC)
    return ts.replace(minute=ts.minute - ts.minute % 15, second=0, microsecond=0)


def window_key(start: datetime) -> str:
    return window_start(start).strftime(KEY_FORMAT)


def parse_window_key(key: str) -> datetime:
    try:
        return datetime.strptime(key, KEY_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"not a window key (YYYY-MM-DD-HH:MM): {key!r}") from None


def windows_between(first: datetime, last: datetime) -> Iterator[datetime]:
    """Every window start from the window of `first` to the window of `last`, inclusive."""
    current, end = window_start(first), window_start(last)
    while current <= end:
        yield current
        current += WINDOW


def spans(windows: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """[start, end) of each run of consecutive windows: what a read of several windows filters
    on, so windows a day apart never read the day between them."""
    out: list[tuple[datetime, datetime]] = []
    for window in sorted(set(windows)):
        if out and out[-1][1] == window:
            out[-1] = (out[-1][0], window + WINDOW)
        else:
            out.append((window, window + WINDOW))
    return out
