"""`musicnft backfill`: rebuild every window in a range from the lake, the same code the assets run.

It first indexes lake files the drop sensor has not seen, then materializes each window (posts,
aggregates, reconciliation) and evaluates the same checks as the Dagster assets. The caller may
hand it a `WindowRecorder` called with each window's outcome: the app layer passes one that records
it in the Dagster instance (built by the Dagster code location), so the UI shows the backfilled
partitions; this module knows nothing of Dagster.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from musicnft.batch import sales as bs
from musicnft.batch import window_pipeline as wp
from musicnft.batch.drops import MAX_SPAN_WINDOWS
from musicnft.batch.insight_pipeline import build_insight
from musicnft.batch.lake_index import LakeIndex, read_file_stats, read_table, unreadable_reason
from musicnft.contract.lake_layout import RAW_PREFIX, SALES_PREFIX, time_column
from musicnft.contract.windows import WINDOW, window_key, window_start, windows_between
from musicnft.ports import Lake, Warehouse

log = logging.getLogger("musicnft.backfill")


@dataclass
class WindowOutcome:
    window: datetime
    posts: wp.PostsResult
    reconciliation: wp.ReconciliationResult
    checks: dict[str, tuple[bool, Any]]
    sales: bs.SalesResult | None = None

    @property
    def passed(self) -> bool:
        return all(ok for ok, _ in self.checks.values())


@dataclass
class BackfillReport:
    windows: list[WindowOutcome] = field(default_factory=list)
    indexed_files: int = 0

    @property
    def failed(self) -> list[WindowOutcome]:
        return [w for w in self.windows if not w.passed]


# Called with each window's outcome as soon as it is materialized (e.g. to record it elsewhere).
WindowRecorder = Callable[[WindowOutcome], None]


def index_lake(lake: Lake, warehouse: Warehouse, chunk: int = 500) -> int:
    """Index every raw/ (posts) and sales/ (NFT sales) file not yet in `lake_files`; returns
    how many were added."""
    index = LakeIndex(warehouse)
    known = index.known_keys() | set(index.quarantined())
    new = [
        o
        for prefix in (RAW_PREFIX, SALES_PREFIX)
        for o in lake.list_objects(prefix)
        if o.key.endswith(".parquet") and o.key not in known
    ]
    for i in range(0, len(new), chunk):
        stats = []
        for obj in new[i : i + chunk]:
            try:
                stats.append(read_file_stats(lake, obj))
            except Exception as exc:  # one bad file must not stop the backfill
                reason = unreadable_reason(exc)
                if reason is None:
                    log.warning("cannot read %s now (%s); the next run retries it", obj.key, exc)
                else:
                    index.quarantine(obj.key, reason)
        index.record(stats)
    return len(new)


def windows_with_posts(
    warehouse: Warehouse, files_since: datetime | None = None, lake: Lake | None = None
) -> list[datetime]:
    """The windows the indexed files' posts fall in: from a file's [min, max] when that spans
    few windows, else (with the lake at hand) from the file's own time column, so one post
    stamped decades away cannot fan a backfill out to millions of empty windows."""
    windows: set[datetime] = set()
    for key, lo, hi in LakeIndex(warehouse).files_with_posts(files_since):
        if lake is not None and (hi - lo) / WINDOW > MAX_SPAN_WINDOWS:
            column = read_table(lake, key, columns=[time_column(key)]).column(0).to_pylist()
            windows.update(window_start(t) for t in column if t is not None)
        else:
            windows.update(windows_between(lo, hi))
    return sorted(windows)


def materialize_window(
    lake: Lake, warehouse: Warehouse, window: datetime, keywords: list[str]
) -> WindowOutcome:
    return materialize_windows(lake, warehouse, [window], keywords)[0]


def materialize_windows(
    lake: Lake, warehouse: Warehouse, windows: Sequence[datetime], keywords: list[str]
) -> list[WindowOutcome]:
    """Every table of these windows, step by step as the Dagster assets run them (each step
    reads and writes all the windows at once), and each window's checks."""
    chosen = sorted(set(windows))
    posts = wp.build_posts_windows(lake, warehouse, chosen)
    for table in wp.AGGREGATE_TABLES:
        wp.build_aggregates(warehouse, table, chosen, keywords)
    build_insight(warehouse, chosen)
    recons = wp.reconcile_windows(warehouse, chosen)
    sales = bs.build_sales_windows(lake, warehouse, chosen)
    duplicate_rows = wp.duplicate_post_rows(warehouse, chosen)
    stored_sales = bs.stored_sales_counts(warehouse, chosen)
    schema_checks = wp.check_posts_schemas(warehouse, chosen)
    outcomes = []
    for window, post, recon, sale in zip(chosen, posts, recons, sales, strict=True):
        dups = duplicate_rows[window]
        schema_ok, diffs = schema_checks[window]
        negative_rows = stored_sales[window]["negative_rows"]
        checks = {
            "posts.post_id_unique": (dups == 0, {"duplicate_rows": dups}),
            "posts.schema_v1": (schema_ok, {"differences": diffs}),
            "reconciliation_15m.lake_matches_warehouse": (
                recon.reconciled,
                {"still_missing": recon.after_missing, "still_duplicated": recon.after_duplicates},
            ),
            "nft_sales_15m.sale_ids_unique": bs.sales_counted_once(
                sale.sales, stored_sales[window]
            ),
            "nft_sales_15m.prices_non_negative": (
                negative_rows == 0 and not sale.negative_prices,
                {"negative_rows": negative_rows, "negative_sales_left_out": sale.negative_prices},
            ),
        }
        outcomes.append(WindowOutcome(window, post, recon, checks, sale))
    return outcomes


class Progress:
    """A one-line progress bar on a terminal; a log line every 10% otherwise."""

    def __init__(self, total: int, label: str, stream: Any = sys.stderr) -> None:
        self.total, self.label, self.stream = total, label, stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.started = time.monotonic()
        self._last_decile = -1

    def update(self, done: int, note: str = "") -> None:
        frac = done / self.total if self.total else 1.0
        if self.tty:
            bar = "#" * int(frac * 30)
            self.stream.write(f"\r{self.label} [{bar:<30}] {done}/{self.total} {note:<40}")
            self.stream.flush()
            if done == self.total:
                self.stream.write("\n")
        elif int(frac * 10) != self._last_decile:
            self._last_decile = int(frac * 10)
            rate = done / max(time.monotonic() - self.started, 1e-9)
            log.info(
                "%s: %d/%d (%.0f%%, %.1f/s) %s",
                self.label,
                done,
                self.total,
                frac * 100,
                rate,
                note,
            )


def run_backfill(
    lake: Lake,
    warehouse: Warehouse,
    keywords: list[str],
    start: datetime | None = None,
    end: datetime | None = None,
    on_window: WindowRecorder | None = None,
    files_since: datetime | None = None,
) -> BackfillReport:
    report = BackfillReport(indexed_files=index_lake(lake, warehouse))
    if start is not None and end is not None:
        # An explicit range: every window in it, empty ones too (they are rewritten as empty).
        windows = [w for w in windows_between(start, end) if w < end]
    else:
        lo = window_start(start) if start else None
        windows = [
            w
            for w in windows_with_posts(warehouse, files_since, lake)
            if (lo is None or w >= lo) and (end is None or w < end)
        ]
    progress = Progress(len(windows), "backfill")
    for chunk in wp.chunked(windows):
        for outcome in materialize_windows(lake, warehouse, chunk, keywords):
            report.windows.append(outcome)
            if on_window:
                on_window(outcome)
            if not outcome.passed:
                log.error(
                    "window %s: a check failed: %s", window_key(outcome.window), outcome.checks
                )
        progress.update(len(report.windows), f"{window_key(chunk[-1])} {len(report.failed)} failed")
        wp.compact_windowed_tables(warehouse)
    return report


def parse_when(value: str) -> datetime:
    """ISO date or datetime (UTC when no zone is given)."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO date/time: {value!r}") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
