"""Tombstones in the hot path: record them, take their posts out of `posts_hot` at once, and keep
posts that arrive after their tombstone (late, redelivered) from being inserted.

Called by the consumer (`musicnft.hotpath.consumer`) with the tombstone records of a batch and the
rows it is about to insert. The removal is best effort here: where the warehouse cannot do it now
(BigQuery's streaming buffer, or a Lambda bundle without pyarrow to read query results) the
tombstone stays pending and the purge pass (`musicnft.batch.deletions`) applies it later.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from musicnft.contract.tombstone import Tombstone
from musicnft.hotpath.decode import SkipRecord

log = logging.getLogger("musicnft.consumer.tombstones")

TABLE = "deletions"


def row_id(tombstone: Tombstone) -> str:
    """The insert id of a tombstone's row: never a post id (insert ids share one namespace)."""
    return f"tombstone:{tombstone.key}"


def record(warehouse: Any, tombstones: Sequence[Tombstone]) -> Any:
    """Insert the tombstones' rows into `deletions` (idempotent by key, best effort like every
    streaming insert; readers count distinct keys). Returns the warehouse's InsertResult."""
    unique = {t.key: t for t in tombstones}
    if not unique:
        return None
    rows = [t.row() for t in unique.values()]
    return warehouse.insert_rows(TABLE, rows, [row_id(t) for t in unique.values()])


def _targets(tombstones: Iterable[Tombstone]) -> tuple[list[str], list[str]]:
    deletes = [t for t in tombstones if t.action == "delete"]
    posts = sorted({t.post_id for t in deletes if t.post_id})
    authors = sorted({t.author_id for t in deletes if t.author_id})
    return posts, authors


def remove_from_posts_hot(warehouse: Any, tombstones: Sequence[Tombstone]) -> bool:
    """DELETE the tombstoned posts (and deleted authors' posts) from posts_hot; False when the
    warehouse could not do it now (it stays pending for the purge pass)."""
    posts, authors = _targets(tombstones)
    if not posts and not authors:
        return True
    if getattr(warehouse, "dialect", None) is None:
        return False  # a writer that cannot run SQL: the purge pass applies them
    in_list = warehouse.dialect.in_list_param
    sql = f"DELETE FROM posts_hot WHERE {in_list('post_id')} OR {in_list('author_id')}"
    try:
        warehouse.query(sql, [posts or [""], authors or [""]], read_only=False)
    except Exception as exc:  # streaming buffer, no pyarrow in the bundle, an outage
        log.warning(
            "posts_hot: removing %d tombstoned post(s), %d author(s) not confirmed (%s: %s); "
            "the purge pass checks and applies them",
            len(posts),
            len(authors),
            type(exc).__name__,
            str(exc)[:200],
        )
        return False
    return True


@lru_cache(maxsize=1)
def _can_read_results() -> bool:
    """Query results arrive as Arrow tables; the Lambda bundle ships without pyarrow (too big),
    so there the consumer writes tombstones but cannot read them back."""
    available = importlib.util.find_spec("pyarrow") is not None
    if not available:
        log.info("no pyarrow here: posts arriving after their tombstone are purged later")
    return available


def tombstoned_ids(warehouse: Any, post_ids: Sequence[str], author_ids: Sequence[str]) -> set[str]:
    """Which of `post_ids` are deleted (by their own tombstone or their author's). Needs a
    readable query result; where there is none (no pyarrow) nothing is filtered here and the
    purge pass removes late posts instead."""
    dialect = getattr(warehouse, "dialect", None)
    if not post_ids or dialect is None:  # a writer that cannot be queried (tests' fakes)
        return set()
    if not getattr(warehouse, "per_batch_lookups", False):
        # BigQuery: a query per Lambda batch bills 10 MB and adds seconds (and waits out an
        # outage on the client's own 10-minute retry); the purge pass removes late posts there
        return set()
    if not _can_read_results():
        return set()  # the Lambda bundle: the purge pass removes late posts there
    cached_read = getattr(warehouse, "cached_read", None)  # the embedded warehouse's
    if cached_read is not None:
        known = cached_read("tombstoned", ("deletions",), lambda: _all_deleted(warehouse))
        if known is not None:
            posts_gone, authors_gone = known
            return {p for p in post_ids if p in posts_gone} | {
                "author:" + a for a in author_ids if a in authors_gone
            }
    in_list = dialect.in_list_param
    table = warehouse.query(
        "SELECT DISTINCT post_id, author_id FROM deletions "
        f"WHERE action = 'delete' AND ({in_list('post_id')} OR {in_list('author_id')})",
        [list(post_ids), list(author_ids) or [""]],
    )
    rows = table.to_pylist()
    gone_posts = {r["post_id"] for r in rows if r["post_id"]}
    gone_authors = {r["author_id"] for r in rows if r["author_id"]}
    return gone_posts | {"author:" + a for a in gone_authors}


# Deleted posts and authors kept in memory for the per-batch lookup; past it, a query per batch.
CACHED_DELETIONS_MAX = 500_000


def _all_deleted(warehouse: Any) -> tuple[frozenset[str], frozenset[str]] | None:
    """(every deleted post id, every deleted author id), or None when there are too many."""
    rows = warehouse.query(
        "SELECT DISTINCT post_id, author_id FROM deletions WHERE action = 'delete' "
        f"LIMIT {CACHED_DELETIONS_MAX + 1}"
    ).to_pylist()
    if len(rows) > CACHED_DELETIONS_MAX:
        return None
    return (
        frozenset(r["post_id"] for r in rows if r["post_id"]),
        frozenset(r["author_id"] for r in rows if r["author_id"]),
    )


def without_tombstoned(
    warehouse: Any, rows: list[dict[str, Any]], extra: Sequence[Tombstone] = ()
) -> list[dict[str, Any]]:
    """`rows` less the posts whose tombstone (or whose author's) is known: in the warehouse, or
    among `extra` (the tombstones of the same batch, which may follow their post in it)."""
    if not rows:
        return rows
    posts = [r["post_id"] for r in rows]
    authors = sorted({r["author_id"] for r in rows if r.get("author_id")})
    gone = tombstoned_ids(warehouse, posts, authors)
    extra_posts, extra_authors = _targets(extra)
    gone |= set(extra_posts) | {"author:" + a for a in extra_authors}
    if not gone:
        return rows
    kept = [
        r for r in rows if r["post_id"] not in gone and f"author:{r.get('author_id')}" not in gone
    ]
    if len(kept) != len(rows):
        log.info("%d post(s) already deleted at the source; not inserted", len(rows) - len(kept))
    return kept


def tombstone_of(data: bytes) -> Tombstone:
    """A tombstone stream record → Tombstone; RejectedRecord naming the fault otherwise."""
    from musicnft.contract.tombstone import TombstoneError, from_stream_record
    from musicnft.hotpath.decode import RejectedRecord

    try:
        return from_stream_record(data)
    except TombstoneError as exc:
        raise RejectedRecord(f"bad tombstone: {exc}") from None


def apply_tombstones(
    warehouse: Any, tombstones: Sequence[Tombstone], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The consumer's one call per batch: record the batch's tombstones (an outage raises, so
    the batch is retried), take their posts out of posts_hot, and return `rows` without the
    posts deleted at the source (by a tombstone of this batch or an earlier one)."""
    if tombstones:
        record(warehouse, tombstones)
        remove_from_posts_hot(warehouse, tombstones)
        log.info("%d tombstone(s) recorded", len(tombstones))
    return without_tombstoned(warehouse, rows, tombstones)


class DeletedAtSource(SkipRecord):
    """A source record that deletes a post: not a post (callers that only know SkipRecord skip
    it, as before), but the producer can put its `tombstone` on the stream instead."""

    def __init__(self, reason: str, tombstone: Tombstone) -> None:
        super().__init__(reason)
        self.tombstone = tombstone


class TombstoneForStream(DeletedAtSource):
    """A delete the producer must put on the stream as a tombstone (a post it had stored). Plain
    DeletedAtSource is skipped like any SkipRecord: most deletes are of posts we never had.

    An account event can remove several posts at once: `tombstones` holds them all (the first
    is also `tombstone`)."""

    def __init__(self, reason: str, tombstone: Tombstone, *more: Tombstone) -> None:
        super().__init__(reason, tombstone)
        self.tombstones: tuple[Tombstone, ...] = (tombstone, *more)


def deleted_post(post_id: str, source: str, learned_at: Any, reason: str) -> DeletedAtSource:
    """The DeletedAtSource a normalizer raises for a delete of `post_id` learned at `learned_at`."""
    return DeletedAtSource(
        reason,
        Tombstone(
            post_id=post_id, author_id=None, action="delete", source=source, learned_at=learned_at
        ),
    )
