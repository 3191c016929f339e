"""Enrichment parity: on the whole shipped sample, every score equals vaderSentiment 3.3.2's."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from musicnft.app.cli import SAMPLE_PATH
from musicnft.hotpath.enrich import enrich
from tests.support.expectations import expected_from

pytestmark = pytest.mark.slow


def test_vader_is_the_pinned_release() -> None:
    assert version("vaderSentiment") == "3.3.2"


def test_every_sample_post_scores_exactly_as_vader_3_3_2() -> None:
    analyzer = SentimentIntensityAnalyzer()
    posts = expected_from(SAMPLE_PATH).posts
    assert len(posts) > 15_000
    labels = set()
    for post in posts:
        got = enrich(post)
        want = analyzer.polarity_scores(post["text"])
        assert (
            got["sentiment_compound"],
            got["sentiment_pos"],
            got["sentiment_neu"],
            got["sentiment_neg"],
        ) == (want["compound"], want["pos"], want["neu"], want["neg"]), post["post_id"]
        labels.add(got["sentiment_label"])
    # The sample is varied enough to exercise every label.
    assert labels == {"positive", "neutral", "negative"}
