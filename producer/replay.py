"""The replay source: lines from a file (plain or gzip), paced like the original stream or faster."""

from __future__ import annotations

import gzip
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO


def open_lines(path: Path) -> IO[bytes]:
    """Open a replay file; gzip is recognized by its magic bytes, not the name."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]  # GzipFile is an IO[bytes]
    return open(path, "rb")


def iter_lines(path: Path) -> Iterator[tuple[str, bytes]]:
    """(reference, line) pairs, the line without its `\\n` / `\\r\\n`, streamed from disk."""
    name = Path(path).name
    with open_lines(path) as fh:
        for number, line in enumerate(fh, start=1):
            yield f"{name}:{number}", line.rstrip(b"\r\n")


def parse_speed(value: str) -> float | None:
    """`max` → None (no pacing); a positive number → that acceleration factor."""
    if value.strip().lower() == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise ValueError(f"speed must be 'max' or a positive number, got {value!r}") from None
    if speed <= 0:
        raise ValueError(f"speed must be 'max' or a positive number, got {value!r}")
    return speed


# The longest stretch of post time one gap between consecutive posts may take in a paced replay
# (one window): lulls longer than this are shortened, outliers cannot stall the replay.
MAX_GAP = timedelta(minutes=15)


class Pacer:
    """Maps post time to wall time: at speed N, an hour of posts takes 60/N minutes.

    With `restamp`, each post's `created_at` becomes the wall-clock time it is emitted, so a replay
    looks live to windows and dashboards (the rhythm kept, compressed by the speed).
    """

    def __init__(
        self,
        speed: float | None,
        restamp: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.speed = speed
        self.restamp = restamp
        self.clock = clock
        self._first_post: datetime | None = None
        self._first_wall = 0.0
        self._previous: datetime | None = None  # the post time the schedule last advanced to
        self._elapsed = 0.0  # post-time seconds the schedule has advanced, gaps clamped
        self._stamps: OrderedDict[str, datetime] = OrderedDict()
        self.max_remembered = 200_000

    def due_in(self, created_at: datetime) -> float:
        """Seconds to wait before emitting a post created at `created_at` (0 when due).

        The schedule advances by the gap between consecutive posts, each gap clamped to
        `MAX_GAP`: one post stamped far in the future (or a first post from 1970) costs at most
        one clamped gap instead of years of sleep, and a jump back by more than `MAX_GAP` rebases
        the schedule rather than holding everything after it. Out-of-order posts within the
        bound are emitted at once.
        """
        if self._first_post is None:
            self._first_post = self._previous = created_at
            self._first_wall = self.clock()
        if self.speed is None:
            return 0.0
        assert self._previous is not None
        gap = (created_at - self._previous).total_seconds()
        if gap < -MAX_GAP.total_seconds():
            self._previous = created_at  # a jump back: rebase, no wait
        elif gap > 0:
            self._elapsed += min(gap, MAX_GAP.total_seconds())
            self._previous = created_at
        return max(0.0, self._first_wall + self._elapsed / self.speed - self.clock())

    def stamp(self, created_at: datetime, post_id: str) -> datetime:
        """The post's time, or with `restamp` the wall-clock time it is first emitted.

        A post the source sends twice keeps its first stamp: a post's creation time never
        changes, and windows, deduplication and reconciliation rely on that.
        """
        if not self.restamp:
            return created_at
        stamped = self._stamps.get(post_id)
        if stamped is None:
            stamped = datetime.fromtimestamp(self.clock(), UTC)
            self._stamps[post_id] = stamped
            if len(self._stamps) > self.max_remembered:
                self._stamps.popitem(last=False)
        return stamped
