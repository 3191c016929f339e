"""A typed fast path for X stream lines: msgspec decodes only the fields a post is made of.

`fast_x_post` returns the post `normalize_x_message(decode_line(raw), ...)` would return, or None
whenever the line is anything but an ordinary, clean post: then the caller takes the standard
path, which stays the one definition of what a line means and of every rejection's reason.

Why it is safe to trust msgspec's reading when it succeeds (a parity test holds the two paths to
the same output over the sample, the hostile corpus and a fuzz of mutated lines):
- the line's bytes are valid UTF-8 (checked here: msgspec does not look inside skipped strings);
- msgspec refuses NaN, Infinity, lone-surrogate escapes, a BOM, trailing data and control
  characters, as the standard path does; duplicate keys keep the last value in both;
- the standard library refuses integers of more than `sys.get_int_max_str_digits()` digits,
  msgspec skips them: a line long enough to hold one goes through the standard path unless it has
  no digit run that long;
- nesting deeper than orjson's 1,024 levels is refused by the standard library (recursion limit),
  msgspec's limit is the interpreter's own: a line with that many brackets takes the standard path;
- every field is typed as the ordinary message has it (ids and texts strings, counts integers,
  objects objects): any other type is a validation error, hence the standard path;
- a value the standard path would reject or change (an empty id, text over the limit, a timestamp
  out of range, a string or list beyond the schema's bounds) returns None.

Without msgspec installed (the Lambda bundle) there is no fast path: the result is the same.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from typing import Any

from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import (
    MAX_LIST_ITEMS,
    MAX_STRING_CHARS,
    MAX_TEXT_CHARS,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    SCHEMA_VERSION,
    SchemaError,
    parse_timestamp,
)
from musicnft.hotpath.decode import Post, text_cashtags, text_hashtags, text_mentions

try:  # the Lambda bundle goes without: the standard path gives the same posts
    import msgspec
except ImportError:  # pragma: no cover - exercised by the Lambda bundle test
    msgspec = None  # type: ignore[assignment]

# Longer lines (the 1.5 MB texts the sample's `huge_text` kind carries) take the standard path at
# once: they are rejected there for their length, and decoding them twice would cost twice.
MAX_FAST_LINE_BYTES = 65_536
# orjson parses up to 1,024 levels of nesting; past that the standard library decides. A line with
# fewer brackets than this cannot nest that deep.
_MAX_BRACKETS = 1_000
# The kinds of post column this module builds, by name: a test holds them to POST_FIELDS, so a
# schema change that this fast path does not know about fails a test instead of slipping through.
FAST_PATH_KINDS: dict[str, str] = {
    "post_id": "string",
    "platform": "string",
    "created_at": "timestamp",
    "ingested_at": "timestamp",
    "text": "string",
    "lang": "string",
    "author_id": "string",
    "author_handle": "string",
    "author_followers": "int",
    "author_verified": "bool",
    "author_location": "string",
    "is_repost": "bool",
    "reply_count": "int",
    "repost_count": "int",
    "like_count": "int",
    "quote_count": "int",
    "hashtags": "list",
    "mentions": "list",
    "urls": "list",
    "matched_keywords": "list",
    "matching_rules": "list",
    "schema_version": "int32",
}
_INT64_END = 2**63

if msgspec is not None:

    class _Metrics(msgspec.Struct, gc=False):
        repost_count: int | None = None
        retweet_count: int | None = None
        reply_count: int | None = None
        like_count: int | None = None
        quote_count: int | None = None

    class _Tag(msgspec.Struct, gc=False):
        tag: str | None = None

    class _Mention(msgspec.Struct, gc=False):
        username: str | None = None

    class _Url(msgspec.Struct, gc=False):
        url: str | None = None
        expanded_url: str | None = None

    class _Entities(msgspec.Struct, gc=False):
        hashtags: list[_Tag] | None = None
        cashtags: list[_Tag] | None = None
        mentions: list[_Mention] | None = None
        urls: list[_Url] | None = None

    class _Ref(msgspec.Struct, gc=False):
        type: str | None = None

    class _Data(msgspec.Struct, gc=False):
        id: str | None = None
        text: str | None = None
        created_at: str | None = None
        lang: str | None = None
        author_id: str | None = None
        public_metrics: _Metrics | None = None
        entities: _Entities | None = None
        referenced_tweets: list[_Ref] | None = None

    class _UserMetrics(msgspec.Struct, gc=False):
        followers_count: int | None = None

    class _User(msgspec.Struct, gc=False):
        id: str | None = None
        username: str | None = None
        verified: bool | None = None
        location: str | None = None
        public_metrics: _UserMetrics | None = None

    class _Includes(msgspec.Struct, gc=False):
        users: list[_User] | None = None

    class _Rule(msgspec.Struct, gc=False):
        id: str | None = None
        tag: str | None = None

    class _Message(msgspec.Struct, gc=False):
        data: _Data | None = None
        includes: _Includes | None = None
        matching_rules: list[_Rule] | None = None

    _decode = msgspec.json.Decoder(_Message).decode
    _DecodeError: type[Exception] = msgspec.DecodeError  # ValidationError is a subclass
else:  # pragma: no cover - exercised by the Lambda bundle test
    _decode = None
    _DecodeError = ValueError

_DIGIT_RUNS: dict[int, re.Pattern[bytes]] = {}


def _has_digit_run_over(raw: bytes, limit: int) -> bool:
    pattern = _DIGIT_RUNS.get(limit)
    if pattern is None:
        pattern = _DIGIT_RUNS[limit] = re.compile(rb"[0-9]{%d}" % (limit + 1))
    return pattern.search(raw) is not None


def _standard_path_only(raw: bytes) -> bool:
    """True when the bytes may hold something msgspec reads differently from `decode_line`."""
    size = len(raw)
    if size > MAX_FAST_LINE_BYTES:
        return True
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return True
    limit = sys.get_int_max_str_digits()
    if limit and size > limit and _has_digit_run_over(raw, limit):
        return True
    return size > _MAX_BRACKETS and raw.count(b"[") + raw.count(b"{") >= _MAX_BRACKETS


def _opt_int(value: int | None) -> int | None:
    return value if value is not None and 0 <= value < _INT64_END else None


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values)) if len(values) > 1 else values


def _tags(items: list[Any] | None) -> list[str]:
    return [t.tag for t in items if t.tag] if items else []


def _fits(values: list[str]) -> bool:
    return len(values) <= MAX_LIST_ITEMS and all(len(v) <= MAX_STRING_CHARS for v in values)


def _short(value: str | None) -> bool:
    return value is None or len(value) <= MAX_STRING_CHARS


def fast_x_post(raw: bytes, matcher: KeywordMatcher, ingested_at: datetime) -> Post | None:
    """The post of an ordinary X stream line, exactly as the standard path builds it; None when
    the line needs the standard path (anything unusual, every rejection)."""
    if _decode is None or type(raw) is not bytes or _standard_path_only(raw):
        return None
    try:
        message = _decode(raw)
    except (_DecodeError, RecursionError):
        return None
    data = message.data
    if data is None or data.id is None or data.text is None:
        return None
    post_id = data.id.strip()
    text = data.text
    if not post_id or len(post_id) + 2 > MAX_STRING_CHARS or len(text) > MAX_TEXT_CHARS:
        return None
    if not (
        type(ingested_at) is datetime
        and ingested_at.tzinfo is UTC
        and MIN_TIMESTAMP <= ingested_at < MAX_TIMESTAMP
    ):
        return None
    if data.created_at is None:
        created_at = ingested_at
    else:
        try:
            created_at = parse_timestamp(data.created_at)
        except SchemaError:
            return None
    author_id = data.author_id or None
    lang = data.lang or None

    handle = location = followers = verified = None
    includes = message.includes
    if author_id is not None and includes is not None and includes.users:
        for user in includes.users:
            # the standard path compares str(user id): a null id reads "None"
            if (user.id if user.id is not None else "None") == author_id:
                handle = user.username or None
                location = user.location or None
                verified = user.verified
                if user.public_metrics is not None:
                    followers = _opt_int(user.public_metrics.followers_count)
                break

    metrics = data.public_metrics
    if metrics is not None:
        repost_count = _opt_int(metrics.repost_count)
        if repost_count is None:
            repost_count = _opt_int(metrics.retweet_count)
        reply_count = _opt_int(metrics.reply_count)
        like_count = _opt_int(metrics.like_count)
        quote_count = _opt_int(metrics.quote_count)
    else:
        repost_count = reply_count = like_count = quote_count = None

    entities = data.entities
    urls: list[str] = []
    if entities is not None:
        tags = _tags(entities.hashtags)
        cashtags = _tags(entities.cashtags)
        mentions = (
            [m.username for m in entities.mentions if m.username] if entities.mentions else []
        )
        if entities.urls:
            for u in entities.urls:
                url = u.expanded_url or u.url
                if url is not None:
                    urls.append(url)
            urls = _dedupe(urls)
    else:
        tags, cashtags, mentions = text_hashtags(text), text_cashtags(text), text_mentions(text)
    hashtags = _dedupe([t.lower() for t in tags]) if tags else tags

    refs = data.referenced_tweets
    is_repost = text.startswith("RT @") or (
        refs is not None and any(r.type == "retweeted" for r in refs)
    )
    rules: list[str] = []
    if message.matching_rules:
        for r in message.matching_rules:
            rule = r.tag or r.id
            if rule:
                rules.append(rule)
        rules = _dedupe(rules)
    mentions = _dedupe(mentions)
    matched = matcher.match(text, hashtags + cashtags if cashtags else hashtags)
    # A line of at most MAX_STRING_CHARS bytes holds no string longer than that (a character is
    # at least a byte; lower-casing lengthens only U+0130, two bytes, to two characters) and no
    # list of MAX_LIST_ITEMS entities (each takes 10 bytes or more): only longer lines and the
    # lists taken from the text need the schema's bounds checked.
    if (len(raw) > MAX_STRING_CHARS or entities is None or not _fits(matched)) and not (
        _short(lang)
        and _short(author_id)
        and _short(handle)
        and _short(location)
        and _fits(hashtags)
        and _fits(mentions)
        and _fits(urls)
        and _fits(matched)
        and _fits(rules)
    ):
        return None
    return {
        "post_id": "x:" + post_id,
        "platform": "x",
        "created_at": created_at,
        "ingested_at": ingested_at,
        "text": text,
        "lang": lang,
        "author_id": author_id,
        "author_handle": handle,
        "author_followers": followers,
        "author_verified": verified,
        "author_location": location,
        "is_repost": is_repost,
        "reply_count": reply_count,
        "repost_count": repost_count,
        "like_count": like_count,
        "quote_count": quote_count,
        "hashtags": hashtags,
        "mentions": mentions,
        "urls": urls,
        "matched_keywords": matched,
        "matching_rules": rules,
        "schema_version": SCHEMA_VERSION,
    }
