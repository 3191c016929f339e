"""The insight tables for one window: `entity_metrics_15m` and `spikes_15m` (issue 18).

Like `window_pipeline`: plain functions over the warehouse port, each replacing its window's
rows (idempotent), shared by the Dagster assets and `musicnft backfill`. Spikes read the window's
own aggregates (so they run after `window_metrics_15m`, `hashtag_counts_15m` and
`entity_metrics_15m`) and the same tables over the trailing 7 days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from musicnft.batch.insight import HISTORY, entity_metrics, score_spikes
from musicnft.batch.window_pipeline import window_posts
from musicnft.contract.tables import ENTITY_METRICS_SCHEMA, SPIKES_SCHEMA
from musicnft.contract.windows import WINDOW, window_key

# dimension -> (table, key column)
SOURCES = {
    "keyword": ("window_metrics_15m", "keyword"),
    "entity": ("entity_metrics_15m", "entity"),
    "hashtag": ("hashtag_counts_15m", "hashtag"),
}
# dimension -> the posts column that holds the key (for the posts behind a spike)
POST_COLUMNS = {"keyword": "matched_keywords", "entity": "entities", "hashtag": "hashtags"}


def build_entity_metrics(warehouse: Any, window: datetime, now: datetime | None = None) -> int:
    """Replace the window's `entity_metrics_15m` rows from its `posts`; the row count."""
    rows = entity_metrics(window_posts(warehouse, window), window, now or datetime.now(UTC))
    warehouse.replace_partition(
        "entity_metrics_15m",
        window_key(window),
        pa.Table.from_pylist(rows, schema=ENTITY_METRICS_SCHEMA),
    )
    return len(rows)


def _counts(
    warehouse: Any, dimension: str, start: datetime, end: datetime, keys: Iterable[str] | None
) -> list[dict[str, Any]]:
    table, column = SOURCES[dimension]
    sql = f"SELECT window_start, {column} AS key, post_count FROM {table} "
    sql += "WHERE window_start >= ? AND window_start < ?"
    params: list[Any] = [start, end]
    if keys is not None:
        sql += f" AND {warehouse.dialect.in_list_param(column)}"
        params.append(list(keys))
    return list(warehouse.query(sql, params).to_pylist())


def build_spikes(
    warehouse: Any, window: datetime, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Score every keyword, entity and hashtag of the window against its trailing 7 days and
    replace the window's `spikes_15m` rows; the rows (spikes have `is_spike`)."""
    end = window + WINDOW
    current: dict[tuple[str, str], int] = {}
    for dimension in SOURCES:
        for r in _counts(warehouse, dimension, window, end, None):
            if r["key"] is not None and (r["post_count"] or dimension == "keyword"):
                current[(dimension, r["key"])] = int(r["post_count"] or 0)
    history: dict[tuple[str, str], dict[datetime, int]] = {}
    for dimension in SOURCES:
        keys = [k for d, k in current if d == dimension]
        if not keys:
            continue
        for r in _counts(warehouse, dimension, window - HISTORY, window, keys):
            history.setdefault((dimension, r["key"]), {})[r["window_start"]] = int(
                r["post_count"] or 0
            )
    processed = warehouse.query(
        "SELECT DISTINCT window_start FROM window_metrics_15m "
        "WHERE keyword = ? AND window_start >= ? AND window_start < ?",
        ["all", window - HISTORY, window],
    ).column(0)
    rows = score_spikes(window, current, history, processed.to_pylist(), now or datetime.now(UTC))
    warehouse.replace_partition(
        "spikes_15m", window_key(window), pa.Table.from_pylist(rows, schema=SPIKES_SCHEMA)
    )
    return rows


def spike_posts(
    warehouse: Any, window: datetime, dimension: str, key: str, limit: int = 5
) -> list[dict[str, Any]]:
    """The posts behind a spike: the window's posts carrying the key, most engaged first."""
    sql = (
        "SELECT post_id, author_handle, text, sentiment_label, created_at, "
        "coalesce(reply_count, 0) + coalesce(repost_count, 0) + coalesce(like_count, 0) "
        "+ coalesce(quote_count, 0) AS engagement FROM posts WHERE window_start = ?"
    )
    params: list[Any] = [window]
    if not (dimension == "keyword" and key == "all"):
        sql += f" AND {warehouse.dialect.list_contains_param(POST_COLUMNS[dimension])}"
        params.append(key)
    sql += f" ORDER BY engagement DESC, created_at, post_id LIMIT {int(limit)}"
    return list(warehouse.query(sql, params).to_pylist())


def build_insight(warehouse: Any, window: datetime, now: datetime | None = None) -> None:
    """Both insight tables for the window (after its aggregates): what `musicnft backfill
    --no-dagster` runs; alerts are the Dagster asset's job (backfills page nobody)."""
    build_entity_metrics(warehouse, window, now)
    build_spikes(warehouse, window, now)
