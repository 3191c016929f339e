"""Raw source lines → posts (schema v1). Pure functions: no I/O, no clock (time is passed in).

`decode_line` rejects bytes that are not a JSON object; `normalize_x_message` turns an X API v2
filtered-stream message into a post or explains, in `RejectedRecord.reason`, why it cannot.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
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
    conform,
    parse_timestamp,
)
from musicnft.hotpath.decode import (
    ControlMessage,
    Post,
    RejectedRecord,
    decode_line,
    text_cashtags,
    text_hashtags,
    text_mentions,
)
from musicnft.hotpath.x_message import DecodeError, decode_struct


def _opt_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    return None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _entity_list(entities: Mapping[str, Any], key: str, field: str) -> list[str]:
    items = entities.get(key)
    out: list[str] = []
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping):
                value = item.get(field)
                if isinstance(value, str) and value:
                    out.append(value)
    return out


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _find_user(message: Mapping[str, Any], author_id: str | None) -> Mapping[str, Any]:
    includes = message.get("includes")
    if not isinstance(includes, Mapping) or author_id is None:
        return {}
    users = includes.get("users")
    if not isinstance(users, list):
        return {}
    for user in users:
        if isinstance(user, Mapping) and str(user.get("id")) == author_id:
            return user
    return {}


def _post_id(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        raise RejectedRecord("missing post id" if value is None else "post id is not a string")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise RejectedRecord(f"post id is a {type(value).__name__}, expected a string")
    stripped: str = value.strip()
    if not stripped:
        raise RejectedRecord("empty post id")
    return stripped


def _mapping(value: Any) -> Mapping[str, Any]:
    """`value` if it is an object, else an empty one (optional parts of the wrong type)."""
    return value if isinstance(value, Mapping) else {}


def _data(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """The message's `data` object; an `errors`-only message is X talking about the stream."""
    data = message.get("data")
    if data is None:
        errors = message.get("errors")
        if isinstance(errors, list) and errors:
            first = _mapping(errors[0])
            title = str(first.get("title") or first.get("message") or "error")
            raise ControlMessage("x_error", title)
        raise RejectedRecord("message has no 'data' object")
    if not isinstance(data, Mapping):
        raise RejectedRecord(f"'data' is a {type(data).__name__}, expected an object")
    return data


def _text(data: Mapping[str, Any], post_id: str) -> str:
    text = data.get("text")
    if text is None:
        raise RejectedRecord(f"post x:{post_id} has no text")
    if not isinstance(text, str):
        raise RejectedRecord(f"post x:{post_id} text is a {type(text).__name__}, expected a string")
    if len(text) > MAX_TEXT_CHARS:
        # the schema refuses it anyway (the same reason): refused before any work is spent on
        # it (keyword matching, entity extraction on a megabyte of text took over 0.1 s)
        raise RejectedRecord(
            f"post x:{post_id} field 'text': too long ({len(text)} chars > {MAX_TEXT_CHARS})"
        )
    return text


def _created_at(data: Mapping[str, Any], post_id: str, ingested_at: datetime) -> datetime:
    """The post's `created_at`; the ingestion time when X left it out."""
    created_raw = data.get("created_at")
    if created_raw is None:
        return ingested_at
    try:
        return parse_timestamp(created_raw)
    except SchemaError as exc:
        raise RejectedRecord(f"post x:{post_id} created_at: {exc}") from None


def _author_id(data: Mapping[str, Any]) -> str | None:
    author_id = data.get("author_id")
    if isinstance(author_id, int) and not isinstance(author_id, bool):
        author_id = str(author_id)
    return author_id if isinstance(author_id, str) and author_id != "" else None


def _author_fields(user: Mapping[str, Any]) -> dict[str, Any]:
    """The post's author_* columns other than the id, from the `includes.users` entry."""
    user_metrics = _mapping(user.get("public_metrics"))
    verified = user.get("verified")
    return {
        "author_handle": _opt_str(user.get("username")),
        "author_followers": _opt_int(user_metrics.get("followers_count")),
        "author_verified": verified if isinstance(verified, bool) else None,
        "author_location": _opt_str(user.get("location")),
    }


def _engagement_counts(data: Mapping[str, Any]) -> dict[str, Any]:
    """The post's *_count columns; `repost_count` falls back to the older `retweet_count`."""
    metrics = _mapping(data.get("public_metrics"))
    repost_count = _opt_int(metrics.get("repost_count"))
    if repost_count is None:
        repost_count = _opt_int(metrics.get("retweet_count"))
    return {
        "reply_count": _opt_int(metrics.get("reply_count")),
        "repost_count": repost_count,
        "like_count": _opt_int(metrics.get("like_count")),
        "quote_count": _opt_int(metrics.get("quote_count")),
    }


def _hashtags(tags: list[str]) -> list[str]:
    return _dedupe([t.lower() for t in tags])


def _entities_or_text(data: Mapping[str, Any], text: str) -> tuple[list[str], list[str], list[str]]:
    """(hashtags, cashtags, mentions) as written: from `entities` when X sent them (they are
    authoritative, even when empty), else extracted from the text by X's own rules, so a payload
    without `entities` (an archive, another client) still has its `#NFT`."""
    entities = data.get("entities")
    if isinstance(entities, Mapping):
        return (
            _entity_list(entities, "hashtags", "tag"),
            _entity_list(entities, "cashtags", "tag"),
            _entity_list(entities, "mentions", "username"),
        )
    return text_hashtags(text), text_cashtags(text), text_mentions(text)


def _urls(entities: Mapping[str, Any]) -> list[str]:
    """Expanded URLs where X gives them, else the t.co ones."""
    items = entities.get("urls")
    out: list[str] = []
    for item in items if isinstance(items, list) else []:
        url = (item.get("expanded_url") or item.get("url")) if isinstance(item, Mapping) else None
        if isinstance(url, str):
            out.append(url)
    return _dedupe(out)


def _is_repost(data: Mapping[str, Any], text: str) -> bool:
    referenced = data.get("referenced_tweets")
    ref_types = (
        {r.get("type") for r in referenced if isinstance(r, Mapping)}
        if isinstance(referenced, list)
        else set()
    )
    return "retweeted" in ref_types or text.startswith("RT @")


def _rule_tags(message: Mapping[str, Any]) -> list[str]:
    """The filtered-stream rules that matched: each one's tag, or its id if it has none."""
    rules = message.get("matching_rules")
    return _dedupe(
        [
            str(r.get("tag") or r.get("id"))
            for r in (rules if isinstance(rules, list) else [])
            if isinstance(r, Mapping) and (r.get("tag") or r.get("id"))
        ]
    )


def normalize_x_message(
    message: Mapping[str, Any], matcher: KeywordMatcher, ingested_at: datetime
) -> Post:
    """An X API v2 stream message (`data`, `includes.users`, `matching_rules`) → a post.

    Accepts both `retweet_count` and `repost_count`. Hashtags, cashtags and mentions come from
    `entities`, or from the text when `entities` is absent. Optional fields of the wrong type become
    null rather than costing the post; a missing or mistyped id or text rejects it.
    """
    data = _data(message)
    post_id = _post_id(data.get("id"))
    text = _text(data, post_id)
    created_at = _created_at(data, post_id, ingested_at)
    author_id = _author_id(data)
    entities = _mapping(data.get("entities"))
    tags, cashtags, mentions = _entities_or_text(data, text)
    hashtags = _hashtags(tags)
    post: Post = {
        "post_id": f"x:{post_id}",
        "platform": "x",
        "created_at": created_at,
        "ingested_at": ingested_at,
        "text": text,
        "lang": _opt_str(data.get("lang")),
        "author_id": author_id,
        **_author_fields(_find_user(message, author_id)),
        "is_repost": _is_repost(data, text),
        **_engagement_counts(data),
        "hashtags": hashtags,
        "mentions": _dedupe(mentions),
        "urls": _urls(entities),
        "matched_keywords": matcher.match(text, hashtags + cashtags),
        "matching_rules": _rule_tags(message),
        "schema_version": SCHEMA_VERSION,
    }
    try:
        return conform(post)
    except SchemaError as exc:
        raise RejectedRecord(f"post x:{post_id} {exc}") from None


# ---- the typed fast path (x_message) ------------------------------------------------------

# Longer lines (the 1.5 MB texts the sample's `huge_text` kind carries) take the standard path at
# once: they are rejected there for their length, and decoding them twice would cost twice.
MAX_FAST_LINE_BYTES = 65_536
# orjson parses up to 1,024 levels of nesting; past that the standard library decides. A line with
# fewer opening brackets than this cannot nest that deep, nor can valid JSON shorter than twice it
# (every level opens and closes): counting them (a pass over the bytes each) is left to such lines.
_MAX_BRACKETS = 1_000

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
    return size >= 2 * _MAX_BRACKETS and raw.count(b"[") + raw.count(b"{") >= _MAX_BRACKETS


def decode_x_message(raw: bytes | str) -> Any:
    """The line's X message as msgspec reads it, only the fields a post is made of
    (`x_message._Message`), or None when the line may read differently in the standard path (see
    x_message's docstring) or does not fit the types."""
    if decode_struct is None or type(raw) is not bytes or _standard_path_only(raw):
        return None
    try:
        return decode_struct(raw)
    except (DecodeError, RecursionError):
        return None


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


def _entity_tags(items: list[Any] | None, lower: bool) -> list[str]:
    """`_entity_list` of the standard path (hashtags lower-cased and deduplicated)."""
    out: list[str] = []
    if items:
        for item in items:
            tag = item.tag
            if tag:
                out.append(tag.lower() if lower else tag)
        if lower and len(out) > 1:
            out = list(dict.fromkeys(out))
    return out


def _timestamp(value: str) -> datetime | None:
    """`parse_timestamp(value)`, or None where it raises; X's own form ('...Z') read directly."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        dt = None
    if dt is not None and dt.tzinfo is UTC and MIN_TIMESTAMP <= dt < MAX_TIMESTAMP:
        return dt  # what parse_timestamp returns for it: already UTC, within range
    try:
        return parse_timestamp(value)
    except SchemaError:
        return None


def _fits(values: list[str]) -> bool:
    return len(values) <= MAX_LIST_ITEMS and all(len(v) <= MAX_STRING_CHARS for v in values)


def _short(value: str | None) -> bool:
    return value is None or len(value) <= MAX_STRING_CHARS


def fast_x_post(raw: bytes | str, matcher: KeywordMatcher, ingested_at: datetime) -> Post | None:
    """The post of an ordinary X stream line, exactly as the standard path builds it; None when
    the line needs the standard path (anything unusual, every rejection)."""
    message = decode_x_message(raw)
    if message is None:
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
    created_at = ingested_at if data.created_at is None else _timestamp(data.created_at)
    if created_at is None:
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
                    followers = user.public_metrics.followers_count
                break

    metrics = data.public_metrics
    if metrics is not None:
        # (each count is within `_opt_int`'s bounds already: x_message's `_Count`)
        repost_count = metrics.repost_count
        if repost_count is None:
            repost_count = metrics.retweet_count
        reply_count = metrics.reply_count
        like_count = metrics.like_count
        quote_count = metrics.quote_count
    else:
        repost_count = reply_count = like_count = quote_count = None

    entities = data.entities
    mentions: list[str] = []
    urls: list[str] = []
    if entities is not None:
        hashtags = _entity_tags(entities.hashtags, True)
        cashtags = _entity_tags(entities.cashtags, False)
        if entities.mentions:
            for mention in entities.mentions:
                if mention.username:
                    mentions.append(mention.username)
        if entities.urls:
            for u in entities.urls:
                url = u.expanded_url or u.url
                if url is not None:
                    urls.append(url)
    else:
        hashtags = list(dict.fromkeys([t.lower() for t in text_hashtags(text)]))
        cashtags = text_cashtags(text)
        mentions = text_mentions(text)
    if len(mentions) > 1:
        mentions = list(dict.fromkeys(mentions))
    if len(urls) > 1:
        urls = list(dict.fromkeys(urls))

    is_repost = text.startswith("RT @")
    if not is_repost and data.referenced_tweets:
        for ref in data.referenced_tweets:
            if ref.type == "retweeted":
                is_repost = True
                break
    rules: list[str] = []
    if message.matching_rules:
        for r in message.matching_rules:
            rule = r.tag or r.id
            if rule:
                rules.append(rule)
        if len(rules) > 1:
            rules = list(dict.fromkeys(rules))
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


def normalize_x_line(raw: bytes | str, matcher: KeywordMatcher, ingested_at: datetime) -> Post:
    """Decode and normalize one X stream line (see `decode_line`, `normalize_x_message`).

    An ordinary line takes the typed fast path (`x_message.fast_x_post`, about 4x cheaper); it
    answers only when its post is exactly the one this standard path builds, and every other line
    (each rejection, anything unusual) comes here, so the reasons are defined once."""
    post = fast_x_post(raw, matcher, ingested_at)
    if post is not None:
        return post
    return normalize_x_message(decode_line(raw), matcher, ingested_at)
