"""Enrichment: VADER 3.3.2 sentiment and the original project's engagement rate.

Contract: DESIGN.md "Enrichment", REFERENCE.md "VADER".
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

import musicnft.hotpath.enrich as enrich_module
from musicnft.hotpath.enrich import engagement_rate, enrich, sentiment_label, sentiment_scores

ENRICHMENT_COLUMNS = (
    "sentiment_compound",
    "sentiment_pos",
    "sentiment_neu",
    "sentiment_neg",
    "sentiment_label",
    "engagement_rate",
)

TEXTS = [
    "I love this song 😍🎵",
    "This mint is a scam 😡",
    "🔥🔥🔥",
    "This is not good",
    "Not bad at all",
    "The drop is GREAT!!!",
    "The drop is great",
    "The beat is great but the mint was a disaster",
    "kinda sorta good I guess :)",
    "LOL the floor price just went to zero :(",
    "Minted 0.05 $ETH #web3 #MusicNFT https://t.co/aBcD1234",
    "RT @ana_beats: Just minted my first music NFT on OpenSea!",
    "¡Me encanta esta canción! Das ist wirklich schön.",
    "meh",
    "   ",
    " ".join(
        ["Honestly the best music NFT drop I have seen this year, amazing artists and fair prices."]
        * 20
    )
    + " But the gas fees were awful and the site crashed twice, which was really frustrating.",
]


@pytest.fixture(scope="module")
def vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


@pytest.mark.parametrize("text", TEXTS)
def test_scores_equal_vader_exactly(vader: SentimentIntensityAnalyzer, text: str) -> None:
    # GIVEN a post with this text; WHEN it is enriched
    out = enrich({"post_id": "x:1", "text": text})

    # THEN the four scores are VADER 3.3.2's, bit for bit
    expected = vader.polarity_scores(text)
    assert out["sentiment_compound"] == expected["compound"]
    assert out["sentiment_pos"] == expected["pos"]
    assert out["sentiment_neu"] == expected["neu"]
    assert out["sentiment_neg"] == expected["neg"]
    assert out["sentiment_label"] == sentiment_label(expected["compound"])
    assert all(type(out[k]) is float for k in ENRICHMENT_COLUMNS[:4])


def test_the_sample_texts_cover_all_three_labels() -> None:
    labels = {enrich({"text": t})["sentiment_label"] for t in TEXTS}

    assert labels == {"positive", "neutral", "negative"}


def test_negation_and_caps_change_the_score() -> None:
    # A sanity check that the scorer is really VADER-like, not a constant
    good = enrich({"text": "This is good"})["sentiment_compound"]
    not_good = enrich({"text": "This is not good"})["sentiment_compound"]
    caps = enrich({"text": "This is GOOD!!!"})["sentiment_compound"]

    assert not_good < 0 < good < caps


def test_sentiment_scores_returns_the_four_vader_keys(vader: SentimentIntensityAnalyzer) -> None:
    scores = sentiment_scores("What a wonderful track")

    expected = vader.polarity_scores("What a wonderful track")
    assert scores == {k: expected[k] for k in ("neg", "neu", "pos", "compound")}


@pytest.mark.parametrize(
    ("compound", "label"),
    [
        (1.0, "positive"),
        (0.05, "positive"),
        (0.0501, "positive"),
        (0.0499, "neutral"),
        (0.0, "neutral"),
        (-0.0499, "neutral"),
        (-0.05, "negative"),
        (-0.0501, "negative"),
        (-1.0, "negative"),
        (None, None),
    ],
)
def test_label_thresholds(compound: float | None, label: str | None) -> None:
    assert sentiment_label(compound) == label


@pytest.mark.parametrize(
    ("compound", "label"), [(0.05, "positive"), (0.0499, "neutral"), (-0.05, "negative")]
)
def test_enrich_labels_at_the_thresholds(
    monkeypatch: pytest.MonkeyPatch, compound: float, label: str
) -> None:
    # GIVEN a scorer that returns exactly the threshold compound (neg, neu, pos, compound)
    monkeypatch.setattr(enrich_module, "_polarity", lambda text: (0.0, 1.0, 0.0, compound))

    # WHEN a post is enriched, THEN its label follows the ±0.05 rule
    out = enrich({"text": "anything"})

    assert out["sentiment_compound"] == compound
    assert out["sentiment_label"] == label


# ---- engagement -------------------------------------------------------------------------------


def _post(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "text": "music",
        "reply_count": 2,
        "repost_count": 3,
        "like_count": 4,
        "quote_count": 1,
        "author_followers": 200,
    }
    base.update(fields)
    return base


@pytest.mark.parametrize(
    ("post", "expected"),
    [
        pytest.param(_post(), 5.0, id="2+3+4+1-over-200"),
        pytest.param(_post(author_followers=1), 1000.0, id="more-engagement-than-followers"),
        pytest.param(_post(author_followers=3), 10 / 3 * 100, id="non-integer-result"),
        pytest.param(
            _post(reply_count=0, repost_count=0, like_count=0, quote_count=0), 0.0, id="all-zero"
        ),
        pytest.param(_post(reply_count=None, like_count=None), 2.0, id="none-counts-are-zero"),
        pytest.param(
            {"text": "t", "author_followers": 50, "like_count": 5}, 10.0, id="missing-counts"
        ),
        pytest.param(_post(author_followers=0), None, id="zero-followers"),
        pytest.param(_post(author_followers=None), None, id="none-followers"),
        pytest.param({"text": "t", "like_count": 5}, None, id="missing-followers"),
        pytest.param(_post(author_followers=True), None, id="bool-followers"),
        pytest.param(_post(author_followers=-10), None, id="negative-followers"),
        pytest.param(_post(author_followers="200"), None, id="string-followers"),
        pytest.param(_post(author_followers=200.0), None, id="float-followers"),
    ],
)
def test_engagement_rate(post: dict[str, Any], expected: float | None) -> None:
    rate = engagement_rate(post)

    if expected is None:
        assert rate is None
    else:
        assert rate == pytest.approx(expected)
    assert enrich(post)["engagement_rate"] == rate


def test_engagement_rate_is_exact_for_the_original_formula() -> None:
    assert engagement_rate(_post()) == (2 + 3 + 4 + 1) / 200 * 100


# ---- robustness -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, 123, 1.5, b"I love this NFT", ["text"], {"t": 1}], ids=repr)
def test_enrich_never_raises_on_non_string_text(text: Any) -> None:
    # GIVEN a post whose text is not a string (VADER 3.3.2 itself would raise TypeError)
    out = enrich(_post(text=text))

    # THEN it gets null sentiment and still an engagement rate
    assert out["sentiment_compound"] is None
    assert out["sentiment_pos"] is None
    assert out["sentiment_neu"] is None
    assert out["sentiment_neg"] is None
    assert out["sentiment_label"] is None
    assert out["engagement_rate"] == 5.0


def test_enrich_without_text_key_gives_null_sentiment() -> None:
    out = enrich({"post_id": "x:1"})

    assert out["sentiment_compound"] is None
    assert out["sentiment_label"] is None
    assert out["engagement_rate"] is None


def test_empty_text_scores_zeros_and_neutral() -> None:
    out = enrich({"text": ""})

    assert out["sentiment_compound"] == 0.0
    assert out["sentiment_pos"] == 0.0
    assert out["sentiment_neu"] == 0.0
    assert out["sentiment_neg"] == 0.0
    assert out["sentiment_label"] == "neutral"


def test_enrich_returns_a_new_dict_and_leaves_the_input_unchanged() -> None:
    post = _post(post_id="x:1", hashtags=["nft"], text="Love it")
    before = copy.deepcopy(post)

    out = enrich(post)

    assert out is not post
    assert post == before
    assert not any(k in post for k in ENRICHMENT_COLUMNS)
    assert list(out) == [*post, *ENRICHMENT_COLUMNS]
    assert {k: out[k] for k in post} == post


def test_enrich_is_a_pure_function() -> None:
    post = _post(text="The beat is great but the mint was a disaster")

    assert enrich(post) == enrich(copy.deepcopy(post))
