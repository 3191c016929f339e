"""Enrichment parity: every score equals vaderSentiment 3.3.2's, bit for bit, on three corpora.

- the shipped sample (`musicnft/devtools/data/sample.jsonl.gz`), every valid post;
- 100,000 generated lines (`generate_lines(100_000, seed=99)`, the benchmark's), normalized;
- the human-rated tweets of `../shared/data/tweets_sentiment_gold.tsv` (3,200, see that folder's
  README). That file lives beside the project, not in it: a clone without `../shared` skips this
  one test, and only it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from musicnft.app.cli import SAMPLE_PATH
from musicnft.contract.keywords import KeywordMatcher
from musicnft.devtools.sample import generate_lines
from musicnft.hotpath import enrich as enrich_module
from musicnft.hotpath.decode import ControlMessage, RejectedRecord
from musicnft.hotpath.enrich import enrich
from musicnft.hotpath.normalize_x import normalize_x_line
from musicnft.settings import DEFAULT_KEYWORDS
from tests.support.expectations import expected_from

pytestmark = pytest.mark.slow

# The human-rated tweets ship with the project (the sentiment model trains on them), so this runs
# in every clone.
GOLD = (
    Path(__file__).resolve().parents[2]
    / "musicnft"
    / "model"
    / "data"
    / "tweets_sentiment_gold.tsv"
)
SCORES = ("sentiment_neg", "sentiment_neu", "sentiment_pos", "sentiment_compound")


def assert_scores_as_vader(posts: Iterable[dict[str, Any]]) -> tuple[int, set[str]]:
    """Enriches every post, from an empty text cache and token memo; returns how many were
    compared and the labels seen."""
    enrich_module.reset_scorer()
    analyzer = SentimentIntensityAnalyzer()
    compared = 0
    labels = set()
    for post in posts:
        got = enrich(post)
        want = analyzer.polarity_scores(post["text"])
        want_scores = (want["neg"], want["neu"], want["pos"], want["compound"])
        got_scores = tuple(got[k] for k in SCORES)
        assert got_scores == want_scores, post["text"]
        # == does not tell 0.0 from -0.0: the bits do
        assert struct.pack("<4d", *got_scores) == struct.pack("<4d", *want_scores), post["text"]
        assert all(type(x) is float for x in got_scores)
        labels.add(got["sentiment_label"])
        compared += 1
    return compared, labels


def test_vader_is_the_pinned_release() -> None:
    assert version("vaderSentiment") == "3.3.2"


def test_every_sample_post_scores_exactly_as_vader_3_3_2() -> None:
    posts = expected_from(SAMPLE_PATH).posts
    assert len(posts) > 15_000

    compared, labels = assert_scores_as_vader(posts)

    assert compared == len(posts)
    # The sample is varied enough to exercise every label.
    assert labels == {"positive", "neutral", "negative"}


def test_100k_generated_posts_score_exactly_as_vader_3_3_2() -> None:
    matcher = KeywordMatcher(DEFAULT_KEYWORDS)
    now = datetime.now(UTC)

    def posts() -> Iterable[dict[str, Any]]:
        for line in generate_lines(100_000, seed=99):
            try:
                yield dict(normalize_x_line(line, matcher, now))
            except (RejectedRecord, ControlMessage):  # malformed lines, keep-alives
                continue

    compared, labels = assert_scores_as_vader(posts())

    assert compared > 95_000
    assert labels == {"positive", "neutral", "negative"}


def test_gold_tweets_score_exactly_as_vader_3_3_2() -> None:
    lines = GOLD.read_text(encoding="utf-8").split("\n")
    assert lines[0].split("\t") == ["id", "mean_rating", "text"]
    texts = [line.split("\t", 2)[2] for line in lines[1:] if line]
    assert len(texts) == 3_200

    compared, labels = assert_scores_as_vader({"text": t} for t in texts)

    assert compared == 3_200
    assert labels == {"positive", "neutral", "negative"}
