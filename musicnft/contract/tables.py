"""The warehouse tables of DESIGN.md, by name, with their Arrow schemas (same in every warehouse)."""

from __future__ import annotations

import pyarrow as pa

from musicnft.contract.schema import HOT_SCHEMA, TIMESTAMP
from musicnft.contract.table_names import WINDOWED_TABLE_NAMES

WINDOW_START = pa.field("window_start", TIMESTAMP, nullable=False)

POSTS_HOT_SCHEMA: pa.Schema = HOT_SCHEMA
POSTS_SCHEMA: pa.Schema = HOT_SCHEMA.append(WINDOW_START)
WINDOW_METRICS_SCHEMA = pa.schema(
    [
        WINDOW_START,
        pa.field("keyword", pa.string(), nullable=False),
        pa.field("post_count", pa.int64()),
        pa.field("unique_authors", pa.int64()),
        pa.field("avg_followers", pa.float64()),
        pa.field("avg_sentiment", pa.float64()),
        pa.field("positive_count", pa.int64()),
        pa.field("neutral_count", pa.int64()),
        pa.field("negative_count", pa.int64()),
        pa.field("total_engagement", pa.int64()),
        pa.field("avg_engagement_rate", pa.float64()),
        pa.field("repost_share", pa.float64()),
        pa.field("updated_at", TIMESTAMP),
        # The trained model's mean score (issue 15), beside VADER's avg_sentiment; last, as a
        # migration adds it (ALTER TABLE ... ADD COLUMN appends).
        pa.field("avg_model_sentiment", pa.float64()),
        # Engagement re-read 24 h after posting (issue 18 item 4; `engagement_15m`'s definition:
        # replies + reposts + likes + quotes of `ok` snapshots): posts read at +24 h and their
        # mean. Null until a post of the row has a +24 h snapshot; added last, by migration.
        pa.field("engagement_24h_posts", pa.int64()),
        pa.field("avg_engagement_24h", pa.float64()),
    ]
)
HASHTAG_COUNTS_SCHEMA = pa.schema(
    [WINDOW_START, pa.field("hashtag", pa.string()), pa.field("post_count", pa.int64())]
)
LOCATION_COUNTS_SCHEMA = pa.schema(
    [WINDOW_START, pa.field("location", pa.string()), pa.field("post_count", pa.int64())]
)
RECONCILIATION_SCHEMA = pa.schema(
    [
        WINDOW_START,
        pa.field("lake_count", pa.int64()),
        pa.field("hot_count", pa.int64()),
        pa.field("missing", pa.int64()),
        pa.field("duplicates", pa.int64()),
        pa.field("repaired", pa.int64()),
        pa.field("checked_at", TIMESTAMP),
    ]
)
ENTITY_METRICS_SCHEMA = pa.schema(
    [
        WINDOW_START,
        pa.field("entity", pa.string(), nullable=False),
        pa.field("post_count", pa.int64()),
        pa.field("unique_authors", pa.int64()),
        pa.field("avg_sentiment", pa.float64()),
        pa.field("positive_count", pa.int64()),
        pa.field("neutral_count", pa.int64()),
        pa.field("negative_count", pa.int64()),
        pa.field("total_engagement", pa.int64()),
        pa.field("updated_at", TIMESTAMP),
    ]
)
SPIKES_SCHEMA = pa.schema(
    [
        WINDOW_START,
        pa.field("dimension", pa.string(), nullable=False),  # keyword | entity | hashtag
        pa.field("key", pa.string(), nullable=False),
        pa.field("post_count", pa.int64()),
        pa.field("baseline", pa.float64()),
        pa.field("score", pa.float64()),
        pa.field("is_spike", pa.bool_()),
        pa.field("updated_at", TIMESTAMP),
    ]
)
NFT_SALES_SCHEMA = pa.schema(
    [
        WINDOW_START,
        pa.field("collection", pa.string(), nullable=False),
        pa.field("sale_count", pa.int64()),
        pa.field("volume_eth", pa.float64()),
        pa.field("avg_price_eth", pa.float64()),
        pa.field("max_price_eth", pa.float64()),
        pa.field("unique_buyers", pa.int64()),
        pa.field("updated_at", TIMESTAMP),
    ]
)

# Engagement re-read later (issue 18): at stream time a post's counts are ~0. Each post is read
# again about 1 h and 24 h after it was created (Bluesky's AppView, X's API within a budget); one
# row per post and age. `status` is ok, or missing (deleted or not found at the source).
ENGAGEMENT_SNAPSHOTS_SCHEMA = pa.schema(
    [
        pa.field("post_id", pa.string(), nullable=False),
        pa.field("platform", pa.string()),
        pa.field("age", pa.string(), nullable=False),  # 1h | 24h
        WINDOW_START,
        pa.field("read_at", TIMESTAMP),
        pa.field("status", pa.string()),
        pa.field("replies", pa.int64()),
        pa.field("reposts", pa.int64()),
        pa.field("likes", pa.int64()),
        pa.field("quotes", pa.int64()),
        pa.field("engagement", pa.int64()),
    ]
)
# Per window and keyword (or `all`), the engagement of its posts as re-read at 1 h and 24 h.
ENGAGEMENT_15M_SCHEMA = pa.schema(
    [
        WINDOW_START,
        pa.field("keyword", pa.string(), nullable=False),
        pa.field("post_count", pa.int64()),
        pa.field("read_1h", pa.int64()),
        pa.field("engagement_1h", pa.int64()),
        pa.field("read_24h", pa.int64()),
        pa.field("engagement_24h", pa.int64()),
        pa.field("updated_at", TIMESTAMP),
    ]
)

# Not a DESIGN.md table: the batch path's index of lake files (which windows each file touches),
# so a window reads only its own files however large the lake grows.
LAKE_FILES_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("min_created_at", TIMESTAMP),
        pa.field("max_created_at", TIMESTAMP),
        pa.field("row_count", pa.int64()),
        pa.field("size_bytes", pa.int64()),
        pa.field("last_modified", TIMESTAMP),
        pa.field("indexed_at", TIMESTAMP),
    ]
)

# Lake files no window can read (missing required columns, corrupt pages, not Parquet): set aside
# with the reason, so the windows they touch keep working and `status` can count them.
LAKE_QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("quarantined_at", TIMESTAMP),
    ]
)

# Posts reconciliation inserted into posts_hot because the hot path had not (yet): a consumer
# that lags behind the lake skips these ids instead of inserting them a second time.
POSTS_HOT_REPAIRS_SCHEMA = pa.schema(
    [
        pa.field("post_id", pa.string(), nullable=False),
        pa.field("window_start", TIMESTAMP),
        pa.field("repaired_at", TIMESTAMP),
    ]
)

# Tombstones (musicnft.contract.tombstone): one row per deletion learned (applied_at null), and
# one more per window it was applied to (applied_at set). `deletion_key` is the idempotency key.
DELETIONS_SCHEMA = pa.schema(
    [
        pa.field("deletion_key", pa.string(), nullable=False),
        pa.field("post_id", pa.string()),
        pa.field("author_id", pa.string()),
        pa.field("action", pa.string()),
        pa.field("source", pa.string()),
        pa.field("learned_at", TIMESTAMP),
        pa.field("applied_at", TIMESTAMP),
        pa.field("window_start", TIMESTAMP),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "posts_hot": POSTS_HOT_SCHEMA,
    "posts": POSTS_SCHEMA,
    "window_metrics_15m": WINDOW_METRICS_SCHEMA,
    "hashtag_counts_15m": HASHTAG_COUNTS_SCHEMA,
    "location_counts_15m": LOCATION_COUNTS_SCHEMA,
    "reconciliation_15m": RECONCILIATION_SCHEMA,
    "entity_metrics_15m": ENTITY_METRICS_SCHEMA,
    "spikes_15m": SPIKES_SCHEMA,
    "nft_sales_15m": NFT_SALES_SCHEMA,
    "lake_files": LAKE_FILES_SCHEMA,
    "lake_quarantine": LAKE_QUARANTINE_SCHEMA,
    "posts_hot_repairs": POSTS_HOT_REPAIRS_SCHEMA,
    "deletions": DELETIONS_SCHEMA,
    "engagement_snapshots": ENGAGEMENT_SNAPSHOTS_SCHEMA,
    "engagement_15m": ENGAGEMENT_15M_SCHEMA,
}
# Tables replaced one window at a time (one transaction per window in the embedded warehouse).
WINDOWED_TABLES = WINDOWED_TABLE_NAMES  # TABLE_NAMES lists TABLES in order (a test checks)
