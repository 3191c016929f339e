"""The queries of the "sales beside talk" panel, parameterized, on the 15-minute tables.

Sales come from `nft_sales_15m` (one row per window and collection with sales); the talk beside
them from `window_metrics_15m` (keyword `all`: every tracked post) or, once entities exist, from
`entity_metrics_15m` (the posts naming one entity). Everything is per 15-minute window, so the
panel draws both on one time axis. Standard SQL, run on the embedded warehouse and on BigQuery.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

ALL_COLLECTIONS = "all collections"
ALL_POSTS = "all posts"


def collections(wh: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Collections with sales in [start, end), busiest first: sales and ETH volume."""
    return wh.query(
        "SELECT collection, CAST(sum(sale_count) AS BIGINT) AS sales, "
        "sum(volume_eth) AS volume_eth FROM nft_sales_15m "
        "WHERE window_start >= ? AND window_start < ? "
        "GROUP BY collection ORDER BY sales DESC, collection",
        [start, end],
    ).to_pylist()


def sales_by_window(
    wh: Any,
    start: datetime,
    end: datetime,
    collection: str = ALL_COLLECTIONS,
    among: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Per window: sales and ETH volume of one collection, of all, or (`among`) of these
    collections (an entity's), and distinct buyers (added over collections: a buyer of two
    collections counts twice)."""
    where: str = ""
    params: list[Any] = [start, end]
    if collection != ALL_COLLECTIONS:
        where, params = "AND collection = ? ", [start, end, collection]
    elif among is not None:
        where, params = f"AND {wh.dialect.in_list_param('collection')} ", [start, end, list(among)]
    return wh.query(
        "SELECT window_start, CAST(sum(sale_count) AS BIGINT) AS sales, "
        "sum(volume_eth) AS volume_eth, max(max_price_eth) AS max_price_eth, "
        "CAST(sum(unique_buyers) AS BIGINT) AS buyers FROM nft_sales_15m "
        "WHERE window_start >= ? AND window_start < ? " + where + ""
        "GROUP BY window_start ORDER BY window_start",
        params,
    ).to_pylist()


def entity_collections(entity: str, entities_file: Path | None = None) -> list[str]:
    """The OpenSea collection slugs the entities file gives an entity (none when it gives none,
    or when there is no entities file to read)."""
    try:
        from musicnft.hotpath.entities import load_catalog

        found = load_catalog(entities_file).get(entity)
    except Exception:  # no catalog (yet), or an unreadable one: no mapping
        return []
    return list(getattr(found, "opensea_slugs", ()) or ())


def entities(wh: Any, start: datetime, end: datetime, limit: int = 50) -> list[str]:
    """Entities talked about in the range, most posts first (none before entities exist)."""
    try:
        rows = wh.query(
            "SELECT entity, sum(post_count) AS posts FROM entity_metrics_15m "
            "WHERE window_start >= ? AND window_start < ? AND post_count > 0 "
            "GROUP BY entity ORDER BY posts DESC, entity LIMIT ?",
            [start, end, limit],
        ).to_pylist()
    except Exception:  # an older warehouse without the table: talk is all posts
        return []
    return [r["entity"] for r in rows]


def talk_by_window(
    wh: Any, start: datetime, end: datetime, entity: str = ALL_POSTS
) -> list[dict[str, Any]]:
    """Per window with posts: post volume and average sentiment (all tracked posts, or the posts
    naming `entity`)."""
    if entity == ALL_POSTS:
        return wh.query(
            "SELECT window_start, CAST(post_count AS BIGINT) AS posts, avg_sentiment "
            "FROM window_metrics_15m WHERE keyword = 'all' AND window_start >= ? "
            "AND window_start < ? AND post_count > 0 ORDER BY window_start",
            [start, end],
        ).to_pylist()
    return wh.query(
        "SELECT window_start, CAST(sum(post_count) AS BIGINT) AS posts, "
        "sum(avg_sentiment * post_count) / nullif(sum(CASE WHEN avg_sentiment IS NOT NULL "
        "THEN post_count END), 0) AS avg_sentiment FROM entity_metrics_15m "
        "WHERE entity = ? AND window_start >= ? AND window_start < ? AND post_count > 0 "
        "GROUP BY window_start ORDER BY window_start",
        [entity, start, end],
    ).to_pylist()


def side_by_side(sales: list[dict[str, Any]], talk: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per window of either: sales, volume, posts, sentiment (zeros where a window has
    no sales or no posts; sentiment stays unknown where there are no posts)."""
    rows: dict[datetime, dict[str, Any]] = {}
    for s in sales:
        rows[s["window_start"]] = {
            "window_start": s["window_start"],
            "sales": int(s["sales"] or 0),
            "volume_eth": float(s["volume_eth"] or 0.0),
            "posts": 0,
            "avg_sentiment": None,
        }
    for t in talk:
        row = rows.setdefault(
            t["window_start"],
            {"window_start": t["window_start"], "sales": 0, "volume_eth": 0.0},
        )
        row["posts"] = int(t["posts"] or 0)
        row["avg_sentiment"] = t["avg_sentiment"]
    return [rows[w] for w in sorted(rows)]
