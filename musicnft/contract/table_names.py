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
    "entity_metrics_15m",
    "spikes_15m",
    "nft_sales_15m",
    "lake_files",
    "lake_quarantine",
    "posts_hot_repairs",
    "deletions",
    "engagement_snapshots",
    "engagement_15m",
)
WINDOWED_TABLE_NAMES = (
    "posts",
    "window_metrics_15m",
    "hashtag_counts_15m",
    "location_counts_15m",
    "reconciliation_15m",
    "nft_sales_15m",
    "entity_metrics_15m",
    "spikes_15m",
    "engagement_15m",
)
# Tables whose rows carry `inserted_at`, the warehouse's acceptance time (stamped on insert).
STAMPED_TABLE_NAMES = ("posts_hot", "posts")
