"""The SQL condition for "a row of one of these windows", shared by every multi-window read.

Written as ranges over `window_start` (one per run of consecutive windows), never as
`IN (list)`: a range is a filter both warehouses push down to the files or partitions that can
hold it (DuckLake's per-file statistics, BigQuery's partition pruning), where a list parameter
becomes a join over the whole table in DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from musicnft.contract.windows import spans


def in_windows(
    windows: Iterable[datetime], column: str = "window_start"
) -> tuple[str, list[datetime]]:
    """(condition, its parameters) true for rows whose `column` falls in one of `windows`;
    false for no windows at all."""
    ranges = spans(windows)
    if not ranges:
        return "FALSE", []
    condition = " OR ".join(f"({column} >= ? AND {column} < ?)" for _ in ranges)
    return f"({condition})", [bound for span in ranges for bound in span]
