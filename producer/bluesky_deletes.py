"""Which Bluesky deletes become tombstones: only those of posts this producer put on the stream.

Jetstream sends a delete for every post deleted anywhere on Bluesky (many per second), and we keep
only the few posts that match a tracked keyword. A tombstone for every delete would flood the
stream and the `deletions` table with posts we never had, so the producer remembers the ids of
the posts it handed over (`TrackedPosts`, an append-only file beside the cursor, reloaded on
start) and turns a delete into a tombstone only for those.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any

from musicnft.contract.keywords import KeywordMatcher
from musicnft.hotpath.decode import SkipRecord
from musicnft.hotpath.normalize_bluesky import normalize_jetstream_event
from musicnft.hotpath.tombstones import DeletedAtSource, TombstoneForStream

log = logging.getLogger("musicnft.produce.bluesky")

# Jetstream replays about a day; people delete posts for longer. 2 M ids is ~200 MB of file at
# most and months of the tracked volume (thousands of posts a day).
MAX_TRACKED = 2_000_000


class TrackedPosts:
    """The post ids this producer put on the stream, newest last, persisted one a line."""

    def __init__(self, path: Path, capacity: int = MAX_TRACKED) -> None:
        self.path = path
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
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
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

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


class DeletionAwareNormalizer:
    """The producer's Bluesky normalizer: posts as `normalize_jetstream_event` makes them, and
    a DeletedAtSource (→ a tombstone on the stream) for deletes of posts we track."""

    def __init__(self, tracked: TrackedPosts) -> None:
        self.tracked = tracked
        self.tombstones = 0

    def __call__(self, raw: bytes, matcher: KeywordMatcher, now: datetime) -> dict[str, Any]:
        try:
            post = normalize_jetstream_event(raw, matcher, now)
        except DeletedAtSource as deleted:
            if deleted.tombstone.post_id not in self.tracked:
                raise SkipRecord(deleted.reason) from None  # a post we never had
            self.tombstones += 1
            raise TombstoneForStream(deleted.reason, deleted.tombstone) from None
        self.tracked.add(post["post_id"])
        return post

    def close(self) -> None:
        self.tracked.close()
