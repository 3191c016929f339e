"""The speed layer's query: posts the hot path has stored that no reconciled window covers yet.

The aggregate tables hold closed, reconciled windows; the window in progress (and any the batch
path has not materialized yet) exists only in `posts_hot`. Reading those few minutes of posts
from it makes the page live within seconds of a post's arrival; the reconciled figures replace
them once their window is materialized. posts_hot may hold a post twice before reconciliation,
so posts are counted by distinct id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from musicnft.contract.windows import WINDOW

# With no reconciled window yet (the first minutes of a run), the live layer looks this far back.
FIRST_LOOK_BACK = timedelta(hours=1)


@dataclass(frozen=True)
class Live:
    since: datetime  # the end of the last reconciled window (or now - FIRST_LOOK_BACK)
    posts: int  # distinct posts created since then
    avg_sentiment: float | None
    positive: int
    neutral: int
    negative: int
    last_inserted_at: datetime | None  # when posts_hot last accepted a row of these


def live_since(last_reconciled_window: datetime | None, now: datetime) -> datetime:
    """Where the reconciled aggregates end and the live layer begins."""
    if last_reconciled_window is None:
        return now - FIRST_LOOK_BACK
    return last_reconciled_window + WINDOW


def live(wh: Any, since: datetime) -> Live:
    """The posts_hot posts created at or after `since`, deduplicated by post id."""
    row = wh.query(
        "SELECT count(*) AS posts, avg(sentiment_compound) AS avg_sentiment, "
        "coalesce(sum(CASE WHEN sentiment_label = 'positive' THEN 1 ELSE 0 END), 0) AS positive, "
        "coalesce(sum(CASE WHEN sentiment_label = 'neutral' THEN 1 ELSE 0 END), 0) AS neutral, "
        "coalesce(sum(CASE WHEN sentiment_label = 'negative' THEN 1 ELSE 0 END), 0) AS negative, "
        "max(inserted_at) AS last_inserted_at FROM ("
        "  SELECT post_id, min(sentiment_compound) AS sentiment_compound, "
        "  min(sentiment_label) AS sentiment_label, max(inserted_at) AS inserted_at "
        "  FROM posts_hot WHERE created_at >= ? GROUP BY post_id"
        ") AS unique_posts",
        [since],
    ).to_pylist()[0]
    return Live(
        since=since,
        posts=int(row["posts"]),
        avg_sentiment=row["avg_sentiment"],
        positive=int(row["positive"]),
        neutral=int(row["neutral"]),
        negative=int(row["negative"]),
        last_inserted_at=row["last_inserted_at"],
    )
