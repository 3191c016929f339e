"""Deletions at the source, applied everywhere: the `deletions` table, the lake and the warehouse.

The tombstones (`musicnft.contract.tombstone`) are kept in two places: the `deletions` table (one
row per tombstone learned, one more per window it was applied to) and JSON lines under the lake's
`deletions/` prefix. They are applied in two ways, both idempotent:

- **Hidden at read time**: a window's posts are built from the lake without the tombstoned posts
  (`hide_deleted`, called by the window pipeline), so a post that reaches the lake after its
  tombstone is never counted, whatever order things arrive in.
- **Purged physically** by `apply_deletions` (the Dagster deletions sensor, every minute, and
  `musicnft forget` / `compliance x-sync`): DELETE from `posts_hot` and `posts`, rewrite the
  affected lake files atomically without the posts (`raw/`, and `scored/`: the affected posts'
  `created_at` hour folders on every pass, all of it on a full scan), and
  name the windows whose aggregates counted them so they are re-materialized.

Where BigQuery refuses (rows still in the streaming buffer, about 30 minutes), the tombstone stays
pending and the next pass retries it; `pending_count` says how many wait.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from musicnft.batch.lake_index import read_table
from musicnft.contract.lake_layout import RAW_PREFIX, SCORED_PREFIX, deletions_key
from musicnft.contract.tables import TABLES
from musicnft.contract.tombstone import Tombstone
from musicnft.contract.windows import window_start
from musicnft.ports import Lake

log = logging.getLogger("musicnft.deletions")

TABLE = "deletions"
POST_TABLES = ("posts_hot", "posts")
# The tables whose rows say when their window was last written: a window re-materialized after
# its deletion was applied no longer counts the deleted posts.
STAMPED_AGGREGATES = ("window_metrics_15m",)
# A tombstone's posts that reached neither posts_hot nor posts yet are looked for in the lake
# files indexed since this long before it was learned.
LATE_MARGIN = timedelta(hours=1)
_NONE = [""]  # an empty IN list that every warehouse can type


@dataclass
class PurgeResult:
    applied: int = 0
    pending: int = 0
    rows_removed: dict[str, int] = field(default_factory=dict)
    rows_scrubbed: dict[str, int] = field(default_factory=dict)
    files_rewritten: list[str] = field(default_factory=list)
    files_failed: list[str] = field(default_factory=list)  # retried by the next pass
    # quarantined files that hold (or may hold) deleted posts and cannot be rewritten: key ->
    # reason (`blocked`, status `deleted_blocked`); a repair and `musicnft deletions redrive`
    files_blocked: dict[str, str] = field(default_factory=dict)
    windows: list[datetime] = field(default_factory=list)


@dataclass(frozen=True)
class Targets:
    """What a set of tombstones covers, by action."""

    delete_posts: frozenset[str] = frozenset()
    delete_authors: frozenset[str] = frozenset()
    scrub_posts: frozenset[str] = frozenset()
    scrub_authors: frozenset[str] = frozenset()

    @classmethod
    def of(cls, tombstones: Iterable[Tombstone]) -> Targets:
        ts = list(tombstones)

        def ids(action: str, attr: str) -> frozenset[str]:
            return frozenset(
                v for t in ts if t.action == action and (v := getattr(t, attr)) is not None
            )

        return cls(
            ids("delete", "post_id"),
            ids("delete", "author_id"),
            ids("scrub_geo", "post_id"),
            ids("scrub_geo", "author_id"),
        )

    def __bool__(self) -> bool:
        return bool(
            self.delete_posts or self.delete_authors or self.scrub_posts or self.scrub_authors
        )

    def deletes(self, post_id: Any, author_id: Any) -> bool:
        return post_id in self.delete_posts or author_id in self.delete_authors

    def scrubs(self, post_id: Any, author_id: Any) -> bool:
        return post_id in self.scrub_posts or author_id in self.scrub_authors


# ---- the deletions table -------------------------------------------------------------------


def _tombstone(row: dict[str, Any]) -> Tombstone:
    return Tombstone(
        post_id=row["post_id"],
        author_id=row["author_id"],
        action=row["action"],
        source=row["source"],
        learned_at=row["learned_at"],
    )


def known_keys(warehouse: Any, keys: Sequence[str]) -> set[str]:
    if not keys:
        return set()
    result = warehouse.query(
        "SELECT DISTINCT deletion_key FROM deletions "
        f"WHERE {warehouse.dialect.in_list_param('deletion_key')}",
        [list(keys)],
    )
    return set(result.column(0).to_pylist())


def record_tombstones(
    warehouse: Any, lake: Lake | None, tombstones: Sequence[Tombstone], now: datetime | None = None
) -> int:
    """Record the tombstones not yet known (table and lake `deletions/`); returns how many were
    new. Running it again with the same tombstones records nothing (idempotent)."""
    unique = {t.key: t for t in tombstones}
    new = [t for k, t in unique.items() if k not in known_keys(warehouse, list(unique))]
    if not new:
        return 0
    now = now or datetime.now(UTC)
    if lake is not None:  # first the lake: a crash before the table leaves a harmless extra line
        body = b"".join(t.to_stream_record() + b"\n" for t in new)
        lake.put(deletions_key(now), body)
    warehouse.append(TABLE, pa.Table.from_pylist([t.row() for t in new], schema=TABLES[TABLE]))
    return len(new)


def _latest(rows: Iterable[dict[str, Any]]) -> list[Tombstone]:
    by_key: dict[str, dict[str, Any]] = {}
    for row in rows:
        by_key.setdefault(row["deletion_key"], row)
    return [_tombstone(r) for r in by_key.values()]


def unapplied(warehouse: Any, limit: int = 10_000) -> list[Tombstone]:
    """Tombstones with no applied row yet (oldest learned first)."""
    rows = warehouse.query(
        "SELECT deletion_key, min(post_id) AS post_id, min(author_id) AS author_id, "
        "min(action) AS action, min(source) AS source, min(learned_at) AS learned_at "
        "FROM deletions GROUP BY deletion_key HAVING max(applied_at) IS NULL "
        "ORDER BY learned_at, deletion_key LIMIT ?",
        [limit],
    ).to_pylist()
    return _latest(rows)


def _visible_sql(table: str, warehouse: Any) -> str:
    """Tombstones whose posts `table` still shows: deleted posts, or scrubbed ones that still
    carry a location."""
    del warehouse
    return (
        f"SELECT d.deletion_key, d.post_id, d.author_id, d.action, d.source, d.learned_at, "
        f"'{table}' AS tbl FROM deletions d JOIN {table} t ON t.post_id = d.post_id "
        "WHERE d.applied_at IS NULL AND (d.action = 'delete' OR t.author_location IS NOT NULL) "
        "UNION ALL "
        f"SELECT d.deletion_key, d.post_id, d.author_id, d.action, d.source, d.learned_at, "
        f"'{table}' AS tbl FROM deletions d JOIN {table} t ON t.author_id = d.author_id "
        "WHERE d.applied_at IS NULL AND (d.action = 'delete' OR t.author_location IS NOT NULL)"
    )


def visible(warehouse: Any) -> dict[str, list[Tombstone]]:
    """table -> tombstones whose posts it still shows (should be empty: the asset check)."""
    out: dict[str, list[Tombstone]] = {}
    for table in POST_TABLES:
        rows = warehouse.query(_visible_sql(table, warehouse)).to_pylist()
        if rows:
            out[table] = _latest(rows)
    return out


def stale_windows(warehouse: Any) -> list[datetime]:
    """Windows a deletion was applied to whose aggregates were last written before it."""
    stale: set[datetime] = set()
    for table in STAMPED_AGGREGATES:
        rows = warehouse.query(
            "SELECT a.window_start FROM (SELECT window_start, max(applied_at) AS applied_at "
            "FROM deletions WHERE window_start IS NOT NULL GROUP BY window_start) a "
            f"JOIN (SELECT window_start, max(updated_at) AS updated_at FROM {table} "
            "GROUP BY window_start) m ON m.window_start = a.window_start "
            "WHERE m.updated_at < a.applied_at"
        ).to_pylist()
        stale |= {r["window_start"] for r in rows}
    return sorted(stale)


def _held(warehouse: Any) -> int:
    return int(
        warehouse.query("SELECT count(DISTINCT deletion_key) AS n FROM deletions")
        .column(0)[0]
        .as_py()
    )


def counts(warehouse: Any, lake: Lake | None = None) -> tuple[int, int]:
    """(tombstones held, tombstones not yet applied everywhere) for `musicnft status`; with the
    lake, a tombstone whose post a quarantined file still holds (or may hold) is pending too."""
    held = _held(warehouse)
    if not held:
        return 0, 0
    pending = {t.key for t in unapplied(warehouse, limit=1_000_000)}
    for tombstones in visible(warehouse).values():
        pending |= {t.key for t in tombstones}
    if lake is not None:
        for _reason, keys in blocked(lake, warehouse).values():
            pending |= keys
    return held, len(pending)


def status_counts(warehouse: Any, lake: Lake) -> dict[str, Any]:
    """`musicnft status` keys: `deleted` (tombstones held), `deleted_pending` (not yet applied
    everywhere, a quarantined file's included), `deleted_blocked_files` (quarantined files
    that stop a deletion) and `deleted_blocked` (each such file's key and reason)."""
    held = _held(warehouse)
    if not held:
        return {
            "deleted": 0,
            "deleted_pending": 0,
            "deleted_blocked_files": 0,
            "deleted_blocked": [],
        }
    pending = {t.key for t in unapplied(warehouse, limit=1_000_000)}
    for tombstones in visible(warehouse).values():
        pending |= {t.key for t in tombstones}
    stuck = blocked(lake, warehouse)
    for _reason, keys in stuck.values():
        pending |= keys
    return {
        "deleted": held,
        "deleted_pending": len(pending),
        "deleted_blocked_files": len(stuck),
        "deleted_blocked": [
            {"key": key, "reason": reason, "tombstones": len(keys)}
            for key, (reason, keys) in sorted(stuck.items())
        ],
    }


def pending_count(warehouse: Any) -> int:
    return counts(warehouse)[1]


# ---- read time: the window pipeline ----------------------------------------------------------


def targets_for(warehouse: Any, posts: Sequence[dict[str, Any]]) -> Targets:
    """The tombstones that touch any of `posts` (one small query)."""
    if not posts:
        return Targets()
    ids = sorted({p["post_id"] for p in posts})
    authors = sorted({p["author_id"] for p in posts if p.get("author_id")}) or _NONE
    in_list = warehouse.dialect.in_list_param
    rows = warehouse.query(
        "SELECT DISTINCT deletion_key, post_id, author_id, action, source, learned_at "
        f"FROM deletions WHERE {in_list('post_id')} OR {in_list('author_id')}",
        [ids, authors],
    ).to_pylist()
    return Targets.of(_latest(rows))


def hide_deleted(warehouse: Any, posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`posts` (lake rows) as the tombstones allow them to be seen: deleted posts dropped,
    scrubbed posts without their location. The window pipeline calls this on every window."""
    targets = targets_for(warehouse, posts)
    if not targets:
        return posts
    out = []
    for post in posts:
        if targets.deletes(post["post_id"], post.get("author_id")):
            continue
        if targets.scrubs(post["post_id"], post.get("author_id")):
            post = {**post, "author_location": None}
        out.append(post)
    if len(out) != len(posts):
        log.info("%d deleted post(s) hidden from the window", len(posts) - len(out))
    return out


# ---- physical purge --------------------------------------------------------------------------


def _in_sql(
    warehouse: Any, targets_posts: Iterable[str], targets_authors: Iterable[str]
) -> tuple[str, list[Any]]:
    in_list = warehouse.dialect.in_list_param
    return (
        f"({in_list('post_id')} OR {in_list('author_id')})",
        [sorted(targets_posts) or _NONE, sorted(targets_authors) or _NONE],
    )


def _affected(warehouse: Any, targets: Targets) -> tuple[set[datetime], set[datetime]]:
    """(created_at of every affected post, windows of `posts` they are in)."""
    created: set[datetime] = set()
    windows: set[datetime] = set()
    where, params = _in_sql(
        warehouse,
        targets.delete_posts | targets.scrub_posts,
        targets.delete_authors | targets.scrub_authors,
    )
    for table in POST_TABLES:
        cols = "created_at, window_start" if table == "posts" else "created_at"
        for row in warehouse.query(f"SELECT {cols} FROM {table} WHERE {where}", params).to_pylist():
            if row["created_at"] is not None:
                created.add(row["created_at"])
            if row.get("window_start") is not None:
                windows.add(row["window_start"])
    return created, windows


def _is_streaming_buffer(exc: BaseException) -> bool:
    return "streaming buffer" in str(exc).lower() or type(exc).__name__ == "StreamingBufferError"


def _purge_tables(warehouse: Any, targets: Targets, result: PurgeResult) -> bool:
    """DELETE / scrub in posts_hot and posts; False when BigQuery's streaming buffer refused."""
    ok = True
    delete_where, delete_params = _in_sql(warehouse, targets.delete_posts, targets.delete_authors)
    scrub_where, scrub_params = _in_sql(warehouse, targets.scrub_posts, targets.scrub_authors)
    for table in POST_TABLES:
        try:
            if targets.delete_posts or targets.delete_authors:
                before = _count(warehouse, table, delete_where, delete_params)
                if before:
                    warehouse.query(
                        f"DELETE FROM {table} WHERE {delete_where}", delete_params, read_only=False
                    )
                    result.rows_removed[table] = result.rows_removed.get(table, 0) + before
            if targets.scrub_posts or targets.scrub_authors:
                where = f"{scrub_where} AND author_location IS NOT NULL"
                before = _count(warehouse, table, where, scrub_params)
                if before:
                    warehouse.query(
                        f"UPDATE {table} SET author_location = NULL WHERE {where}",
                        scrub_params,
                        read_only=False,
                    )
                    result.rows_scrubbed[table] = result.rows_scrubbed.get(table, 0) + before
        except Exception as exc:
            if not _is_streaming_buffer(exc):
                raise
            log.warning("%s: rows still in the streaming buffer; a later pass retries", table)
            ok = False
    return ok


def _count(warehouse: Any, table: str, where: str, params: list[Any]) -> int:
    return int(
        warehouse.query(f"SELECT count(*) AS n FROM {table} WHERE {where}", params)
        .column(0)[0]
        .as_py()
    )


def _author_posts(warehouse: Any, authors: Iterable[str]) -> dict[str, Any]:
    """post_id -> created_at of the posts of these authors in posts_hot and posts."""
    found: dict[str, Any] = {}
    if not authors:
        return found
    where = warehouse.dialect.in_list_param("author_id")
    for table in POST_TABLES:
        sql = f"SELECT post_id, created_at FROM {table} WHERE {where}"
        for row in warehouse.query(sql, [sorted(authors)]).to_pylist():
            found[row["post_id"]] = row["created_at"]
    return found


def _candidate_files(
    warehouse: Any, created: set[datetime], since: datetime | None, full_scan: bool
) -> list[str]:
    rows = warehouse.query(
        "SELECT key, min(min_created_at) AS lo, max(max_created_at) AS hi, "
        "max(indexed_at) AS indexed_at FROM lake_files "
        "WHERE key NOT IN (SELECT key FROM lake_quarantine) GROUP BY key ORDER BY key"
    ).to_pylist()

    def wanted(row: dict[str, Any]) -> bool:
        if full_scan or (since is not None and row["indexed_at"] and row["indexed_at"] >= since):
            return True
        return row["lo"] is not None and any(row["lo"] <= c <= row["hi"] for c in created)

    return [row["key"] for row in rows if wanted(row)]


def _scored_files(lake: Lake, created: set[datetime]) -> list[str]:
    """The `scored/` files (the stream's and every re-score version's) in the `created_at` hour
    folders of the affected posts: Spark files a post by that hour, so a purge pass reaches its
    scored copy at once instead of at the daily sweep."""
    if not created:
        return []
    hours = {
        f"/{(c if c.tzinfo else c.replace(tzinfo=UTC)).astimezone(UTC):%Y/%m/%d/%H}/"
        for c in created
    }
    return [
        o.key
        for o in lake.list_objects(SCORED_PREFIX)
        if o.key.endswith(".parquet") and any(h in o.key for h in hours)
    ]


def rewrite_file(
    lake: Lake, key: str, targets: Targets, removed_ids: dict[str, Any] | None = None
) -> tuple[int, int, set[datetime]]:
    """Rewrite one lake file without the deleted posts and with scrubbed locations nulled, in
    one atomic put (readers see the old file or the new one). Returns (removed, scrubbed,
    windows of the rows it changed); (0, 0, ∅) leaves the file untouched. `removed_ids`, when
    given, gains post_id -> created_at of each removed row."""
    table = read_table(lake, key)
    names = table.column_names
    if "post_id" not in names:
        return 0, 0, set()
    post_ids = table.column("post_id")
    authors = table.column("author_id") if "author_id" in names else pa.nulls(table.num_rows)
    post_list, author_list = post_ids.to_pylist(), authors.to_pylist()
    drop = [targets.deletes(p, a) for p, a in zip(post_list, author_list, strict=True)]
    scrub = [
        targets.scrubs(p, a) and not d for p, a, d in zip(post_list, author_list, drop, strict=True)
    ]
    if "author_location" in names:
        locations = table.column("author_location").to_pylist()
        scrub = [s and loc is not None for s, loc in zip(scrub, locations, strict=True)]
    else:
        scrub = [False] * len(scrub)
    removed, scrubbed = sum(drop), sum(scrub)
    if not removed and not scrubbed:
        return 0, 0, set()
    created = table.column("created_at").to_pylist() if "created_at" in names else []
    if removed_ids is not None:
        when = created or [None] * len(post_list)
        removed_ids.update(
            {p: c for p, c, d in zip(post_list, when, drop, strict=True) if d and p is not None}
        )
    windows = {
        window_start(c) for c, d, s in zip(created, drop, scrub, strict=False) if (d or s) and c
    }
    if scrubbed:
        i = names.index("author_location")
        column = table.column(i)
        nulled = pc.if_else(pa.array(scrub), pa.nulls(len(scrub), column.type), column)
        table = table.set_column(i, table.schema.field(i), nulled)
    if removed:
        table = table.filter(pa.array([not d for d in drop]))
    buf = BytesIO()
    pq.write_table(table, buf, compression="snappy")
    lake.put(key, buf.getvalue())
    log.info("lake file %s rewritten: %d post(s) removed, %d scrubbed", key, removed, scrubbed)
    return removed, scrubbed, windows


# ---- quarantined lake files ------------------------------------------------------------------
# A file the windows set aside as unreadable (`lake_quarantine`) may still hold deleted posts.
# Every purge pass with work to do reads it the lenient way (whole file, no column checks) and
# rewrites it without them like any other file (it stays quarantined: it was unusable for the
# windows before and still is). When even that fails, its post ids alone are read: a file with
# none of the deleted posts is fine; one that holds some, or whose ids cannot be read at all,
# blocks the deletion: it is reported (status `deleted_pending` / `deleted_blocked`, the asset
# check) until the file is repaired or replaced and `musicnft deletions redrive` runs.

POST_PREFIXES = (RAW_PREFIX, SCORED_PREFIX)
REDRIVE_HINT = "repair or replace the file, then run `musicnft deletions redrive`"


def quarantined_post_files(warehouse: Any) -> dict[str, str]:
    """key -> quarantine reason of every quarantined raw/ and scored/ file."""
    rows = warehouse.query(
        "SELECT key, min(reason) AS reason FROM lake_quarantine GROUP BY key ORDER BY key"
    ).to_pylist()
    return {r["key"]: r["reason"] or "" for r in rows if r["key"].startswith(POST_PREFIXES)}


def _id_rows(lake: Lake, key: str) -> tuple[list[Any], list[Any]]:
    """(post ids, author ids) of a file, reading those two columns only."""
    path = lake.local_path(key)
    source: Any = str(path) if path is not None else BytesIO(lake.get(key))
    parquet = pq.ParquetFile(source)
    names = parquet.schema_arrow.names
    if "post_id" not in names:
        raise ValueError("no post_id column")
    columns = [c for c in ("post_id", "author_id") if c in names]
    table = parquet.read(columns=columns)
    posts = table.column("post_id").to_pylist()
    authors = table.column("author_id").to_pylist() if "author_id" in columns else []
    return posts, authors or [None] * len(posts)


def _blocking_keys(
    tombstones: Sequence[Tombstone], posts: Sequence[Any], authors: Sequence[Any]
) -> set[str]:
    """The keys of the tombstones (delete or scrub) that name any of these rows."""
    by_post: dict[str, set[str]] = {}
    by_author: dict[str, set[str]] = {}
    for t in tombstones:
        if t.post_id is not None:
            by_post.setdefault(t.post_id, set()).add(t.key)
        else:
            by_author.setdefault(str(t.author_id), set()).add(t.key)
    keys: set[str] = set()
    for post_id, author_id in zip(posts, authors, strict=True):
        keys |= by_post.get(post_id, set()) | by_author.get(author_id, set())
    return keys


def check_quarantined(
    lake: Lake, key: str, why: str, tombstones: Sequence[Tombstone]
) -> tuple[str, set[str]] | None:
    """None when the quarantined file holds none of the tombstoned posts (or is gone); else
    (what stops the deletion, the tombstone keys it blocks: all of them when its ids cannot be
    read, since it may hold any)."""
    try:
        posts, authors = _id_rows(lake, key)
    except FileNotFoundError:
        return None  # removed by hand: nothing left on disk
    except Exception as exc:
        reason = (
            f"quarantined ({why[:200]}) and its post ids cannot be read "
            f"({type(exc).__name__}: {str(exc)[:200]}): it may hold deleted posts; {REDRIVE_HINT}"
        )
        return reason, {t.key for t in tombstones}
    keys = _blocking_keys(tombstones, posts, authors)
    if not keys:
        return None
    reason = (
        f"quarantined ({why[:200]}) and holds post(s) of {len(keys)} tombstone(s) that the "
        f"purge could not rewrite yet; {REDRIVE_HINT}"
    )
    return reason, keys


def blocked(lake: Lake, warehouse: Any) -> dict[str, tuple[str, set[str]]]:
    """key -> (reason, tombstone keys) of every quarantined file that holds, or may hold, a
    post a tombstone names: deletions not applied on disk. Read live (a few small files), so
    a repaired, replaced or removed file stops counting at once."""
    files = quarantined_post_files(warehouse)
    if not files or not _held(warehouse):
        return {}
    tombstones = _all_tombstones(warehouse)
    out: dict[str, tuple[str, set[str]]] = {}
    for key, why in files.items():
        found = check_quarantined(lake, key, why, tombstones)
        if found is not None:
            out[key] = found
    return out


def _all_tombstones(warehouse: Any) -> list[Tombstone]:
    return _latest(
        warehouse.query(
            "SELECT deletion_key, post_id, author_id, action, source, learned_at FROM deletions"
        ).to_pylist()
    )


def _purge_quarantined(
    lake: Lake, warehouse: Any, tombstones: Sequence[Tombstone], result: PurgeResult
) -> set[datetime]:
    """Rewrite the quarantined files that hold tombstoned posts (the lenient read); note the
    ones that cannot be rewritten in `result.files_blocked`. Returns the windows touched."""
    targets = Targets.of(tombstones)
    windows: set[datetime] = set()
    for key, why in quarantined_post_files(warehouse).items():
        try:
            removed, scrubbed, touched = rewrite_file(lake, key, targets)
        except FileNotFoundError:
            continue
        except Exception as exc:
            found = check_quarantined(lake, key, why, tombstones)
            if found is not None:
                log.error(
                    "quarantined lake file %s not purged (%s: %s): %s",
                    key,
                    type(exc).__name__,
                    str(exc)[:200],
                    found[0],
                )
                result.files_blocked[key] = found[0]
            continue
        if removed or scrubbed:
            result.files_rewritten.append(key)
            result.rows_removed["lake"] = result.rows_removed.get("lake", 0) + removed
            result.rows_scrubbed["lake"] = result.rows_scrubbed.get("lake", 0) + scrubbed
            windows |= touched
    return windows


def _mark_applied(
    warehouse: Any, tombstones: Sequence[Tombstone], windows: set[datetime], now: datetime
) -> None:
    rows = []
    for t in tombstones:
        targets: list[datetime | None] = [*sorted(windows)] or [None]
        for w in targets:
            rows.append(t.row() | {"applied_at": now, "window_start": w})
    if rows:
        warehouse.append(TABLE, pa.Table.from_pylist(rows, schema=TABLES[TABLE]))


def apply_deletions(
    lake: Lake,
    warehouse: Any,
    now: datetime | None = None,
    since: datetime | None = None,
    full_scan: bool = False,
    limit: int = 10_000,
    keys: Iterable[str] = (),
) -> PurgeResult:
    """One purge pass: every tombstone not yet applied (and every one whose posts showed up
    again) is applied to posts_hot, posts and the lake; returns the windows to re-materialize.

    Lake files scanned: those whose created_at range holds an affected post the warehouse
    knows, those indexed since `since` (late arrivals: the sensor passes its last tick), or all
    of `raw/` and `scored/` with `full_scan` (the daily sweep); plus `keys` (x-sync names the
    files that hold the posts it learned about, lake-only ones included)."""
    now = now or datetime.now(UTC)
    result = PurgeResult()
    if not _held(warehouse):  # the common case: one tiny query, no joins (BigQuery bills them)
        return result
    todo = {t.key: t for t in unapplied(warehouse, limit)}
    first_time = list(todo.values())
    for tombstones in visible(warehouse).values():
        todo.update({t.key: t for t in tombstones})
    named = set(keys)
    if not todo and not full_scan and since is None and not named:
        return result
    # A file that is rewritten loses every tombstoned post it holds, not only this pass's.
    everything = Targets.of(
        _latest(
            warehouse.query(
                "SELECT deletion_key, post_id, author_id, action, source, learned_at FROM deletions"
            ).to_pylist()
        )
    )
    created: set[datetime] = set()
    windows: set[datetime] = set()
    targets = Targets.of(todo.values())
    if todo or full_scan:
        created, windows = _affected(warehouse, targets if todo else everything)
        windows |= {window_start(c) for c in created}
    if todo:  # posts landing around or after their tombstone are in files indexed since then
        landed = min(t.learned_at for t in todo.values()) - LATE_MARGIN
        since = landed if since is None else min(since, landed)
    # quarantined files are read the lenient way by `_purge_quarantined`, below
    quarantined = set(
        warehouse.query("SELECT DISTINCT key FROM lake_quarantine").column(0).to_pylist()
    )
    keys = sorted(set(_candidate_files(warehouse, created, since, full_scan)) | named)
    if full_scan:
        raw = {o.key for o in lake.list_objects(RAW_PREFIX) if o.key.endswith(".parquet")}
        keys = sorted(set(keys) | raw)

    def purge(key: str, targets: Targets, removed_ids: dict[str, Any] | None = None) -> None:
        nonlocal windows
        try:
            removed, scrubbed, touched = rewrite_file(lake, key, targets, removed_ids)
        except FileNotFoundError:
            return
        except Exception as exc:  # one bad or unreachable file must not stop the others
            log.error("lake file %s not purged: %s: %s", key, type(exc).__name__, str(exc)[:200])
            result.files_failed.append(key)
            return
        if removed or scrubbed:
            result.files_rewritten.append(key)
            result.rows_removed["lake"] = result.rows_removed.get("lake", 0) + removed
            result.rows_scrubbed["lake"] = result.rows_scrubbed.get("lake", 0) + scrubbed
            windows |= touched

    # scored/ files hold no author_id: an author tombstone reaches them through the post ids
    # removed for it, from the tables (read before they are purged below) and from raw/
    author_posts = _author_posts(warehouse, targets.delete_authors) if todo else {}
    for key in keys:
        if key not in quarantined and not key.startswith(SCORED_PREFIX):
            purge(key, everything, author_posts)
    if full_scan:
        scored = [o.key for o in lake.list_objects(SCORED_PREFIX) if o.key.endswith(".parquet")]
    else:
        hours = created | {c for c in author_posts.values() if c is not None}
        scored = _scored_files(lake, hours)
    scored_targets = replace(everything, delete_posts=everything.delete_posts | set(author_posts))
    for key in dict.fromkeys([k for k in keys if k.startswith(SCORED_PREFIX)] + scored):
        if key not in quarantined:
            purge(key, scored_targets)
    if todo or full_scan or named:  # quarantined files too: none is skipped any more
        tombstones = _all_tombstones(warehouse)
        windows |= _purge_quarantined(lake, warehouse, tombstones, result)
    if not todo:  # a sweep of lake copies only: the tables were already clean
        result.windows = sorted(windows)
        return result
    if _purge_tables(warehouse, targets, result) and not result.files_failed:
        if first_time:  # the lake's own record (the hot path's tombstones reach only the table)
            lake.put(deletions_key(now), b"".join(t.to_stream_record() + b"\n" for t in first_time))
        _mark_applied(warehouse, list(todo.values()), windows, now)
        result.applied = len(todo)
    else:
        result.pending = len(todo)
    result.windows = sorted(windows)
    if todo or result.files_rewritten:
        log.info(
            "deletions: %d applied, %d pending (streaming buffer or a lake file), removed %s, "
            "scrubbed %s, "
            "%d lake file(s) rewritten, %d window(s) to re-materialize",
            result.applied,
            result.pending,
            result.rows_removed,
            result.rows_scrubbed,
            len(result.files_rewritten),
            len(result.windows),
        )
    return result


def windows_applied_since(warehouse: Any, since: datetime) -> list[datetime]:
    """Windows a deletion was applied to after `since` (what the sensor asks Dagster to rebuild)."""
    rows = warehouse.query(
        "SELECT DISTINCT window_start FROM deletions "
        "WHERE applied_at > ? AND window_start IS NOT NULL ORDER BY window_start",
        [since],
    ).to_pylist()
    return [r["window_start"] for r in rows]


def tombstones_json(tombstones: Sequence[Tombstone]) -> str:
    return json.dumps([t.to_json() for t in tombstones], indent=2)


MAX_ON_DISK = timedelta(days=1)  # documented bound: the daily full scan (docs/deletions.md)
