"""`musicnft forget` and `musicnft compliance x-sync`: learn deletions, record them, apply them.

Both end in the same two idempotent steps of `musicnft.batch.deletions`: record the tombstones not
yet known (the `deletions` table and the lake's `deletions/`), then one purge pass (posts_hot,
posts, lake files; BigQuery streaming-buffer rows stay pending for a later pass). The windows whose
aggregates counted the deleted posts are re-materialized by Dagster's deletions sensor, or at once
in this process with `--rebuild`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from musicnft.adapters.x_compliance import ComplianceApi, run_job, tombstones_from
from musicnft.batch import deletions
from musicnft.contract.lake_layout import RAW_PREFIX
from musicnft.contract.tombstone import Tombstone, TombstoneError, post_id_from_source
from musicnft.ports import Lake

log = logging.getLogger("musicnft.deletions")


@dataclass
class ForgetReport:
    tombstones: list[Tombstone] = field(default_factory=list)
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    recorded: int = 0
    purge: deletions.PurgeResult | None = None
    unknown_actions: list[dict[str, Any]] = field(default_factory=list)
    jobs: dict[str, str] = field(default_factory=dict)  # kind -> job id
    # x-sync: kind -> {source: ids found there, "total": distinct ids sent}; sources posts_hot,
    # posts, lake (raw/ files), and lake files it could not read (`lake_unreadable`)
    sources: dict[str, dict[str, int]] = field(default_factory=dict)


def read_ids(
    path: Path, action: str, learned_at: datetime
) -> tuple[list[Tombstone], list[tuple[int, str]]]:
    """Tombstones for an ids file (one post id a line, `x:`/`bsky:` prefix optional; blank lines
    and `#` comments skipped) and the lines that are not post ids (line number, reason)."""
    tombstones: list[Tombstone] = []
    bad: list[tuple[int, str]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            post_id = post_id_from_source(text)
            tombstones.append(Tombstone(post_id, None, action, "manual", learned_at))
        except TombstoneError as exc:
            log.error("%s line %d: %s; skipped", path, n, exc)
            bad.append((n, str(exc)))
    return tombstones, bad


def record_and_apply(
    lake: Lake,
    warehouse: Any,
    tombstones: list[Tombstone],
    rebuild: Callable[[list[datetime]], Any] | None = None,
    keys: Iterable[str] = (),
) -> tuple[int, deletions.PurgeResult]:
    recorded = deletions.record_tombstones(warehouse, lake, tombstones)
    result = deletions.apply_deletions(lake, warehouse, keys=keys)
    if rebuild is not None and result.windows:
        rebuild(sorted(result.windows))
    return recorded, result


def forget(
    path: Path,
    action: str,
    lake: Lake,
    warehouse: Any,
    dry_run: bool = False,
    rebuild: Callable[[list[datetime]], Any] | None = None,
) -> ForgetReport:
    report = ForgetReport()
    report.tombstones, report.bad_lines = read_ids(path, action, datetime.now(UTC))
    if dry_run or not report.tombstones:
        return report
    report.recorded, report.purge = record_and_apply(lake, warehouse, report.tombstones, rebuild)
    return report


def _table_x_ids(warehouse: Any, table: str) -> tuple[set[str], set[str]]:
    rows = warehouse.query(
        f"SELECT DISTINCT post_id, author_id FROM {table} WHERE platform = 'x'"
    ).to_pylist()
    posts = {r["post_id"].removeprefix("x:") for r in rows if r["post_id"]}
    users = {r["author_id"] for r in rows if r["author_id"]}
    return posts, users


def stored_x_ids(warehouse: Any) -> tuple[list[str], list[str]]:
    """(X post ids, X user ids) the warehouse holds, as X writes them (no prefix)."""
    posts: set[str] = set()
    users: set[str] = set()
    for table in deletions.POST_TABLES:
        p, u = _table_x_ids(warehouse, table)
        posts |= p
        users |= u
    return sorted(posts), sorted(users)


_ID_COLUMNS = ("platform", "post_id", "author_id")


def _id_columns(lake: Lake, key: str) -> Any:
    """Only the id columns of one lake file: column chunks read from a local file, or the
    object fetched whole from S3 (the Lake port has no ranged read) and only those decoded."""
    import pyarrow.parquet as pq

    path = lake.local_path(key)
    source: Any = str(path) if path is not None else BytesIO(lake.get(key))
    parquet = pq.ParquetFile(source)
    names = [c for c in _ID_COLUMNS if c in parquet.schema_arrow.names]
    return parquet.read(columns=names)


@dataclass
class LakeIds:
    """The X ids in the lake's raw/ files, and which file holds which (to purge them there)."""

    posts: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    files: dict[str, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)

    def keys_holding(self, tombstones: Iterable[Tombstone]) -> list[str]:
        """The files holding a post (or a post of an author) the tombstones name."""
        posts = {t.post_id.removeprefix("x:") for t in tombstones if t.post_id}
        users = {t.author_id for t in tombstones if t.author_id}
        return sorted(k for k, (p, u) in self.files.items() if p & posts or u & users)


def lake_x_ids(lake: Lake) -> LakeIds:
    """The X post ids and user ids in the lake's raw/ Parquet files, reading only their id
    columns: posts only the lake holds (older than the warehouse keeps, or not yet loaded) are
    asked about too. An unreadable file is logged and named, never fatal."""
    found = LakeIds()
    for obj in lake.list_objects(RAW_PREFIX):
        if not obj.key.endswith(".parquet"):
            continue
        try:
            table = _id_columns(lake, obj.key)
        except FileNotFoundError:
            continue
        except Exception as exc:  # a corrupt file must not stop the sync; it is reported
            log.error("x-sync: lake file %s not read: %s: %s", obj.key, type(exc).__name__, exc)
            found.unreadable.append(obj.key)
            continue
        if "post_id" not in table.column_names:
            continue
        ids = table.column("post_id").to_pylist()
        names = table.column_names
        platforms = (
            table.column("platform").to_pylist() if "platform" in names else [None] * len(ids)
        )
        authors = (
            table.column("author_id").to_pylist() if "author_id" in names else [None] * len(ids)
        )
        posts: set[str] = set()
        users: set[str] = set()
        for post_id, platform, author in zip(ids, platforms, authors, strict=True):
            if not isinstance(post_id, str) or not (
                platform == "x" or (platform is None and post_id.startswith("x:"))
            ):
                continue
            posts.add(post_id.removeprefix("x:"))
            if author:
                users.add(str(author))
        if posts:
            found.files[obj.key] = (frozenset(posts), frozenset(users))
            found.posts |= posts
            found.users |= users
    return found


def gather_x_ids(
    lake: Lake, warehouse: Any
) -> tuple[list[str], list[str], dict[str, dict[str, int]], LakeIds]:
    """(X post ids, X user ids, counts per source, the lake's ids by file) over posts_hot, posts
    and the lake's raw/ files, deduplicated: every X id we store anywhere, asked about once."""
    posts: set[str] = set()
    users: set[str] = set()
    sources: dict[str, dict[str, int]] = {"tweets": {}, "users": {}}
    for table in deletions.POST_TABLES:
        p, u = _table_x_ids(warehouse, table)
        sources["tweets"][table], sources["users"][table] = len(p), len(u)
        posts |= p
        users |= u
    in_lake = lake_x_ids(lake)
    p, u, unreadable = in_lake.posts, in_lake.users, in_lake.unreadable
    sources["tweets"]["lake"], sources["users"]["lake"] = len(p), len(u)
    sources["tweets"]["lake_only"] = len(p - posts)
    sources["users"]["lake_only"] = len(u - users)
    posts |= p
    users |= u
    for kind, ids in (("tweets", posts), ("users", users)):
        sources[kind]["lake_unreadable"] = len(unreadable)
        sources[kind]["total"] = len(ids)
    return sorted(posts), sorted(users), sources, in_lake


def x_sync(
    api: ComplianceApi,
    lake: Lake,
    warehouse: Any,
    dry_run: bool = False,
    kinds: Iterable[str] = ("tweets", "users"),
    poll_seconds: float = 10.0,
    timeout_seconds: float = 3600.0,
    rebuild: Callable[[list[datetime]], Any] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> ForgetReport:
    """One compliance job per type over every X id we store (posts_hot, posts and the lake's
    raw/ files: one upload file per job, whatever the count), then record and apply the
    results."""
    report = ForgetReport()
    post_ids, user_ids, report.sources, in_lake = gather_x_ids(lake, warehouse)
    for kind, counts in report.sources.items():
        log.info("x-sync %s ids: %s", kind, counts)
    learned = datetime.now(UTC)
    for kind in kinds:
        ids = post_ids if kind == "tweets" else user_ids
        if not ids:
            log.info("no stored X %s: no %s job", kind, kind)
            continue
        outcome = run_job(
            api,
            kind,
            ids,
            f"musicnft-{kind}-{learned:%Y%m%dT%H%M%SZ}",
            poll_seconds=poll_seconds,
            timeout_seconds=timeout_seconds,
            sleep=sleep or time.sleep,
        )
        report.jobs[kind] = outcome.job_id
        tombstones, unknown = tombstones_from(kind, outcome.results, learned)
        report.tombstones += tombstones
        report.unknown_actions += unknown
    if not dry_run and report.tombstones:
        # the lake files holding the named posts, however old: the purge pass's own choice
        # (files by the warehouse's created_at, files indexed lately) misses lake-only posts
        report.recorded, report.purge = record_and_apply(
            lake,
            warehouse,
            report.tombstones,
            rebuild,
            keys=in_lake.keys_holding(report.tombstones),
        )
    return report


@dataclass
class RedriveReport:
    """`musicnft deletions redrive`: quarantined files put back in play, and what still blocks."""

    released: list[str] = field(default_factory=list)
    still_quarantined: dict[str, str] = field(default_factory=dict)  # key -> why (quarantine)
    blocked: dict[str, str] = field(default_factory=dict)  # key -> why a deletion waits on it
    unknown: list[str] = field(default_factory=list)  # named keys that are not quarantined
    purge: deletions.PurgeResult | None = None
    windows: list[datetime] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.blocked and not self.unknown


def _release(lake: Lake, warehouse: Any, key: str) -> list[datetime]:
    """Take a repaired file out of quarantine and index it; returns the windows it touches
    (its posts now count in them)."""
    from musicnft.batch.lake_index import LakeIndex, read_file_stats
    from musicnft.contract.windows import WINDOW, window_start

    warehouse.query("DELETE FROM lake_quarantine WHERE key = ?", [key], read_only=False)
    obj = next((o for o in lake.list_objects(key) if o.key == key), None)
    if obj is None:
        return []
    index = LakeIndex(warehouse)
    stats = read_file_stats(lake, obj)
    if key not in index.known_keys():
        index.record([stats])
    if stats.min_created_at is None or stats.max_created_at is None:
        return []
    windows, at = [], window_start(stats.min_created_at)
    while at <= stats.max_created_at:
        windows.append(at)
        at += WINDOW
    return windows


def redrive_quarantined(
    lake: Lake,
    warehouse: Any,
    keys: Iterable[str] = (),
    rebuild: Callable[[list[datetime]], Any] | None = None,
) -> RedriveReport:
    """Re-read the quarantined raw/ and scored/ files (or those named): a file the windows can
    read again (repaired or replaced by hand, or re-delivered) leaves quarantine and is indexed;
    then one purge pass rewrites it (and every quarantined file it can read) without the deleted
    posts. What still cannot be purged is reported with its reason."""
    from musicnft.batch.lake_index import read_table
    from musicnft.contract.schema import POST_COLUMNS

    report = RedriveReport()
    quarantined = deletions.quarantined_post_files(warehouse)
    named = list(keys)
    report.unknown = [k for k in named if k not in quarantined]
    todo = {k: v for k, v in quarantined.items() if not named or k in named}
    windows: set[datetime] = set()
    for key, why in todo.items():
        columns = list(POST_COLUMNS) if key.startswith(RAW_PREFIX) else None
        try:
            read_table(lake, key, columns)
        except FileNotFoundError:
            log.info("quarantined file %s is gone; released", key)
        except Exception as exc:
            log.warning(
                "quarantined file %s still unreadable: %s: %s", key, type(exc).__name__, exc
            )
            report.still_quarantined[key] = why
            continue
        windows |= set(_release(lake, warehouse, key))
        report.released.append(key)
    # naming the quarantined files makes it a pass with work, which reads them all
    report.purge = deletions.apply_deletions(lake, warehouse, keys=[*report.released, *todo])
    report.blocked = {
        k: reason for k, (reason, _keys) in deletions.blocked(lake, warehouse).items()
    }
    report.windows = sorted(windows | set(report.purge.windows))
    if rebuild is not None and report.windows:
        rebuild(report.windows)
    return report
