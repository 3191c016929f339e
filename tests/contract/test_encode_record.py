"""A post's stream record (`encode_record`): compact UTF-8 JSON that reads back, through the
consumer's own decoder, to exactly the conformed post, whether orjson or the standard library
(the Lambda bundle has no orjson) wrote it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from musicnft.contract import schema
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import encode_record
from musicnft.hotpath.consumer import decode_post
from musicnft.hotpath.normalize_x import normalize_x_line
from musicnft.settings import Settings
from tests.support import hostile

NOW = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)


def _posts() -> list[dict]:
    matcher = KeywordMatcher(Settings().keywords)
    posts = []
    for line in hostile.mixed(hostile.sample_lines(1500)):
        try:
            posts.append(normalize_x_line(line, matcher, NOW))
        except Exception:  # the producer's rejections and skips: not posts
            continue
    return posts


@pytest.mark.parametrize("with_orjson", [True, False], ids=["orjson", "stdlib"])
def test_records_read_back_to_the_post(with_orjson: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not with_orjson:
        monkeypatch.setattr(schema, "_orjson", None)
    posts = _posts()
    assert len(posts) > 1000
    for post in posts:
        data = encode_record(post)
        assert b"\n" not in data  # one record, one line (the lake's JSON errors/ and Firehose)
        assert decode_post(data) == schema.conform(post)
        assert json.loads(data) == schema.to_json_record(post)


def test_both_encoders_write_the_same_json_values() -> None:
    for post in _posts()[:300]:
        fast = encode_record(post)
        assert json.loads(fast) == json.loads(
            json.dumps(schema.to_json_record(post), ensure_ascii=False)
        )
        assert len(fast) <= len(
            json.dumps(schema.to_json_record(post), ensure_ascii=False).encode()
        )
