"""Enrichment: sentiment and engagement, a pure function of the post.

The hot path (consumer) and the batch path (Dagster) both call `enrich`, so a post scores the same
wherever it is scored. VADER is vaderSentiment 3.3.2, pinned: later versions score differently.
The scores come from `vader_fast.FastVader`, a re-implementation of VADER 3.3.2's `polarity_scores`
that gives the same floats bit for bit several times faster, behind a small LRU cache of texts:
a post the source sends twice, or a text repeated soon after, is scored once (on the generated
sample 2.6% of texts hit it; 16,384 entries would reach only 4.6%, reposts being "RT @x: ..."
texts of their own, and cost more in memory traffic than they save).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from musicnft.hotpath.vader_fast import FastVader, Scores

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05
TEXT_CACHE_SIZE = 1_024  # texts whose scores are kept, least recently used out (see docstring)


def reset_scorer() -> None:
    """A new scorer with an empty text cache and token memo (benchmarks measure from cold)."""
    global _polarity
    _polarity = lru_cache(maxsize=TEXT_CACHE_SIZE)(FastVader().polarity)


def _first_polarity(text: str) -> Scores:
    # Built on first use: loading VADER's lexicon costs ~100 ms and not every process scores posts.
    reset_scorer()
    return _polarity(text)


# text → VADER 3.3.2's (neg, neu, pos, compound); replaced by the cached scorer on first call.
_polarity: Callable[[str], Scores] = _first_polarity


def _sentiment(text: Any) -> Scores | None:
    """(neg, neu, pos, compound) as VADER 3.3.2 scores `text`; None for anything not a string."""
    if not isinstance(text, str):
        return None
    return _polarity(text)


def sentiment_scores(text: Any) -> dict[str, float] | None:
    """VADER's neg/neu/pos/compound for a string; None for anything that is not text.

    vaderSentiment 3.3.2 raises TypeError on None, numbers and bytes, so the guard is here: one bad
    record must never poison a batch. Empty text scores all zeros, as VADER itself gives.
    """
    scores = _sentiment(text)
    if scores is None:
        return None
    return dict(zip(("neg", "neu", "pos", "compound"), scores, strict=True))


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
    if type(followers) is not int and (
        not isinstance(followers, int) or isinstance(followers, bool)
    ):
        return None
    if followers <= 0:
        return None
    return total_engagement(post) / followers * 100


def total_engagement(post: Mapping[str, Any]) -> int:
    total = 0
    get = post.get
    for value in (get("reply_count"), get("repost_count"), get("like_count"), get("quote_count")):
        if type(value) is int:  # the common case first; then int subclasses other than bool
            if value > 0:
                total += value
        elif isinstance(value, int) and not isinstance(value, bool) and value > 0:
            total += value
    return total


def enrich(post: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: the post's columns plus the enrichment columns. Never raises on bad text.

    Per post this is the consumer's hottest code after the scorer itself, so the usual case (a
    text, a positive follower count and int counts) is spelled out inline: the same values as
    `sentiment_label` and `engagement_rate` give, without their calls (tests/hotpath/
    test_enrich_pinned.py pins the output).
    """
    get = post.get
    text = get("text")
    out = dict(post)
    if isinstance(text, str):
        neg, neu, pos, compound = _polarity(text)
        out["sentiment_compound"] = compound
        out["sentiment_pos"] = pos
        out["sentiment_neu"] = neu
        out["sentiment_neg"] = neg
        out["sentiment_label"] = (
            "positive"
            if compound >= POSITIVE_THRESHOLD
            else "negative"
            if compound <= NEGATIVE_THRESHOLD
            else "neutral"
        )
    else:
        out["sentiment_compound"] = None
        out["sentiment_pos"] = None
        out["sentiment_neu"] = None
        out["sentiment_neg"] = None
        out["sentiment_label"] = None
    followers = get("author_followers")
    if type(followers) is int and followers > 0:
        reply = get("reply_count")
        repost = get("repost_count")
        like = get("like_count")
        quote = get("quote_count")
        if type(reply) is int and type(repost) is int and type(like) is int and type(quote) is int:
            # total_engagement's sum (ints: exact in any order)
            total = (
                (reply if reply > 0 else 0)
                + (repost if repost > 0 else 0)
                + (like if like > 0 else 0)
                + (quote if quote > 0 else 0)
            )
            out["engagement_rate"] = total / followers * 100
        else:
            out["engagement_rate"] = total_engagement(post) / followers * 100
    else:
        out["engagement_rate"] = engagement_rate(post)
    return out
