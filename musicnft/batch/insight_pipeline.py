"""The insight tables for one window: `entity_metrics_15m` and `spikes_15m` (issue 18).

Like `window_pipeline`: plain functions over the warehouse port, each replacing its window's
rows (idempotent), shared by the Dagster assets and `musicnft backfill`. Spikes read the window's
own aggregates (so they run after `window_metrics_15m`, `hashtag_counts_15m` and
`entity_metrics_15m`) and the same tables over the trailing 7 days.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from musicnft.batch.insight import HISTORY, entity_metrics, score_spikes
from musicnft.batch.window_pipeline import window_posts_by_window
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
    return build_entity_metrics_windows(warehouse, [window], now)[window]


def build_entity_metrics_windows(
    warehouse: Any, windows: Sequence[datetime], now: datetime | None = None
) -> dict[datetime, int]:
    """`build_entity_metrics` for several windows: one read of their posts, one write."""
    chosen = sorted(set(windows))
    if not chosen:
        return {}
    now = now or datetime.now(UTC)
    posts = window_posts_by_window(warehouse, chosen)
    rows = {w: entity_metrics(posts[w], w, now) for w in chosen}
    warehouse.replace_partitions(
        "entity_metrics_15m",
        [window_key(w) for w in chosen],
        pa.Table.from_pylist([r for w in chosen for r in rows[w]], schema=ENTITY_METRICS_SCHEMA),
    )
    return {w: len(rows[w]) for w in chosen}


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
    return build_spikes_windows(warehouse, [window], now)[window]


def build_spikes_windows(
    warehouse: Any, windows: Sequence[datetime], now: datetime | None = None
) -> dict[datetime, list[dict[str, Any]]]:
    """`build_spikes` for several windows (after their aggregates): the counts of all of them
    and of the 7 days before the first read at once, one write. A window's history includes
    the windows before it in the same call, as when they are scored one by one."""
    chosen = sorted(set(windows))
    if not chosen:
        return {}
    first, end = chosen[0], chosen[-1] + WINDOW
    current: dict[datetime, dict[tuple[str, str], int]] = {w: {} for w in chosen}
    for dimension in SOURCES:
        for r in _counts(warehouse, dimension, first, end, None):
            counts = current.get(r["window_start"])
            if counts is None:  # a window between the chosen ones
                continue
            if r["key"] is not None and (r["post_count"] or dimension == "keyword"):
                counts[(dimension, r["key"])] = int(r["post_count"] or 0)
    history: dict[tuple[str, str], dict[datetime, int]] = {}
    for dimension in SOURCES:
        keys = sorted({k for c in current.values() for d, k in c if d == dimension})
        if not keys:
            continue
        for r in _counts(warehouse, dimension, first - HISTORY, chosen[-1], keys):
            history.setdefault((dimension, r["key"]), {})[r["window_start"]] = int(
                r["post_count"] or 0
            )
    processed = (
        warehouse.query(
            "SELECT DISTINCT window_start FROM window_metrics_15m "
            "WHERE keyword = ? AND window_start >= ? AND window_start < ?",
            ["all", first - HISTORY, chosen[-1]],
        )
        .column(0)
        .to_pylist()
    )
    now = now or datetime.now(UTC)
    # score_spikes looks at each window's own trailing 7 days only
    rows = {w: score_spikes(w, current[w], history, processed, now) for w in chosen}
    warehouse.replace_partitions(
        "spikes_15m",
        [window_key(w) for w in chosen],
        pa.Table.from_pylist([r for w in chosen for r in rows[w]], schema=SPIKES_SCHEMA),
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


def build_insight(warehouse: Any, windows: Sequence[datetime], now: datetime | None = None) -> None:
    """Both insight tables for the windows (after their aggregates): what `musicnft backfill
    --no-dagster` runs; alerts are the Dagster asset's job (backfills page nobody)."""
    build_entity_metrics_windows(warehouse, windows, now)
    build_spikes_windows(warehouse, windows, now)
