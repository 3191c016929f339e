"""The queries behind the dashboard's insight panels (issue 18): share of voice by entity with
its sentiment (`entity_metrics_15m`), what is spiking (`spikes_15m`) with the posts behind each
spike (`posts`), and engagement at 24 h (`window_metrics_15m`). Parameterized, through the
warehouse port, like `dashboard.queries`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from musicnft.batch.insight_pipeline import spike_posts


def entity_totals(wh: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per entity over [start, end): posts, share of voice (of all posts tracked in the range),
    post-weighted average sentiment, the sentiment split and engagement; most posts first."""
    total = (
        wh.query(
            "SELECT CAST(coalesce(sum(post_count), 0) AS BIGINT) FROM window_metrics_15m "
            "WHERE keyword = ? AND window_start >= ? AND window_start < ?",
            ["all", start, end],
        )
        .column(0)[0]
        .as_py()
        or 0
    )
    rows = wh.query(
        "SELECT entity, CAST(sum(post_count) AS BIGINT) AS posts, "
        "sum(avg_sentiment * post_count) / nullif(sum(CASE WHEN avg_sentiment IS NOT NULL "
        "THEN post_count END), 0) AS avg_sentiment, "
        "CAST(sum(positive_count) AS BIGINT) AS positive, "
        "CAST(sum(neutral_count) AS BIGINT) AS neutral, "
        "CAST(sum(negative_count) AS BIGINT) AS negative, "
        "CAST(sum(total_engagement) AS BIGINT) AS engagement "
        "FROM entity_metrics_15m WHERE window_start >= ? AND window_start < ? "
        "GROUP BY entity ORDER BY posts DESC, entity",
        [start, end],
    ).to_pylist()
    for r in rows:
        r["share_of_voice"] = r["posts"] / total if total else None
    return rows


def entity_hourly(wh: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per hour and entity: posts and post-weighted average sentiment (share of voice over time)."""
    return wh.query(
        f"SELECT {wh.dialect.hour('window_start')} AS hour, entity, "
        "CAST(sum(post_count) AS BIGINT) AS posts, "
        "sum(avg_sentiment * post_count) / nullif(sum(CASE WHEN avg_sentiment IS NOT NULL "
        "THEN post_count END), 0) AS avg_sentiment "
        "FROM entity_metrics_15m WHERE window_start >= ? AND window_start < ? "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        [start, end],
    ).to_pylist()


def spikes(wh: Any, start: datetime, end: datetime, limit: int = 10) -> list[dict[str, Any]]:
    """The latest spikes in [start, end), newest window first, strongest first within it."""
    return wh.query(
        "SELECT window_start, dimension, key, post_count, baseline, score FROM spikes_15m "
        "WHERE is_spike AND window_start >= ? AND window_start < ? "
        f"ORDER BY window_start DESC, score DESC, key LIMIT {int(limit)}",
        [start, end],
    ).to_pylist()


def posts_behind(wh: Any, spike: dict[str, Any], limit: int = 5) -> list[dict[str, Any]]:
    """The window's posts carrying the spike's key, most engaged first."""
    return spike_posts(wh, spike["window_start"], spike["dimension"], spike["key"], limit)


def engagement_24h_hourly(wh: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per hour posted (all posts), from `window_metrics_15m`: posts, posts re-read 24 h after
    posting (`read_24h`) and their engagement then in total (each window's mean × its posts)."""
    return wh.query(
        f"SELECT {wh.dialect.hour('window_start')} AS hour, "
        "CAST(sum(post_count) AS BIGINT) AS posts, "
        "CAST(coalesce(sum(engagement_24h_posts), 0) AS BIGINT) AS read_24h, "
        "CAST(round(sum(avg_engagement_24h * engagement_24h_posts)) AS BIGINT) AS engagement_24h "
        "FROM window_metrics_15m WHERE keyword = ? AND window_start >= ? AND window_start < ? "
        "GROUP BY 1 ORDER BY 1",
        ["all", start, end],
    ).to_pylist()


def engagement_hourly(wh: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per hour (all posts): posts, posts re-read at 1 h and 24 h, and their engagement then."""
    return wh.query(
        f"SELECT {wh.dialect.hour('window_start')} AS hour, "
        "CAST(sum(post_count) AS BIGINT) AS posts, "
        "CAST(sum(read_1h) AS BIGINT) AS read_1h, "
        "CAST(sum(engagement_1h) AS BIGINT) AS engagement_1h, "
        "CAST(sum(read_24h) AS BIGINT) AS read_24h, "
        "CAST(sum(engagement_24h) AS BIGINT) AS engagement_24h "
        "FROM engagement_15m WHERE keyword = ? AND window_start >= ? AND window_start < ? "
        "GROUP BY 1 ORDER BY 1",
        ["all", start, end],
    ).to_pylist()
