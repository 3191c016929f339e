"""Pure window aggregation: deduplicated, enriched posts of one window → the aggregate rows.

The rows match `musicnft.contract.tables` (DESIGN.md): one `window_metrics_15m` row for `all` and one per
tracked keyword (zeros when no post matched, so a dashboard sees "none" rather than a gap).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from musicnft.hotpath.enrich import total_engagement

INT64_MAX = 2**63 - 1

Row = dict[str, Any]


def dedupe_latest(posts: Iterable[Mapping[str, Any]]) -> list[Row]:
    """One row per post_id: the latest ingest wins (ties: the later row), input order kept."""
    best: dict[str, Mapping[str, Any]] = {}
    for post in posts:
        pid = post["post_id"]
        seen = best.get(pid)
        if seen is None or post["ingested_at"] >= seen["ingested_at"]:
            best[pid] = post
    return [dict(p) for p in sorted(best.values(), key=lambda p: (p["created_at"], p["post_id"]))]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def metrics_row(
    posts: Sequence[Mapping[str, Any]], window: datetime, keyword: str, updated_at: datetime
) -> Row:
    followers = [p["author_followers"] for p in posts if p.get("author_followers") is not None]
    sentiments = [p["sentiment_compound"] for p in posts if p.get("sentiment_compound") is not None]
    model_scores = [p["model_score"] for p in posts if p.get("model_score") is not None]
    rates = [p["engagement_rate"] for p in posts if p.get("engagement_rate") is not None]
    labels = Counter(p.get("sentiment_label") for p in posts)
    n = len(posts)
    return {
        "window_start": window,
        "keyword": keyword,
        "post_count": n,
        "unique_authors": len({p.get("author_id") for p in posts if p.get("author_id")}),
        "avg_followers": _mean(followers),
        "avg_sentiment": _mean(sentiments),
        "positive_count": labels.get("positive", 0),
        "neutral_count": labels.get("neutral", 0),
        "negative_count": labels.get("negative", 0),
        # saturates at int64's maximum: counts near 2^62 are bogus, but must not fail the window
        "total_engagement": min(sum(total_engagement(p) for p in posts), INT64_MAX),
        "avg_engagement_rate": _mean(rates),
        "repost_share": (sum(1 for p in posts if p.get("is_repost")) / n) if n else None,
        "updated_at": updated_at,
        "avg_model_sentiment": _mean(model_scores),  # null when no post has a model score
    }


def window_metrics(
    posts: Sequence[Mapping[str, Any]],
    window: datetime,
    keywords: Sequence[str],
    updated_at: datetime,
) -> list[Row]:
    rows = [metrics_row(posts, window, "all", updated_at)]
    for keyword in dict.fromkeys(k.lower() for k in keywords):
        matched = [p for p in posts if keyword in (p.get("matched_keywords") or [])]
        rows.append(metrics_row(matched, window, keyword, updated_at))
    return rows


def hashtag_counts(posts: Sequence[Mapping[str, Any]], window: datetime) -> list[Row]:
    """Posts per hashtag (lower-case, no '#'); a post counts once per distinct tag."""
    counts: Counter[str] = Counter()
    for post in posts:
        tags = {t.lower().lstrip("#") for t in post.get("hashtags") or [] if t and t.strip("#")}
        counts.update(tags)
    return [
        {"window_start": window, "hashtag": tag, "post_count": n}
        for tag, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def location_counts(posts: Sequence[Mapping[str, Any]], window: datetime) -> list[Row]:
    """Posts per author location as written on the profile (trimmed); posts without one skipped."""
    counts: Counter[str] = Counter()
    for post in posts:
        loc = (post.get("author_location") or "").strip()
        if loc:
            counts[loc] += 1
    return [
        {"window_start": window, "location": loc, "post_count": n}
        for loc, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
