"""BigQuery DDL for the warehouse tables, generated from the one definition of each table.

The tables' columns live in `musicnft.contract.tables` (the post columns in `musicnft.contract.schema`); this module
only says how BigQuery stores them: types, partitioning and clustering. The rendered DDL is kept
in `infra/bigquery/tables.sql` for review and for the BigQuery console; a test fails if it drifts.

BigQuery partitions by day at the finest useful grain for 15-minute windows (no 15-minute
partitions exist), so every windowed table is partitioned by `DATE(window_start)` and clustered by
`window_start` first: replacing one window touches one day partition and prunes to its blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from musicnft.contract.schema import HOT_FIELDS
from musicnft.contract.tables import TABLES

DEFAULT_DATASET = "musicnft"


@dataclass(frozen=True)
class Layout:
    partition_column: str | None
    cluster_by: tuple[str, ...]
    description: str


LAYOUTS: dict[str, Layout] = {
    # The hot path's table has no window: its day is the post's, and repairs look posts up by id.
    "posts_hot": Layout(
        "created_at",
        ("created_at", "post_id"),
        "Enriched posts as the hot path streamed them (may hold duplicates until reconciled).",
    ),
    "posts": Layout(
        "window_start",
        ("window_start", "post_id"),
        "Reconciled enriched posts from the lake, unique by post_id, per 15-minute window.",
    ),
    "window_metrics_15m": Layout(
        "window_start",
        ("window_start", "keyword"),
        "Per 15-minute window and keyword (or 'all'): volume, sentiment and engagement.",
    ),
    "hashtag_counts_15m": Layout(
        "window_start",
        ("window_start", "hashtag"),
        "Posts per hashtag (lower-case, no '#') per 15-minute window.",
    ),
    "location_counts_15m": Layout(
        "window_start",
        ("window_start", "location"),
        "Posts per author location per 15-minute window.",
    ),
    "reconciliation_15m": Layout(
        "window_start",
        ("window_start",),
        "Per window: lake vs posts_hot counts, what was missing or duplicated, what was repaired.",
    ),
    "entity_metrics_15m": Layout(
        "window_start",
        ("window_start", "entity"),
        "Per 15-minute window and mentioned entity: volume, authors, sentiment and engagement.",
    ),
    "spikes_15m": Layout(
        "window_start",
        ("window_start", "dimension", "key"),
        "Per window and keyword, entity or hashtag: volume against its robust baseline, spikes.",
    ),
    "nft_sales_15m": Layout(
        "window_start",
        ("window_start", "collection"),
        "Per 15-minute window and NFT collection: sales, volume and prices in ETH, buyers.",
    ),
    "lake_files": Layout(
        None,
        ("key",),
        "Index of the Parquet lake's files: which windows each file's posts fall in.",
    ),
    "lake_quarantine": Layout(
        None,
        ("key",),
        "Lake files no window can read, set aside with the reason.",
    ),
    "posts_hot_repairs": Layout(
        None,
        ("post_id",),
        "Posts reconciliation inserted into posts_hot; a lagging consumer skips them.",
    ),
    "engagement_snapshots": Layout(
        "window_start",
        ("window_start", "post_id"),
        "Engagement counts re-read about 1 h and 24 h after each post (Bluesky AppView, X API).",
    ),
    "engagement_15m": Layout(
        "window_start",
        ("window_start", "keyword"),
        "Per 15-minute window and keyword: engagement of its posts as re-read at 1 h and 24 h.",
    ),
    "deletions": Layout(
        None,
        ("deletion_key",),
        "Tombstones: posts or authors deleted at the source, and where each was applied.",
    ),
}

_DOCS: dict[str, str] = {f.name: f.doc for f in HOT_FIELDS} | {
    "window_start": "UTC start of the 15-minute window",
}


def bigquery_type(data_type: pa.DataType) -> str:
    """The BigQuery standard SQL type that stores an Arrow type of the contract."""
    if pa.types.is_list(data_type):
        return f"ARRAY<{bigquery_type(data_type.value_type)}>"
    if pa.types.is_string(data_type):
        return "STRING"
    if pa.types.is_integer(data_type):
        return "INT64"  # BigQuery has one integer type; int32 widens losslessly
    if pa.types.is_floating(data_type):
        return "FLOAT64"
    if pa.types.is_boolean(data_type):
        return "BOOL"
    if pa.types.is_timestamp(data_type):
        return "TIMESTAMP"
    raise TypeError(f"no BigQuery type for Arrow {data_type}")


def schema_field_type(data_type: pa.DataType) -> tuple[str, str]:
    """(field type, mode) as the BigQuery API reports them, for comparing live tables."""
    if pa.types.is_list(data_type):
        return schema_field_type(data_type.value_type)[0], "REPEATED"
    legacy = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}
    name = bigquery_type(data_type)
    return legacy.get(name, name), "NULLABLE"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def column_ddl(field: pa.Field) -> str:
    # BigQuery arrays are never NULL (a NULL array is stored as empty), so no NOT NULL on them.
    not_null = " NOT NULL" if not field.nullable and not pa.types.is_list(field.type) else ""
    doc = _DOCS.get(field.name)
    options = f" OPTIONS(description={_quote(doc)})" if doc else ""
    return f"  {field.name} {bigquery_type(field.type)}{not_null}{options}"


def table_ddl(table: str, dataset: str = DEFAULT_DATASET) -> str:
    """`CREATE TABLE IF NOT EXISTS` for one table (safe to run again: it never drops data)."""
    layout = LAYOUTS[table]
    columns = ",\n".join(column_ddl(f) for f in TABLES[table])
    lines = [f"CREATE TABLE IF NOT EXISTS `{dataset}.{table}` (", columns, ")"]
    if layout.partition_column:
        lines.append(f"PARTITION BY DATE({layout.partition_column})")
    lines.append(f"CLUSTER BY {', '.join(layout.cluster_by)}")
    lines.append(f"OPTIONS(description={_quote(layout.description)});")
    return "\n".join(lines)


def add_column_ddl(table: str, field: pa.Field, dataset: str = DEFAULT_DATASET) -> str:
    """A column the contract gained: added NULLABLE (BigQuery cannot add a REQUIRED column)."""
    return (
        f"ALTER TABLE `{dataset}.{table}` ADD COLUMN IF NOT EXISTS "
        f"{field.name} {bigquery_type(field.type)}"
    )


def render_tables(dataset: str = DEFAULT_DATASET) -> str:
    """The whole `infra/bigquery/tables.sql`."""
    header = (
        "-- Generated by `musicnft bigquery ddl` from musicnft/contract/tables.py and the post schema;\n"
        "-- do not edit by hand. Applied (idempotently) by `musicnft bigquery migrate`.\n"
    )
    return header + "\n\n".join(table_ddl(t, dataset) for t in TABLES) + "\n"
