"""Bluesky Jetstream messages → posts (schema v1). Pure functions: no I/O, no clock.

Jetstream is the whole network's firehose of record changes, not a search: it has no server-side
keyword filter, so almost every message is well-formed but not for us. Those raise `SkipRecord`
(counted, not dead-lettered); only messages that are broken raise `RejectedRecord`, so the
dead-letter holds what is worth a look instead of the untracked firehose. Contracts: DESIGN.md
"Post", REFERENCE.md "Bluesky Jetstream".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import (
    MAX_TEXT_CHARS,
    SCHEMA_VERSION,
    SchemaError,
    conform,
    parse_timestamp,
)
from musicnft.hotpath.decode import Post, RejectedRecord, SkipRecord, decode_line, text_hashtags
from musicnft.hotpath.tombstones import deleted_post

POST_COLLECTION = "app.bsky.feed.post"
MATCHING_RULE = "jetstream"

_FACET_TAG = "app.bsky.richtext.facet#tag"
_FACET_MENTION = "app.bsky.richtext.facet#mention"
_FACET_LINK = "app.bsky.richtext.facet#link"
_EMBED_EXTERNAL = "app.bsky.embed.external"
_EMBED_RECORD_WITH_MEDIA = "app.bsky.embed.recordWithMedia"

# The AT Protocol's DID and record-key syntax. Both end up inside the post id, so a value outside
# them would make an id no other system (the dashboard's links, a later reconciliation) can use.
_DID = re.compile(r"did:[a-z]+:[A-Za-z0-9._:%-]{1,2048}")
_RKEY = re.compile(r"[A-Za-z0-9._:~-]{1,512}")

# Jetstream documents exactly these three kinds; a new kind would be metadata, never a post.
_NON_POST_KINDS = frozenset({"identity", "account"})
_OPERATIONS = frozenset({"create", "update", "delete"})


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _decode(raw: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, bytes | str):
        return decode_line(raw)
    raise RejectedRecord(f"not a Jetstream message (got {_type_name(raw)})")


def _required_str(container: Mapping[str, Any], key: str, where: str) -> str:
    value = container.get(key)
    if value is None:
        raise RejectedRecord(f"{where} has no {key!r}")
    if not isinstance(value, str):
        raise RejectedRecord(f"{where} {key!r} is a {_type_name(value)}, expected a string")
    return value


def _did(message: Mapping[str, Any]) -> str:
    did = _required_str(message, "did", "message")
    if not _DID.fullmatch(did):
        raise RejectedRecord(f"malformed did {did[:80]!r}")
    return did


def _time_us(message: Mapping[str, Any]) -> int | None:
    value = message.get("time_us")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RejectedRecord(f"'time_us' is a {_type_name(value)}, expected an integer")
    time_us: int = value
    if not 0 <= time_us < 2**63:
        raise RejectedRecord(f"'time_us' {time_us} is out of range")
    return time_us


def _created_at(
    record: Mapping[str, Any], time_us: int | None, ingested_at: datetime, uri: str
) -> datetime:
    """The author's `createdAt`; Jetstream's receive time if a client left it out, else now.

    `createdAt` is client-supplied, but it is what the author saw and what Bluesky shows, so it
    wins over `time_us` (when Jetstream saw the commit) whenever it is present and readable."""
    raw = record.get("createdAt")
    if raw is not None:
        if not isinstance(raw, str):
            raise RejectedRecord(f"post {uri} createdAt is a {_type_name(raw)}, expected a string")
        try:
            return parse_timestamp(raw)
        except SchemaError as exc:
            raise RejectedRecord(f"post {uri} createdAt: {exc}") from None
    if time_us is not None:
        try:
            return datetime.fromtimestamp(time_us / 1_000_000, UTC)
        except (OverflowError, OSError, ValueError):
            raise RejectedRecord(f"post {uri} time_us {time_us} is not a usable time") from None
    return ingested_at


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _facet_features(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every feature of every facet; facets of the wrong shape are ignored, not fatal, because
    they only decorate the text (the post is still worth keeping without them)."""
    facets = record.get("facets")
    out: list[Mapping[str, Any]] = []
    if not isinstance(facets, list):
        return out
    for facet in facets:
        features = facet.get("features") if isinstance(facet, Mapping) else None
        if isinstance(features, list):
            out.extend(f for f in features if isinstance(f, Mapping))
    return out


def _feature_values(features: list[Mapping[str, Any]], type_: str, field: str) -> list[str]:
    return [
        value
        for f in features
        if f.get("$type") == type_ and isinstance(value := f.get(field), str) and value
    ]


def _hashtags(record: Mapping[str, Any], features: list[Mapping[str, Any]], text: str) -> list[str]:
    """Tag facets plus the record's `tags` (the lexicon's "additional hashtags" that are not in
    the text), lower-case without '#', matching how X's hashtags are stored.

    A record without `facets` (a client that does not write them) has its hashtags read from the
    text by the same rule as X's (`text_hashtags`); when facets are present they are authoritative.
    """
    if isinstance(record.get("facets"), list):
        tags = _feature_values(features, _FACET_TAG, "tag")
    else:
        tags = text_hashtags(text)
    extra = record.get("tags")
    if isinstance(extra, list):
        tags.extend(t for t in extra if isinstance(t, str))
    return _dedupe([t for t in (t.strip().lstrip("#").lower() for t in tags) if t])


def _external_uri(embed: Any) -> str | None:
    if not isinstance(embed, Mapping):
        return None
    if embed.get("$type") == _EMBED_RECORD_WITH_MEDIA:
        return _external_uri(embed.get("media"))
    if embed.get("$type") != _EMBED_EXTERNAL:
        return None
    external = embed.get("external")
    uri = external.get("uri") if isinstance(external, Mapping) else None
    return uri if isinstance(uri, str) and uri else None


def _urls(record: Mapping[str, Any], features: list[Mapping[str, Any]]) -> list[str]:
    urls = _feature_values(features, _FACET_LINK, "uri")
    card = _external_uri(record.get("embed"))
    if card is not None:
        urls.append(card)
    return _dedupe(urls)


def _first_lang(record: Mapping[str, Any]) -> str | None:
    langs = record.get("langs")
    if isinstance(langs, list):
        for lang in langs:
            if isinstance(lang, str) and lang:
                return lang
    return None


def _skip_unless_commit(message: Mapping[str, Any]) -> None:
    kind = _required_str(message, "kind", "message")
    if kind != "commit":
        # identity/account: handle and status changes, carried for every DID regardless of
        # wantedCollections. Jetstream may add kinds; none of them would be a post.
        reason = f"{kind} event" if kind in _NON_POST_KINDS else f"unhandled kind {kind[:40]!r}"
        raise SkipRecord(reason)


def _post_commit(message: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """(the commit, its operation) of a commit to the post collection; other collections skip."""
    commit = message.get("commit")
    if not isinstance(commit, Mapping):
        raise RejectedRecord(
            f"commit message 'commit' is a {_type_name(commit)}, expected an object"
        )
    operation = _required_str(commit, "operation", "commit")
    collection = _required_str(commit, "collection", "commit")
    if operation not in _OPERATIONS:
        # Unlike an unknown kind, an unknown operation may carry a post we would lose: keep the raw
        # message in the dead-letter where it can be seen and replayed.
        raise RejectedRecord(f"unknown commit operation {operation[:40]!r}")
    if collection != POST_COLLECTION:
        # Likes, follows, reposts...: only reachable if the subscription asks for them.
        raise SkipRecord(f"{operation} of {collection[:80]}")
    return commit, operation


def _post_uri(commit: Mapping[str, Any], did: str) -> str:
    """The post's at:// URI, from the author's DID and the commit's record key."""
    rkey = _required_str(commit, "rkey", "commit")
    if not _RKEY.fullmatch(rkey) or rkey in (".", ".."):
        raise RejectedRecord(f"malformed rkey {rkey[:80]!r}")
    return f"at://{did}/{POST_COLLECTION}/{rkey}"


def _skip_unless_create(operation: str, uri: str) -> None:
    if operation == "delete":
        # Not reached from normalize_jetstream_event, which turns deletes into tombstones first
        # (DeletedAtSource, docs/deletions.md); kept so this guard alone still never makes a post.
        raise SkipRecord(f"delete of {uri}")
    if operation == "update":
        # The Bluesky app cannot edit posts, and the AppView treats posts as immutable, so an
        # update is a third-party client rewriting history. The create already gave us the post;
        # emitting the update would store a second version under the same post_id that the
        # reconciliation (unique by post_id) would have to arbitrate.
        raise SkipRecord(f"update of {uri}")


def _post_record(commit: Mapping[str, Any], uri: str) -> Mapping[str, Any]:
    record = commit.get("record")
    if not isinstance(record, Mapping):
        raise RejectedRecord(f"post {uri} record is a {_type_name(record)}, expected an object")
    record_type = record.get("$type")
    if record_type is not None and record_type != POST_COLLECTION:
        raise RejectedRecord(f"post {uri} record $type is {str(record_type)[:80]!r}")
    return record


def _text(record: Mapping[str, Any], uri: str) -> str:
    text = record.get("text")
    if text is None:
        raise RejectedRecord(f"post {uri} has no text")
    if not isinstance(text, str):
        raise RejectedRecord(f"post {uri} text is a {_type_name(text)}, expected a string")
    if len(text) > MAX_TEXT_CHARS:
        # the schema refuses it anyway (the same reason): refused before any work is spent on
        # it (keyword matching, entity extraction on a megabyte of text took over 0.1 s)
        raise RejectedRecord(
            f"post {uri} field 'text': too long ({len(text)} chars > {MAX_TEXT_CHARS})"
        )
    return text


def _post(
    *,
    uri: str,
    did: str,
    record: Mapping[str, Any],
    text: str,
    created_at: datetime,
    ingested_at: datetime,
    features: list[Mapping[str, Any]],
    hashtags: list[str],
    matched: list[str],
) -> Post:
    """The post row for a tracked create, through the schema gate (`conform`)."""
    post: Post = {
        "post_id": f"bsky:{uri}",
        "platform": "bluesky",
        "created_at": created_at,
        "ingested_at": ingested_at,
        "text": text,
        "lang": _first_lang(record),
        "author_id": did,
        # Jetstream carries DIDs only; resolving handles would mean a network call per author.
        "author_handle": None,
        "author_followers": None,
        "author_verified": None,
        "author_location": None,
        # Reposts are separate app.bsky.feed.repost records, never posts.
        "is_repost": False,
        # A firehose sees a post at birth: there are no counts yet (and none would be updated).
        "reply_count": None,
        "repost_count": None,
        "like_count": None,
        "quote_count": None,
        "hashtags": hashtags,
        "mentions": _dedupe(_feature_values(features, _FACET_MENTION, "did")),
        "urls": _urls(record, features),
        "matched_keywords": matched,
        "matching_rules": [MATCHING_RULE],
        "schema_version": SCHEMA_VERSION,
    }
    try:
        return conform(post)
    except SchemaError as exc:
        raise RejectedRecord(f"post {uri} {exc}") from None


def normalize_jetstream_event(
    raw: bytes | str | Mapping[str, Any], matcher: KeywordMatcher, ingested_at: datetime
) -> Post:
    """One Jetstream message → a post, or SkipRecord / RejectedRecord saying why not.

    Only `create` commits of `app.bsky.feed.post` can be posts. Checks run in the order that
    keeps the dead-letter meaningful: structure first (a broken message is rejected whether or
    not it would have matched), then the keyword filter (untracked posts are skipped), then the
    schema gate (`conform`, e.g. text over the limit) for the posts we would otherwise store.
    """
    message = _decode(raw)
    did = _did(message)
    time_us = _time_us(message)
    _skip_unless_commit(message)
    commit, operation = _post_commit(message)
    uri = _post_uri(commit, did)
    if operation == "delete":  # a tombstone for the stream (musicnft.hotpath.tombstones)
        raise deleted_post(f"bsky:{uri}", "bluesky", ingested_at, f"delete of {uri}")
    _skip_unless_create(operation, uri)
    record = _post_record(commit, uri)
    text = _text(record, uri)
    created_at = _created_at(record, time_us, ingested_at, uri)
    features = _facet_features(record)
    hashtags = _hashtags(record, features, text)
    matched = matcher.match(text, hashtags)
    if not matched:
        raise SkipRecord("no tracked keyword")
    return _post(
        uri=uri,
        did=did,
        record=record,
        text=text,
        created_at=created_at,
        ingested_at=ingested_at,
        features=features,
        hashtags=hashtags,
        matched=matched,
    )


def jetstream_cursor(raw: bytes | str | Mapping[str, Any]) -> int | None:
    """The message's `time_us` (Jetstream's resume cursor), or None if it has no usable one.

    Never raises: the source calls it on every frame, including broken ones it passes on."""
    try:
        message = raw if isinstance(raw, Mapping) else json.loads(raw)
    except (ValueError, TypeError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(message, Mapping):
        return None
    value = message.get("time_us")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    return None
