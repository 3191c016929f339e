"""Which Parquet drops are new, and which windows they touch: the drop sensor's logic, pure.

Cursor: the newest `last_modified` processed (the watermark) plus the keys processed within
`OVERLAP` of it. Each tick lists the hour folders from `LOOKBACK` before the watermark (a file can
land late in an earlier hour folder: Firehose retries for up to 24 h) and takes, oldest first, the
files modified after `watermark - OVERLAP` that it has not processed. Ordering by (last_modified,
key) and remembering the overlap's keys means no file is skipped (even one whose timestamp is a
little older than one already seen, as with uploads finishing out of order) and none is taken
twice. Work per tick is bounded by `max_files`; a backlog is worked off over several ticks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from musicnft.batch.lake_index import FileStats
from musicnft.contract.windows import WINDOW, window_key, windows_between
from musicnft.ports import LakeObject

LOOKBACK = timedelta(hours=48)
OVERLAP = timedelta(minutes=10)
# Files the hour-folder listing cannot see (delivered more than LOOKBACK late, or behind a
# watermark a clock-skewed file pushed ahead) are found by a full listing of raw/ compared with
# the index, this often.
SWEEP_EVERY = timedelta(hours=1)
CURSOR_VERSION = 1


@dataclass
class DropCursor:
    watermark: datetime | None = None
    recent: dict[str, float] = field(default_factory=dict)  # key -> last_modified (epoch s)
    pending: dict[str, list[str]] = field(default_factory=dict)  # future window -> file keys
    swept_at: datetime | None = None  # the last full listing of raw/ against the index

    def to_json(self) -> str:
        data: dict[str, object] = {
            "v": CURSOR_VERSION,
            "watermark": self.watermark.timestamp() if self.watermark else None,
            "recent": self.recent,
            "pending": self.pending,
        }
        if self.swept_at is not None:
            data["swept_at"] = self.swept_at.timestamp()
        return json.dumps(data, sort_keys=True)

    def sweep_due(self, now: datetime) -> bool:
        return self.swept_at is None or now - self.swept_at >= SWEEP_EVERY

    @classmethod
    def from_json(cls, raw: str | None) -> DropCursor:
        """Parse a saved cursor; raises ValueError for one that is not ours (never guesses)."""
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            if data.get("v") != CURSOR_VERSION:
                raise ValueError(f"cursor version {data.get('v')!r}")
            mark = data["watermark"]
            pending = data["pending"]
            swept = data.get("swept_at")  # absent in cursors written before the sweep existed
            if not all(isinstance(v, list) for v in pending.values()):
                raise ValueError("pending windows must map to lists of keys")
            return cls(
                watermark=datetime.fromtimestamp(mark, UTC) if mark is not None else None,
                recent={str(k): float(v) for k, v in data["recent"].items()},
                pending={str(k): [str(x) for x in v] for k, v in pending.items()},
                swept_at=datetime.fromtimestamp(swept, UTC) if swept is not None else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, OSError) as exc:
            raise ValueError(f"unreadable drop-sensor cursor: {exc}") from None

    def list_from_hour(self) -> datetime | None:
        return None if self.watermark is None else self.watermark - LOOKBACK


def select_new_files(
    cursor: DropCursor,
    listing: Iterable[LakeObject],
    max_files: int,
    now: datetime | None = None,
) -> tuple[list[LakeObject], DropCursor, bool]:
    """(files to process now, the cursor after them, whether more are waiting).

    The watermark never passes `now`: a file stamped in the future (a skewed clock) must not make
    the sensor skip the files that land before that time."""
    floor = None if cursor.watermark is None else cursor.watermark - OVERLAP
    fresh = sorted(
        (
            obj
            for obj in listing
            if obj.key.endswith(".parquet")
            and obj.key not in cursor.recent
            and (floor is None or obj.last_modified > floor)
        ),
        key=lambda o: (o.last_modified, o.key),
    )
    take, more = fresh[:max_files], len(fresh) > max_files
    if not take:
        return [], cursor, False
    watermark = max([cursor.watermark or take[-1].last_modified, take[-1].last_modified])
    if now is not None:
        watermark = min(watermark, max(now, cursor.watermark or now))
    keep_after = (watermark - OVERLAP).timestamp()
    recent = {k: t for k, t in cursor.recent.items() if t >= keep_after}
    recent.update({o.key: o.last_modified.timestamp() for o in take})
    recent = {k: t for k, t in recent.items() if t >= keep_after}
    return take, DropCursor(watermark, recent, dict(cursor.pending), cursor.swept_at), more


def missed_files(
    listing: Iterable[LakeObject], known: set[str], max_files: int
) -> list[LakeObject]:
    """Parquet files of a full listing that are neither indexed nor quarantined (`known`): the
    ones the hour-folder listing missed, and those whose footer read failed in passing (taken
    by a tick, so in the cursor, but never indexed). Oldest first, at most `max_files` (the
    rest are found by the next sweep)."""
    missed = sorted(
        (o for o in listing if o.key.endswith(".parquet") and o.key not in known),
        key=lambda o: (o.last_modified, o.key),
    )
    return missed[:max_files]


@dataclass
class RunPlan:
    runs: dict[str, list[str]]  # window key -> the new files touching it
    before_start: int  # files (or file parts) whose posts fall before the partitions' start
    future: dict[str, list[str]]  # windows not yet a partition (clock skew): wait in the cursor
    dropped_future: int = 0  # future windows beyond MAX_PENDING_WINDOWS, not kept


# A file whose posts span more windows than this (a replay mixing old and new posts, a post
# stamped far in the future) has its exact windows read from its created_at column instead of
# assuming every window between its min and max: one file must never fan out into thousands
# of runs or pending windows.
MAX_SPAN_WINDOWS = 96
# Far-future windows waiting in the cursor beyond this many are dropped (logged by the caller);
# `musicnft backfill` materializes them when their time comes.
MAX_PENDING_WINDOWS = 1000


def plan_runs(
    stats: Iterable[FileStats],
    first_window: datetime,
    last_window: datetime,
    pending: dict[str, list[str]] | None = None,
    exact_windows: Callable[[FileStats], set[datetime]] | None = None,
) -> RunPlan:
    """Group new files by the windows their posts fall in.

    From the footer's [min, max] created_at when that spans few windows; from the file's own
    created_at column (`exact_windows`) when it spans more than MAX_SPAN_WINDOWS.
    """
    touched: dict[str, set[str]] = {k: set(v) for k, v in (pending or {}).items()}
    before = 0
    for s in stats:
        if s.min_created_at is None or s.max_created_at is None:
            continue  # an empty file touches no window
        span = (s.max_created_at - s.min_created_at) / WINDOW
        if span > MAX_SPAN_WINDOWS and exact_windows is not None:
            windows = sorted(exact_windows(s))
        else:
            windows = list(windows_between(s.min_created_at, s.max_created_at))
        early = [w for w in windows if w < first_window]
        if early:
            before += 1
        for window in windows:
            if window >= first_window:
                touched.setdefault(window_key(window), set()).add(s.key)
    last_key = window_key(last_window)
    runs = {k: sorted(v) for k, v in sorted(touched.items()) if k <= last_key}
    future = {k: sorted(v) for k, v in sorted(touched.items()) if k > last_key}
    dropped = 0
    if len(future) > MAX_PENDING_WINDOWS:
        keep = sorted(future)[:MAX_PENDING_WINDOWS]
        dropped = len(future) - len(keep)
        future = {k: future[k] for k in keep}
    return RunPlan(runs, before, future, dropped)


def run_key(window: str, files: Iterable[str]) -> str:
    """Deterministic: the same window with the same new files is the same run, whenever asked."""
    digest = hashlib.sha1("\n".join(sorted(files)).encode()).hexdigest()[:16]
    return f"drops:{window}:{digest}"
