"""normalize_x_line's typed fast path (msgspec, `x_message.fast_x_post`) must give exactly what the
standard path (`normalize_x_message(decode_line(raw))`) gives: the same post (keys, order, values,
types) or the same exception with the same reason, for the generated sample, the hostile corpus
and a fuzz of mutated lines; where msgspec would accept a line the standard path rejects or reads
differently, the fast path must step aside."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import POST_COLUMNS, POST_FIELDS
from musicnft.devtools.sample import generate_lines
from musicnft.hotpath.decode import decode_line
from musicnft.hotpath.normalize_x import (
    FAST_PATH_KINDS,
    fast_x_post,
    normalize_x_line,
    normalize_x_message,
)
from musicnft.settings import DEFAULT_KEYWORDS
from tests.support import hostile

MATCHER = KeywordMatcher(DEFAULT_KEYWORDS)
NOW = datetime(2021, 12, 1, 12, 0, tzinfo=UTC)


def _typed(value: Any) -> Any:
    """A value with the type of every part spelled out (1 == True, but not as a column value)."""
    if isinstance(value, dict):
        return [(k, _typed(v)) for k, v in value.items()]
    if isinstance(value, list):
        return ["list", [_typed(v) for v in value]]
    if isinstance(value, datetime):
        return ["datetime", value.isoformat(), repr(value.tzinfo)]
    return [type(value).__name__, repr(value)]


def _outcome(fn: Any, raw: bytes | str, matcher: KeywordMatcher, now: Any) -> Any:
    try:
        return ["post", _typed(fn(raw, matcher, now))]
    except Exception as exc:  # the exception's type and every attribute it carries
        return ["raised", type(exc).__name__, str(exc), sorted(vars(exc).items())]


def _standard(raw: bytes | str, matcher: KeywordMatcher, now: Any) -> Any:
    return normalize_x_message(decode_line(raw), matcher, now)


def _differences(
    lines: list[bytes], matcher: KeywordMatcher = MATCHER, now: Any = NOW
) -> list[tuple[bytes, Any, Any]]:
    out = []
    for raw in lines:
        fast = _outcome(normalize_x_line, raw, matcher, now)
        standard = _outcome(_standard, raw, matcher, now)
        if fast != standard:
            out.append((raw[:200], fast, standard))
    return out


def test_the_fast_path_builds_exactly_the_schemas_post_columns() -> None:
    """A column added to, or retyped in, POST_FIELDS must be taught to the fast path first."""
    assert list(FAST_PATH_KINDS) == list(POST_COLUMNS)
    assert {f.name: f.kind for f in POST_FIELDS} == FAST_PATH_KINDS


def test_the_fast_path_takes_the_ordinary_lines_of_the_sample() -> None:
    lines = [raw for raw in generate_lines(3000, seed=11) if raw]
    taken = [raw for raw in lines if fast_x_post(raw, MATCHER, NOW) is not None]
    assert len(taken) > 0.95 * len(lines)
    post = fast_x_post(lines[0], MATCHER, NOW)
    assert post is not None and list(post) == list(POST_COLUMNS)


def test_the_generated_sample_reads_the_same_both_ways() -> None:
    assert _differences(list(generate_lines(20_000, seed=99))) == []


@pytest.mark.slow
def test_100k_generated_lines_read_the_same_both_ways() -> None:
    assert _differences(list(generate_lines(100_000, seed=2021))) == []


def test_the_hostile_corpus_reads_the_same_both_ways() -> None:
    lines = [raw for cases in hostile.build().values() for raw, _ in cases]
    assert len(lines) > 30
    assert _differences(lines) == []
    assert _differences(hostile.mixed(hostile.sample_lines())) == []


def test_str_lines_and_other_ingestion_times_read_the_same_both_ways() -> None:
    lines = list(generate_lines(300, seed=4))
    assert _differences([raw.decode("utf-8") for raw in lines if raw]) == []  # type: ignore[misc]
    for now in (
        datetime(2021, 12, 1, 12, 0),  # naive: taken as UTC by the schema
        datetime(2021, 12, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(1999, 1, 1, tzinfo=UTC),  # out of the schema's range
        None,
        "2021-12-01T00:00:00Z",
    ):
        assert _differences(lines[:100], now=now) == []


def test_other_keyword_sets_read_the_same_both_ways() -> None:
    lines = list(generate_lines(1000, seed=8))
    for keywords in (("nft", "nfts", "music nft"), ("#nft", "$eth"), ("é", "musique"), ("a",)):
        assert _differences(lines, matcher=KeywordMatcher(keywords)) == []


# ---- the fuzz ---------------------------------------------------------------------------------


def _message(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("data"), dict) else None


_ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    2**64 + 1,
    -(2**63) - 1,
    1.5,
    1e300,
    "",
    " ",
    "x",
    "123",
    " 42 ",
    "\u0130stanbul",
    "e" * 9000,
    [],
    ["a"],
    [{"tag": "nft"}],
    {},
    {"tag": 1},
    {"id": 5},
    "2021-12-01T00:00:00+14:00",
    "1999-12-31T23:59:59Z",
    "2021-13-01",
]
_PATHS = [
    ("data",),
    ("data", "id"),
    ("data", "text"),
    ("data", "created_at"),
    ("data", "lang"),
    ("data", "author_id"),
    ("data", "public_metrics"),
    ("data", "public_metrics", "like_count"),
    ("data", "public_metrics", "repost_count"),
    ("data", "public_metrics", "retweet_count"),
    ("data", "entities"),
    ("data", "entities", "hashtags"),
    ("data", "entities", "mentions"),
    ("data", "entities", "urls"),
    ("data", "entities", "cashtags"),
    ("data", "referenced_tweets"),
    ("data", "edit_history_tweet_ids"),
    ("includes",),
    ("includes", "users"),
    ("matching_rules",),
    ("errors",),
]


def _set(message: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target: Any = message
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[path[-1]] = value


def _user_swap(message: dict[str, Any], rng: random.Random) -> None:
    users = message.get("includes", {}).get("users")
    if isinstance(users, list) and users and isinstance(users[0], dict):
        key = rng.choice(["id", "username", "verified", "location", "public_metrics"])
        users[0][key] = rng.choice(_ODD_VALUES)
        if rng.random() < 0.3:
            users.insert(0, {"id": users[0].get("id"), "username": "first"})


def _item_swap(message: dict[str, Any], rng: random.Random) -> None:
    entities = message["data"].get("entities")
    if isinstance(entities, dict):
        for key, field in (("hashtags", "tag"), ("mentions", "username"), ("urls", "url")):
            items = entities.get(key)
            if isinstance(items, list) and items and isinstance(items[0], dict):
                items[0][field] = rng.choice(_ODD_VALUES)
                if key == "urls":
                    items[0]["expanded_url"] = rng.choice([None, "", "https://x.y", 1])
                return


def _dump(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _raw_mutations(raw: bytes, rng: random.Random) -> Iterator[bytes]:
    """Byte-level edits the JSON encoder would never make."""
    head = raw[:-1]
    yield raw[: rng.randrange(1, len(raw))]  # truncated
    yield head + b',"skipped":' + b"[" * 1100 + b"]" * 1100 + b"}"  # deep nesting, skipped part
    yield head + b',"skipped":' + b"[" * 200 + b"]" * 200 + b"}"  # nesting orjson takes
    for depth in (999, 1000, 1023, 1024, 1025):  # about orjson's limit and the recursion limit
        yield head + b',"skipped":' + b"[" * depth + b"]" * depth + b"}"
        yield b'{"s":' + b"[" * depth + b"]" * depth + b"," + raw[1:]
    yield head + b',"skipped":' + b'{"a":' * 1100 + b"1" + b"}" * 1100 + b"}"
    yield head + b',"skipped":"\xff\xfe"}'  # invalid UTF-8 in a skipped string
    yield head + b',"sk\xc3\x28":1}'  # invalid UTF-8 in a skipped key
    yield head + b',"skipped":"\xed\xa0\x80"}'  # a surrogate encoded as UTF-8
    yield head + b',"skipped":' + b"9" * 5000 + b"}"  # more digits than int() takes
    yield head + b',"skipped":-' + b"9" * 4301 + b"}"
    yield head + b',"skipped":' + b"9" * 4300 + b"}"  # exactly the limit: accepted
    yield head + b',"skipped":' + b"9" * 30 + b"}"  # past 64 bits: orjson gives a float
    yield head + b',"skipped":1.' + b"9" * 5000 + b"}"  # a long float is no integer
    yield head + b',"skipped":1e400}'
    yield head + b',"skipped":NaN}'
    yield head + b',"skipped":Infinity}'
    yield head + b',"skipped":"\\ud800"}'  # a lone surrogate escape, skipped
    yield head + b',"skipped":"\\ud83c\\udfb5"}'  # a pair
    yield head + b',"skipped":"\\x"}'  # an invalid escape
    yield head + b',"skipped":"a\x01b"}'  # a raw control character
    yield head + b',"skipped":[1,]}'  # a trailing comma
    yield head + b',"skipped":01}'  # a leading zero
    yield head + b',"skipped":tru}'
    yield head + b',"data":{"id":"1","text":"dup"}}'  # a duplicate key: the last wins
    yield head + b',"data":null}'
    yield head + b',"data":[]}'
    yield b'{"data":{"id":"1","text":"first"},' + raw[1:]
    yield raw.replace(b'"data"', b'"\\u0064ata"', 1)  # an escaped key
    yield raw.replace(b'"text"', b'"t\\u0065xt"', 1)
    yield raw.replace(b'"id":"', b'"id":"\\ud800', 1)  # a lone surrogate in a value read
    yield raw.replace(b'"text":"', b'"text":"\\udfff ', 1)
    yield raw.replace(b'"text":"', b'"text":"\xed\xb0\x80', 1)
    yield raw.replace(b'"id":"', b'"id":" ', 1)  # whitespace around the id
    yield raw.replace(b'"id":"', b'"id":"\\t', 1)
    yield b"\xef\xbb\xbf" + raw  # a byte-order mark
    yield b" \t\r\n" + raw + b" \n"  # JSON whitespace
    yield b"\x0c" + raw  # not JSON whitespace
    yield raw + b"\x0b"
    yield raw + b" x"  # trailing data
    yield raw + raw
    yield raw.replace(b'"like_count":', b'"like_count":-', 1)
    yield raw.replace(b'"like_count":', b'"like_count":0.', 1)
    yield raw.replace(b'"like_count":', b'"like_count":1e', 1)
    yield raw.replace(b'"created_at":"', b'"created_at":"  ', 1)
    yield raw.replace(b'.000Z"', b'.000Z "', 1)
    yield raw.replace(b'.000Z"', b'"', 1)  # naive: taken as UTC
    yield raw.replace(b'.000Z"', b'.000+00:00"', 1)
    yield raw.replace(b'.000Z"', b'.000-00:30"', 1)
    yield raw.replace(b'"created_at":"2', b'"created_at":"1', 1)  # a century back: out of range
    yield raw.replace(b'.000Z"', b'.000+14:00"', 1)
    yield raw.replace(b'"text":"', b'"text":"\\u0130 music \\u212a NFT \\u017f ', 1)
    yield raw.replace(b'"text":"', b'"text":"' + b"#a " * 3000, 1)  # many hashtags from text
    yield raw.replace(b'"tag":"', b'"tag":"' + b"N" * 9000, 1)  # over the schema's bounds
    yield raw.replace(b'"username":"', b'"username":"' + b"u" * 9000, 1)
    yield raw.replace(b'"lang":"', b'"lang":"' + "\u0130".encode() * 4000, 1)
    yield raw.replace(b'"text":"', b'"text":"' + b"m" * 25_001, 1)
    yield raw.replace(b'"text":"', b'"text":"' + b"m" * 70_000, 1)  # past the fast path's size


def _fuzz_lines(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    base = [raw for raw in generate_lines(count, seed=seed) if _message(raw) is not None]
    out: list[bytes] = []
    for raw in base:
        message = _message(raw)
        assert message is not None
        kind = rng.randrange(5)
        if kind == 0:
            for _ in range(rng.randint(1, 3)):
                _set(message, rng.choice(_PATHS), rng.choice(_ODD_VALUES))
            out.append(_dump(message))
        elif kind == 1:
            _user_swap(message, rng)
            out.append(_dump(message))
        elif kind == 2:
            _item_swap(message, rng)
            if rng.random() < 0.5:
                message["data"].pop("entities", None)  # entities from the text
            out.append(_dump(message))
        elif kind == 3:
            message["data"].pop(rng.choice(["id", "text", "created_at", "author_id"]), None)
            if rng.random() < 0.3:
                message.pop("data")
                message["errors"] = rng.choice([[{"title": "oops"}], [], "x", [1]])
            out.append(_dump(message))
        else:
            out.extend(_raw_mutations(raw, rng))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mutated_lines_read_the_same_both_ways(seed: int) -> None:
    lines = _fuzz_lines(seed, 400)
    assert len(lines) > 1000
    assert _differences(lines) == []


def test_the_fuzz_reaches_both_paths() -> None:
    """Not a fuzz of lines the fast path merely refuses: many are taken, many are not."""
    lines = _fuzz_lines(1, 400)
    taken = sum(fast_x_post(raw, MATCHER, NOW) is not None for raw in lines)
    assert 0.15 * len(lines) < taken < 0.85 * len(lines)


def test_a_lower_integer_digit_limit_is_honoured() -> None:
    """`sys.get_int_max_str_digits()` is read per line: a lower limit is the standard path's too."""
    import sys

    raw = next(r for r in generate_lines(50, seed=3) if _message(r) is not None)
    lines = [raw[:-1] + b',"skipped":' + b"7" * n + b"}" for n in (640, 641, 700)]
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        assert [fast_x_post(line, MATCHER, NOW) is None for line in lines] == [False, True, True]
        assert _differences(lines) == []
    finally:
        sys.set_int_max_str_digits(before)
