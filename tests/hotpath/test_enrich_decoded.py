"""The consumer's handlers enrich posts `decode_post` has just conformed with `enrich_decoded`,
which checks only the columns enrichment adds. Its rows must be exactly `enrich_rows`'s (which
conforms every column again) for every post a stream can carry: the sample generator's, the
hostile corpus's that survive normalization, and stream records written by hand at the edges."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import HOT_COLUMNS, to_json_record
from musicnft.hotpath.consumer import decode_post, enrich_decoded, enrich_rows
from musicnft.hotpath.decode import RejectedRecord
from musicnft.hotpath.normalize_x import normalize_x_line
from musicnft.settings import Settings
from tests.support import hostile

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _decoded(lines: list[bytes]) -> list[dict]:
    matcher = KeywordMatcher(Settings().keywords)
    posts = []
    for line in lines:
        try:
            post = normalize_x_line(line, matcher, NOW)
            posts.append(decode_post(json.dumps(to_json_record(post)).encode()))
        except (ValueError, RejectedRecord):  # the producer's and the consumer's rejections
            continue
    return posts


EDGES = [
    {"author_followers": 0, "like_count": None, "text": ""},
    {"author_followers": 2**63 - 1, "like_count": 2**62, "repost_count": 2**62},
    {"author_followers": None, "text": "GREAT!!! :) music nft 🎵 but not bad... no"},
    {"text": "x" * 20_000, "hashtags": ["BoredApeYachtClub", "bts"], "mentions": ["opensea"]},
    {"lang": None, "author_location": None, "matched_keywords": [], "urls": []},
]


def test_enrich_decoded_gives_enrich_rows_rows_for_the_sample_and_the_hostile_corpus() -> None:
    lines = hostile.mixed(hostile.sample_lines(3000))
    posts = _decoded(lines)
    assert len(posts) > 2500  # most of the sample survives; the hostile lines mostly do not
    fast, full = enrich_decoded(posts), enrich_rows(posts)
    assert fast == full
    assert all(list(row) == list(HOT_COLUMNS) for row in fast)


def test_enrich_decoded_gives_enrich_rows_rows_at_the_edges() -> None:
    (base,) = _decoded(hostile.sample_lines(1))
    posts = [decode_post(json.dumps(to_json_record(base | edge)).encode()) for edge in EDGES]
    assert enrich_decoded(posts) == enrich_rows(posts)


def test_enrich_decoded_leaves_the_decoded_posts_as_they_were() -> None:
    posts = _decoded(hostile.sample_lines(50))
    before = [dict(p) for p in posts]
    enrich_decoded(posts)
    assert posts == before
