"""Enrichment: sentiment and engagement, a pure function of the post.

The hot path (consumer) and the batch path (Dagster) both call `enrich`, so a post scores the same
wherever it is scored. VADER is vaderSentiment 3.3.2, pinned: later versions score differently.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    # Imported lazily: loading the lexicon costs ~100 ms and not every process scores posts.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_scores(text: Any) -> dict[str, float] | None:
    """VADER's neg/neu/pos/compound for a string; None for anything that is not text.

    vaderSentiment 3.3.2 raises TypeError on None, numbers and bytes, so the guard is here: one bad
    record must never poison a batch. Empty text scores all zeros, as VADER itself gives.
    """
    if not isinstance(text, str):
        return None
    scores = _analyzer().polarity_scores(text)
    return {k: float(scores[k]) for k in ("neg", "neu", "pos", "compound")}


def sentiment_label(compound: float | None) -> str | None:
    if compound is None:
        return None
    if compound >= POSITIVE_THRESHOLD:
        return "positive"
    if compound <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def engagement_rate(post: Mapping[str, Any]) -> float | None:
    """(reply + repost + like + quote) / followers × 100; null when followers is 0 or unknown.

    The original project's formula. Unknown counts add nothing (they are usually 0 at stream time).
    """
    followers = post.get("author_followers")
    if not isinstance(followers, int) or isinstance(followers, bool) or followers <= 0:
        return None
    return total_engagement(post) / followers * 100


def total_engagement(post: Mapping[str, Any]) -> int:
    total = 0
    for key in ("reply_count", "repost_count", "like_count", "quote_count"):
        value = post.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            total += value
    return total


def enrich(post: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: the post's columns plus the enrichment columns. Never raises on bad text."""
    scores = sentiment_scores(post.get("text"))
    out = dict(post)
    out["sentiment_compound"] = scores["compound"] if scores else None
    out["sentiment_pos"] = scores["pos"] if scores else None
    out["sentiment_neu"] = scores["neu"] if scores else None
    out["sentiment_neg"] = scores["neg"] if scores else None
    out["sentiment_label"] = sentiment_label(out["sentiment_compound"])
    out["engagement_rate"] = engagement_rate(post)
    return out
