"""Which Bluesky deletes become tombstones: only those of posts this producer put on the stream.

Jetstream sends a delete for every post deleted anywhere on Bluesky (many per second), and we keep
only the few posts that match a tracked keyword. A tombstone for every delete would flood the
stream and the `deletions` table with posts we never had, so the producer remembers the ids of
the posts it handed over (`TrackedPosts`, an append-only file beside the cursor, reloaded on
start) and turns a delete into a tombstone only for those.

Account events (Jetstream `kind: "account"`, atproto's `#account`: `active` false with a `status`)
follow the same rule, by author (docs/deletions.md "Bluesky accounts"):

- `deleted` / `takendown`: the account is gone. One author tombstone (every post of the DID,
  including any that reaches the pipeline later) when we hold any of its posts; and the DID is
  remembered (`EndedAccounts`, persisted beside the tracked ids) so a later create from it (a
  replay, a late frame) is skipped here, before it is ever stored.
- `deactivated` / `suspended`: reversible. The posts we hold go (one post tombstone per tracked
  post: stored content follows the account, as X's `users` results for deactivated and
  suspended users delete), but the author is not blocked: if the account comes back, its new
  posts are collected again. Its old posts are not restored (Jetstream does not resend them).
- any other status (`desynchronized`, `throttled`, unknown) and `active: true`: nothing to do.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.tombstone import Tombstone
from musicnft.hotpath.decode import RejectedRecord, SkipRecord, decode_line
from musicnft.hotpath.normalize_bluesky import normalize_jetstream_event
from musicnft.hotpath.tombstones import DeletedAtSource, TombstoneForStream

log = logging.getLogger("musicnft.produce.bluesky")

# Jetstream replays about a day; people delete posts for longer. 2 M ids is ~200 MB of file at
# most and months of the tracked volume (thousands of posts a day).
MAX_TRACKED = 2_000_000
# Ended accounts remembered to skip their later posts; deletions and takedowns are thousands a day.
MAX_ENDED = 1_000_000

# atproto account statuses (`#account.status`) and what they do to the posts we hold.
ENDED = frozenset({"deleted", "takendown"})  # author tombstone: every post, later ones too
WITHDRAWN = frozenset({"deactivated", "suspended"})  # the stored posts go, the author may return
_POST_PREFIX = "bsky:at://"


def author_of(post_id: str) -> str | None:
    """The DID in a Bluesky post id (`bsky:at://<did>/app.bsky.feed.post/<rkey>`), else None."""
    if not post_id.startswith(_POST_PREFIX):
        return None
    return post_id[len(_POST_PREFIX) :].split("/", 1)[0] or None


class TrackedPosts:
    """The post ids this producer put on the stream, newest last, persisted one a line."""

    def __init__(self, path: Path, capacity: int = MAX_TRACKED) -> None:
        self.path = path
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._by_author: dict[str, set[str]] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line:
                    self._remember(line)
            if len(self._ids) < sum(1 for _ in path.open("rb")):
                self._rewrite()  # forgotten or repeated ids: keep the file bounded
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")

    def _remember(self, post_id: str) -> None:
        self._ids[post_id] = None
        self._ids.move_to_end(post_id)
        author = author_of(post_id)
        if author is not None:
            self._by_author.setdefault(author, set()).add(post_id)
        while len(self._ids) > self.capacity:
            old, _ = self._ids.popitem(last=False)
            self._forget_author_entry(old)

    def _forget_author_entry(self, post_id: str) -> None:
        author = author_of(post_id)
        held = self._by_author.get(author) if author is not None else None
        if held is not None:
            held.discard(post_id)
            if not held:
                del self._by_author[author]  # type: ignore[arg-type]

    def of_author(self, did: str) -> list[str]:
        """The tracked post ids of one author (oldest first)."""
        return sorted(self._by_author.get(did, ()))

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(f"{i}\n" for i in self._ids), encoding="utf-8")
        os.replace(tmp, self.path)

    def add(self, post_id: str) -> None:
        if post_id in self._ids:
            return
        self._remember(post_id)
        self._file.write(post_id + "\n")
        self._file.flush()

    def __contains__(self, post_id: object) -> bool:
        return post_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def close(self) -> None:
        self._file.close()


def account_status(raw: bytes | str | Mapping[str, Any]) -> tuple[str, bool, str | None] | None:
    """(did, active, status) of a Jetstream `account` event; None for any other message (the
    caller has already been told by the normalizer that it is not a post). A broken account
    event raises RejectedRecord naming what is wrong."""
    if isinstance(raw, Mapping):
        message: Any = raw
    else:
        data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
        if b'"account"' not in data:  # cheap: most skipped messages are commits of other posts
            return None
        try:
            message = decode_line(data)
        except RejectedRecord:
            return None  # not ours to judge here: the normalizer already skipped it
    if not isinstance(message, Mapping) or message.get("kind") != "account":
        return None
    account = message.get("account")
    if not isinstance(account, Mapping):
        raise RejectedRecord("account event without an 'account' object")
    did = account.get("did") or message.get("did")
    if not isinstance(did, str) or not did.startswith("did:"):
        raise RejectedRecord(f"account event with a malformed did {str(did)[:80]!r}")
    active = account.get("active")
    if not isinstance(active, bool):
        raise RejectedRecord(f"account event for {did}: 'active' is not a boolean")
    status = account.get("status")
    return did, active, status if isinstance(status, str) else None


class DeletionAwareNormalizer:
    """The producer's Bluesky normalizer: posts as `normalize_jetstream_event` makes them, and
    a DeletedAtSource (→ tombstones on the stream) for deletes of posts we track and for the
    accounts (deleted, taken down, deactivated, suspended) whose posts we track."""

    def __init__(self, tracked: TrackedPosts, ended: TrackedPosts | None = None) -> None:
        self.tracked = tracked
        self.ended = ended or TrackedPosts(tracked.path.parent / "ended_accounts", MAX_ENDED)
        self.tombstones = 0
        self.accounts_ended = 0
        self.accounts_withdrawn = 0

    def __call__(self, raw: bytes, matcher: KeywordMatcher, now: datetime) -> dict[str, Any]:
        try:
            post = normalize_jetstream_event(raw, matcher, now)
        except DeletedAtSource as deleted:
            if deleted.tombstone.post_id not in self.tracked:
                raise SkipRecord(deleted.reason) from None  # a post we never had
            self.tombstones += 1
            raise TombstoneForStream(deleted.reason, deleted.tombstone) from None
        except SkipRecord:
            account = account_status(raw)
            if account is None:
                raise
            did, active, status = account
            tombstones = self._account(did, active, status, now=now)
            if not tombstones:
                raise
            raise TombstoneForStream(f"account {status}: {did}", *tombstones) from None
        if post["author_id"] in self.ended:
            raise SkipRecord(f"post of ended account {post['author_id']}")
        self.tracked.add(post["post_id"])
        return post

    def _account(
        self, did: str, active: bool, status: str | None, now: datetime
    ) -> list[Tombstone]:
        """The tombstones an account event puts on the stream (none: the event is skipped)."""
        if active or status not in ENDED | WITHDRAWN:
            return []
        held = self.tracked.of_author(did)
        if status in ENDED:
            self.ended.add(did)
            self.accounts_ended += 1
            if not held:
                return []
            tombstones = [Tombstone(None, did, "delete", "bluesky", now)]
        else:
            self.accounts_withdrawn += 1
            tombstones = [Tombstone(p, None, "delete", "bluesky", now) for p in held]
        if tombstones:
            log.info(
                "account %s %s: %d tombstone(s) for %d post(s) we hold",
                did,
                status,
                len(tombstones),
                len(held),
            )
        self.tombstones += len(tombstones)
        return tombstones

    def close(self) -> None:
        self.tracked.close()
        self.ended.close()
