"""The tombstone contract: a deletion learned from a source, kept durably and applied everywhere.

A tombstone names either one post (`post_id`, platform-prefixed as in the post contract) or one
author (`author_id`: an account-level action covers every post of that author), the `action` to
take, the `source` that told us and `learned_at` (UTC). It travels on the stream as a JSON object
whose first key is `"tombstone"`, so a reader tells it from a post by its first bytes without a
second parse (posts start with `{"post_id"`). Pure and dependency-free: the Lambda bundle uses it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# delete: the post (or every post of the author) goes. scrub_geo: location data goes, the post
# stays. X's compliance results name more reasons (protected, suspended, deactivated): each of
# them means "delete" for stored content.
ACTIONS = ("delete", "scrub_geo")
SOURCES = ("bluesky", "x_compliance", "manual")
STREAM_MARKER = b'{"tombstone"'
TOMBSTONE_VERSION = 1


class TombstoneError(ValueError):
    """A tombstone that cannot be honoured as given (no target, unknown action, bad id)."""


@dataclass(frozen=True)
class Tombstone:
    post_id: str | None
    author_id: str | None
    action: str
    source: str
    learned_at: datetime

    def __post_init__(self) -> None:
        if (self.post_id is None) == (self.author_id is None):
            raise TombstoneError("a tombstone names exactly one of post_id or author_id")
        if self.action not in ACTIONS:
            raise TombstoneError(f"unknown action {self.action!r} (known: {', '.join(ACTIONS)})")
        if self.learned_at.tzinfo is None:
            raise TombstoneError("learned_at must be timezone-aware (UTC)")

    @property
    def key(self) -> str:
        """What the tombstone is about: `post:<post_id>` or `author:<author_id>`, plus the action
        (a scrub and a delete of the same post are two tombstones). Idempotency key."""
        target = f"post:{self.post_id}" if self.post_id is not None else f"author:{self.author_id}"
        return f"{self.action}|{target}"

    def row(self) -> dict[str, Any]:
        """The `deletions` table row that records it (applied_at stays null until applied)."""
        return {
            "deletion_key": self.key,
            "post_id": self.post_id,
            "author_id": self.author_id,
            "action": self.action,
            "source": self.source,
            "learned_at": self.learned_at,
            "applied_at": None,
            "window_start": None,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "tombstone": TOMBSTONE_VERSION,
            "post_id": self.post_id,
            "author_id": self.author_id,
            "action": self.action,
            "source": self.source,
            "learned_at": self.learned_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }

    def to_stream_record(self) -> bytes:
        return json.dumps(self.to_json(), ensure_ascii=False).encode("utf-8")

    @property
    def partition_key(self) -> str:
        """The stream partition key: the post's own, so the tombstone shares its post's shard."""
        return self.post_id or f"author:{self.author_id}"


def is_tombstone_record(data: bytes) -> bool:
    return data.lstrip()[: len(STREAM_MARKER)] == STREAM_MARKER


def from_json(obj: Any) -> Tombstone:
    """A tombstone from its JSON form (stream record or `deletions/` line); TombstoneError if not."""
    if not isinstance(obj, dict) or "tombstone" not in obj:
        raise TombstoneError("not a tombstone object")
    learned = obj.get("learned_at")
    try:
        at = datetime.fromisoformat(str(learned).replace("Z", "+00:00"))
    except ValueError:
        raise TombstoneError(f"learned_at {str(learned)[:40]!r} is not an ISO timestamp") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    post_id, author_id = obj.get("post_id"), obj.get("author_id")
    for name, value in (("post_id", post_id), ("author_id", author_id)):
        if value is not None and (not isinstance(value, str) or not value):
            raise TombstoneError(f"{name} must be a non-empty string")
    return Tombstone(
        post_id=post_id,
        author_id=author_id,
        action=str(obj.get("action") or "delete"),
        source=str(obj.get("source") or "manual"),
        learned_at=at.astimezone(UTC),
    )


def from_stream_record(data: bytes) -> Tombstone:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        raise TombstoneError("tombstone record is not valid JSON") from None
    return from_json(obj)


def post_id_from_source(raw: str) -> str:
    """A post id as X or Bluesky write them, with or without our platform prefix → our post_id.

    `1466…` and `x:1466…` → `x:1466…`; `at://did/app.bsky.feed.post/rkey` and `bsky:at://…` →
    `bsky:at://…`. Anything else raises TombstoneError naming it."""
    value = raw.strip()
    if value.startswith(("x:", "bsky:at://")):
        rest = value.split(":", 1)[1]
        if value.startswith("x:") and not rest.isdigit():
            raise TombstoneError(f"{raw[:80]!r} is not an X post id")
        return value
    if value.isdigit():
        return f"x:{value}"
    if value.startswith("at://") and "/app.bsky.feed.post/" in value:
        return f"bsky:{value}"
    raise TombstoneError(f"{raw[:80]!r} is neither an X post id nor a Bluesky post URI")
