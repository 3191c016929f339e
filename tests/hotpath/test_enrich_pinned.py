"""Enrichment's full output, pinned: 413 posts and what `enrich` made of them when it was recorded.

`tests/fixtures/enrich_pinned.jsonl` holds, one JSON object a line, a post and its six enrichment
columns as `enrich` returned them before its hot loop was tuned for speed (issue #14): generated
posts (all the scorer's paths: neutral texts, rule-free ones, rules, caps, "but", emphatic emoji),
shipped-sample posts, human-rated gold tweets with assorted counts, and odd posts (no text, text
that is not a string, bad follower and count values). Speed work on `enrich` or `vader_fast` must
leave every one of them exactly as it was: same keys in the same order, same values, same types,
same float bits.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from musicnft.hotpath import enrich as enrich_module
from musicnft.hotpath.enrich import enrich

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "enrich_pinned.jsonl"


def _pinned() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


def _bits(value: Any) -> Any:
    """A value with its type; floats by their bits (== does not tell 0.0 from -0.0)."""
    if type(value) is float:
        return ("float", struct.pack("<d", value))
    return (type(value).__name__, value)


def test_the_pinned_set_covers_what_it_claims() -> None:
    pinned = _pinned()
    labels = {p["enrichment"]["sentiment_label"] for p in pinned}
    rates = [p["enrichment"]["engagement_rate"] for p in pinned]

    assert len(pinned) == 413
    assert labels == {"positive", "neutral", "negative", None}
    assert None in rates and any(type(r) is float and r > 0 for r in rates)
    assert any(" but " in str(p["post"].get("text")) for p in pinned)


@pytest.mark.parametrize("cold", [True, False], ids=["cold-scorer", "warm-scorer"])
def test_enrich_gives_exactly_the_pinned_output(cold: bool) -> None:
    # GIVEN the pinned posts, scored from an empty text cache and token memo, then again warm
    pinned = _pinned()
    if cold:
        enrich_module.reset_scorer()
    else:
        for p in pinned:
            enrich(p["post"])

    for p in pinned:
        post = p["post"]
        # WHEN a post is enriched
        out = enrich(post)

        # THEN the post's columns come first, unchanged, then the six enrichment columns, each
        # with the recorded value, type and bits
        assert list(out) == [*post, *p["enrichment"]], post.get("post_id")
        assert {k: _bits(out[k]) for k in post} == {k: _bits(v) for k, v in post.items()}
        got = {k: _bits(out[k]) for k in p["enrichment"]}
        assert got == {k: _bits(v) for k, v in p["enrichment"].items()}, post.get("text")
