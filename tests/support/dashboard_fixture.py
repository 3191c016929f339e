"""A warehouse with hand-made aggregate rows whose panel answers are known exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.schema import conform
from musicnft.contract.tables import (
    HASHTAG_COUNTS_SCHEMA,
    LOCATION_COUNTS_SCHEMA,
    POSTS_SCHEMA,
    WINDOW_METRICS_SCHEMA,
)
from musicnft.contract.windows import window_key
from musicnft.hotpath.consumer import enrich_rows

W1 = datetime(2021, 12, 1, 10, 0, tzinfo=UTC)
W2 = datetime(2021, 12, 1, 10, 15, tzinfo=UTC)
W3 = datetime(2021, 12, 1, 11, 0, tzinfo=UTC)
W4 = datetime(2021, 12, 2, 9, 0, tzinfo=UTC)
UPDATED = datetime(2021, 12, 2, 9, 20, tzinfo=UTC)

# window -> keyword -> (posts, avg_followers, avg_sentiment, pos, neu, neg, engagement)
METRICS = {
    W1: {"all": (10, 100.0, 0.2, 5, 3, 2, 20), "music": (4, 80.0, 0.5, 3, 1, 0, 8)},
    W2: {"all": (20, 400.0, -0.1, 6, 6, 8, 10), "nft": (15, 500.0, -0.2, 3, 4, 8, 9)},
    W3: {"all": (30, 200.0, 0.3, 20, 5, 5, 30), "music": (6, 10.0, 0.1, 2, 4, 0, 1)},
    W4: {"all": (40, 50.0, 0.0, 10, 20, 10, 0), "nft": (40, 50.0, 0.0, 10, 20, 10, 0)},
}
HASHTAGS = {
    W1: {"nft": 8, "music": 5},
    W2: {"nft": 12, "web3": 3},
    W3: {"opensea": 7},
    W4: {"nft": 30},
}
LOCATIONS = {W1: {"Berlin": 3, "Lagos": 2}, W3: {"Berlin": 4, "Seoul": 1}, W4: {"Paris": 9}}
# post_id, handle, window, like_count, reply_count, matched keywords
POSTS = [
    ("x:1", "alice", W1, 5, 1, ["music"]),
    ("x:2", "bob", W1, 10, 0, ["nft"]),
    ("bsky:at://did:plc:abc/app.bsky.feed.post/3k2", "carol.bsky.social", W3, 7, 0, ["music"]),
    ("x:3", "dave", W4, 100, 0, ["nft"]),
]


def build(root: Path) -> EmbeddedWarehouse:
    wh = EmbeddedWarehouse(root)
    fill(wh)
    return wh


def fill(wh: Any) -> Any:
    """Write the fixture's windows into any warehouse (through the port's replace_partition)."""
    for window, by_keyword in METRICS.items():
        rows = [
            {
                "window_start": window,
                "keyword": kw,
                "post_count": n,
                "unique_authors": n - 1,
                "avg_followers": fol,
                "avg_sentiment": sent,
                "positive_count": pos,
                "neutral_count": neu,
                "negative_count": neg,
                "total_engagement": eng,
                "avg_engagement_rate": 1.0,
                "repost_share": 0.1,
                "updated_at": UPDATED,
            }
            for kw, (n, fol, sent, pos, neu, neg, eng) in by_keyword.items()
        ]
        wh.replace_partition(
            "window_metrics_15m",
            window_key(window),
            pa.Table.from_pylist(rows, schema=WINDOW_METRICS_SCHEMA),
        )
    for window, tags in HASHTAGS.items():
        rows = [{"window_start": window, "hashtag": t, "post_count": n} for t, n in tags.items()]
        wh.replace_partition(
            "hashtag_counts_15m",
            window_key(window),
            pa.Table.from_pylist(rows, schema=HASHTAG_COUNTS_SCHEMA),
        )
    for window, places in LOCATIONS.items():
        rows = [{"window_start": window, "location": p, "post_count": n} for p, n in places.items()]
        wh.replace_partition(
            "location_counts_15m",
            window_key(window),
            pa.Table.from_pylist(rows, schema=LOCATION_COUNTS_SCHEMA),
        )
    by_window: dict[datetime, list[dict]] = {}
    for pid, handle, window, likes, replies, keywords in POSTS:
        post = conform(
            {
                "post_id": pid,
                "platform": "bluesky" if pid.startswith("bsky") else "x",
                "created_at": window,
                "ingested_at": window,
                "text": f"post by {handle} about {' '.join(keywords)}",
                "author_handle": handle,
                "author_followers": 100,
                "like_count": likes,
                "reply_count": replies,
                "matched_keywords": keywords,
                "schema_version": 1,
            }
        )
        by_window.setdefault(window, []).append(enrich_rows([post])[0] | {"window_start": window})
    for window, rows in by_window.items():
        wh.replace_partition(
            "posts", window_key(window), pa.Table.from_pylist(rows, schema=POSTS_SCHEMA)
        )
    return wh
