"""Every query the dashboard runs, in one place, parameterized, on the aggregate tables.

Each panel reads the 15-minute aggregates (`window_metrics_15m`, `hashtag_counts_15m`,
`location_counts_15m`); only "top posts" reads `posts`, because no aggregate can name a post.
The functions take the warehouse port. The SQL is standard but for two spellings that differ
between warehouses (truncating to the hour, testing list membership), which come from the
adapter's `dialect`, so the same queries run on the embedded warehouse and on BigQuery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

INT64_MAX = 2**63 - 1  # what the warehouse's integer columns (and the window tables) hold

ALL = "all"


@dataclass(frozen=True)
class Summary:
    total_posts: int
    posts_per_hour: float
    avg_followers: float | None
    avg_sentiment: float | None
    positive: int
    neutral: int
    negative: int
    total_engagement: int
    first_window: datetime | None
    last_window: datetime | None


@dataclass(frozen=True)
class Freshness:
    last_updated: datetime | None
    first_window: datetime | None
    last_window: datetime | None
    keywords: list[str]


def freshness(wh: Any) -> Freshness:
    """When the aggregates were last written and which windows they cover."""
    row = wh.query(
        "SELECT max(updated_at) AS last_updated, min(window_start) AS first_window, "
        "max(window_start) AS last_window FROM window_metrics_15m WHERE post_count > 0"
    ).to_pylist()[0]
    keywords = (
        wh.query(
            "SELECT DISTINCT keyword FROM window_metrics_15m WHERE keyword <> ? ORDER BY keyword",
            [ALL],
        )
        .column(0)
        .to_pylist()
    )
    return Freshness(row["last_updated"], row["first_window"], row["last_window"], keywords)


def summary(wh: Any, start: datetime, end: datetime, keyword: str = ALL) -> Summary:
    """Headline numbers for [start, end): averages weighted by each window's post count."""
    row = wh.query(
        "SELECT CAST(coalesce(sum(post_count), 0) AS BIGINT) AS posts, "
        "sum(avg_followers * post_count) / nullif(sum(CASE WHEN avg_followers IS NOT NULL "
        "THEN post_count END), 0) AS avg_followers, "
        "sum(avg_sentiment * post_count) / nullif(sum(CASE WHEN avg_sentiment IS NOT NULL "
        "THEN post_count END), 0) AS avg_sentiment, "
        "CAST(coalesce(sum(positive_count), 0) AS BIGINT) AS positive, "
        "CAST(coalesce(sum(neutral_count), 0) AS BIGINT) AS neutral, "
        "CAST(coalesce(sum(negative_count), 0) AS BIGINT) AS negative, "
        "CAST(coalesce(sum(total_engagement), 0) AS BIGINT) AS engagement, "
        "min(window_start) AS first_window, max(window_start) AS last_window "
        "FROM window_metrics_15m "
        "WHERE keyword = ? AND window_start >= ? AND window_start < ? AND post_count > 0",
        [keyword, start, end],
    ).to_pylist()[0]
    posts = int(row["posts"])
    hours = 0.0
    if row["first_window"] is not None:
        hours = (row["last_window"] - row["first_window"]).total_seconds() / 3600 + 0.25
    return Summary(
        total_posts=posts,
        posts_per_hour=posts / hours if hours else 0.0,
        avg_followers=row["avg_followers"],
        avg_sentiment=row["avg_sentiment"],
        positive=int(row["positive"]),
        neutral=int(row["neutral"]),
        negative=int(row["negative"]),
        total_engagement=int(row["engagement"]),
        first_window=row["first_window"],
        last_window=row["last_window"],
    )


def hourly(wh: Any, start: datetime, end: datetime, keyword: str = ALL) -> list[dict[str, Any]]:
    """Per hour: posts and the sentiment split (for posts per hour and sentiment over time)."""
    return wh.query(
        f"SELECT {wh.dialect.hour('window_start')} AS hour, "
        "CAST(sum(post_count) AS BIGINT) AS posts, "
        "CAST(sum(positive_count) AS BIGINT) AS positive, "
        "CAST(sum(neutral_count) AS BIGINT) AS neutral, "
        "CAST(sum(negative_count) AS BIGINT) AS negative "
        "FROM window_metrics_15m WHERE keyword = ? AND window_start >= ? AND window_start < ? "
        "GROUP BY 1 ORDER BY 1",
        [keyword, start, end],
    ).to_pylist()


def keyword_volume_table(wh: Any, start: datetime, end: datetime) -> Any:
    """Per hour and tracked keyword: posts (an Arrow table: hour, keyword, posts)."""
    return wh.query(
        f"SELECT {wh.dialect.hour('window_start')} AS hour, keyword, "
        "CAST(sum(post_count) AS BIGINT) AS posts "
        "FROM window_metrics_15m WHERE keyword <> ? AND window_start >= ? AND window_start < ? "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        [ALL, start, end],
    )


def keyword_volume(wh: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per hour and tracked keyword: posts."""
    return list(keyword_volume_table(wh, start, end).to_pylist())


def keyword_volume_frame(wh: Any, start: datetime, end: datetime) -> Any:
    """`keyword_volume` as the page charts it, a DataFrame made from Arrow in one step: a year
    is 43,800 rows, and one Python dict per row cost more than the query itself."""
    return keyword_volume_table(wh, start, end).to_pandas()


def top_hashtags(wh: Any, start: datetime, end: datetime, limit: int = 30) -> list[dict[str, Any]]:
    return wh.query(
        "SELECT hashtag, CAST(sum(post_count) AS BIGINT) AS posts FROM hashtag_counts_15m "
        "WHERE window_start >= ? AND window_start < ? GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?",
        [start, end, limit],
    ).to_pylist()


def top_locations(wh: Any, start: datetime, end: datetime, limit: int = 10) -> list[dict[str, Any]]:
    return wh.query(
        "SELECT location, CAST(sum(post_count) AS BIGINT) AS posts FROM location_counts_15m "
        "WHERE window_start >= ? AND window_start < ? GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?",
        [start, end, limit],
    ).to_pylist()


def post_url(post_id: str, author_handle: str | None) -> str | None:
    """A link to the post on its platform."""
    platform, _, native = post_id.partition(":")
    if platform == "x" and native:
        return f"https://x.com/{author_handle or 'i/web'}/status/{native}"
    if platform == "bsky" and native.startswith("at://"):
        did, _, rest = native[5:].partition("/")
        return f"https://bsky.app/profile/{did}/post/{rest.rsplit('/', 1)[-1]}"
    return None


def top_posts(
    wh: Any, start: datetime, end: datetime, keyword: str = ALL, limit: int = 10
) -> list[dict[str, Any]]:
    """The most engaged posts of the range (reply + repost + like + quote), with links."""
    keyword_filter = (
        "" if keyword == ALL else f"AND {wh.dialect.list_contains_param('matched_keywords')} "
    )
    params: list[Any] = [start, end] + ([] if keyword == ALL else [keyword]) + [limit]
    # Summed as floats: four counters near 2^62 each pass int64, and the query would fail (the
    # panel shows the exact sum, capped at int64's maximum as the window tables cap it).
    counts = " + ".join(
        wh.dialect.as_float(f"coalesce({c}, 0)")
        for c in ("reply_count", "repost_count", "like_count", "quote_count")
    )
    rows = wh.query(
        "SELECT post_id, author_handle, text, created_at, sentiment_label, engagement_rate, "
        "reply_count, repost_count, like_count, quote_count, " + counts + " AS rank_engagement "
        "FROM posts WHERE window_start >= ? AND window_start < ? " + keyword_filter + ""
        "ORDER BY rank_engagement DESC, engagement_rate DESC NULLS LAST, post_id LIMIT ?",
        params,
    ).to_pylist()
    for row in rows:
        exact = sum(
            row.pop(c) or 0 for c in ("reply_count", "repost_count", "like_count", "quote_count")
        )
        row.pop("rank_engagement")
        row["engagement"] = min(exact, INT64_MAX)
        row["url"] = post_url(row["post_id"], row["author_handle"])
    return rows
