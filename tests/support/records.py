"""Small builders shared by tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import to_json_record
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.settings import DEFAULT_KEYWORDS


def x_message(i: int, text: str | None = None, created: str = "2021-12-01T00:00:00.000Z") -> dict:
    return {
        "data": {
            "id": str(1466000000000000000 + i),
            "text": text if text is not None else f"New #NFT music drop {i} on OpenSea",
            "created_at": created,
            "author_id": "42",
            "lang": "en",
            "public_metrics": {
                "retweet_count": 0,
                "reply_count": 1,
                "like_count": 2,
                "quote_count": 0,
            },
        },
        "includes": {
            "users": [{"id": "42", "username": "beats", "public_metrics": {"followers_count": 100}}]
        },
        "matching_rules": [{"id": "1", "tag": "music-nft"}],
    }


def x_line(i: int, **kw: str) -> bytes:
    return json.dumps(x_message(i, **kw)).encode()


def post_record(i: int) -> bytes:
    """The bytes the producer puts on the stream for post i."""
    post = normalize_x_message(x_message(i), KeywordMatcher(DEFAULT_KEYWORDS), datetime.now(UTC))
    return json.dumps(to_json_record(post)).encode()
