"""The warehouse tables' names, without pyarrow (their schemas are in `contract.tables`; a test keeps
the two in step), so code that only writes rows can name tables in a bundle with no pyarrow."""

from __future__ import annotations

TABLE_NAMES = (
    "posts_hot",
    "posts",
    "window_metrics_15m",
    "hashtag_counts_15m",
    "location_counts_15m",
    "reconciliation_15m",
    "lake_files",
    "lake_quarantine",
    "posts_hot_repairs",
)
WINDOWED_TABLE_NAMES = (
    "posts",
    "window_metrics_15m",
    "hashtag_counts_15m",
    "location_counts_15m",
    "reconciliation_15m",
)
