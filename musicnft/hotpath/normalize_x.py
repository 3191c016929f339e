"""Raw source lines → posts (schema v1). Pure functions: no I/O, no clock (time is passed in).

`decode_line` rejects bytes that are not a JSON object; `normalize_x_message` turns an X API v2
filtered-stream message into a post or explains, in `RejectedRecord.reason`, why it cannot.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import SCHEMA_VERSION, SchemaError, conform, parse_timestamp
from musicnft.hotpath.decode import ControlMessage, Post, RejectedRecord, decode_line


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
    value = value.strip()
    if not value:
        raise RejectedRecord("empty post id")
    return value


def normalize_x_message(
    message: Mapping[str, Any], matcher: KeywordMatcher, ingested_at: datetime
) -> Post:
    """An X API v2 stream message (`data`, `includes.users`, `matching_rules`) → a post.

    Accepts both `retweet_count` and `repost_count`. Optional fields of the wrong type become
    null rather than costing the post; a missing or mistyped id or text rejects it.
    """
    data = message.get("data")
    if data is None:
        errors = message.get("errors")
        if isinstance(errors, list) and errors:
            first = errors[0] if isinstance(errors[0], Mapping) else {}
            title = str(first.get("title") or first.get("message") or "error")
            raise ControlMessage("x_error", title)
        raise RejectedRecord("message has no 'data' object")
    if not isinstance(data, Mapping):
        raise RejectedRecord(f"'data' is a {type(data).__name__}, expected an object")
    post_id = _post_id(data.get("id"))
    text = data.get("text")
    if text is None:
        raise RejectedRecord(f"post x:{post_id} has no text")
    if not isinstance(text, str):
        raise RejectedRecord(f"post x:{post_id} text is a {type(text).__name__}, expected a string")

    created_raw = data.get("created_at")
    if created_raw is None:
        created_at = ingested_at
    else:
        try:
            created_at = parse_timestamp(created_raw)
        except SchemaError as exc:
            raise RejectedRecord(f"post x:{post_id} created_at: {exc}") from None

    author_id = data.get("author_id")
    if isinstance(author_id, int) and not isinstance(author_id, bool):
        author_id = str(author_id)
    author_id = author_id if isinstance(author_id, str) and author_id != "" else None
    user = _find_user(message, author_id)
    user_metrics = user.get("public_metrics")
    user_metrics = user_metrics if isinstance(user_metrics, Mapping) else {}

    metrics = data.get("public_metrics")
    metrics = metrics if isinstance(metrics, Mapping) else {}
    repost_count = _opt_int(metrics.get("repost_count"))
    if repost_count is None:
        repost_count = _opt_int(metrics.get("retweet_count"))

    entities = data.get("entities")
    entities = entities if isinstance(entities, Mapping) else {}
    hashtags = _dedupe([t.lower() for t in _entity_list(entities, "hashtags", "tag")])
    cashtags = _entity_list(entities, "cashtags", "tag")
    mentions = _dedupe(_entity_list(entities, "mentions", "username"))
    urls = _dedupe(
        [
            u.get("expanded_url") or u.get("url")
            for u in (entities.get("urls") if isinstance(entities.get("urls"), list) else [])
            if isinstance(u, Mapping) and isinstance(u.get("expanded_url") or u.get("url"), str)
        ]
    )

    referenced = data.get("referenced_tweets")
    ref_types = (
        {r.get("type") for r in referenced if isinstance(r, Mapping)}
        if isinstance(referenced, list)
        else set()
    )
    is_repost = "retweeted" in ref_types or text.startswith("RT @")

    rules = message.get("matching_rules")
    rule_tags = _dedupe(
        [
            str(r.get("tag") or r.get("id"))
            for r in (rules if isinstance(rules, list) else [])
            if isinstance(r, Mapping) and (r.get("tag") or r.get("id"))
        ]
    )

    verified = user.get("verified")
    post: Post = {
        "post_id": f"x:{post_id}",
        "platform": "x",
        "created_at": created_at,
        "ingested_at": ingested_at,
        "text": text,
        "lang": _opt_str(data.get("lang")),
        "author_id": author_id,
        "author_handle": _opt_str(user.get("username")),
        "author_followers": _opt_int(user_metrics.get("followers_count")),
        "author_verified": verified if isinstance(verified, bool) else None,
        "author_location": _opt_str(user.get("location")),
        "is_repost": is_repost,
        "reply_count": _opt_int(metrics.get("reply_count")),
        "repost_count": repost_count,
        "like_count": _opt_int(metrics.get("like_count")),
        "quote_count": _opt_int(metrics.get("quote_count")),
        "hashtags": hashtags,
        "mentions": mentions,
        "urls": urls,
        "matched_keywords": matcher.match(text, hashtags + cashtags),
        "matching_rules": rule_tags,
        "schema_version": SCHEMA_VERSION,
    }
    try:
        return conform(post)
    except SchemaError as exc:
        raise RejectedRecord(f"post x:{post_id} {exc}") from None


def normalize_x_line(raw: bytes | str, matcher: KeywordMatcher, ingested_at: datetime) -> Post:
    """Decode and normalize one X stream line (see `decode_line`, `normalize_x_message`)."""
    return normalize_x_message(decode_line(raw), matcher, ingested_at)
