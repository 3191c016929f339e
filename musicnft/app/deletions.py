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
from pathlib import Path
from typing import Any

from musicnft.adapters.x_compliance import ComplianceApi, run_job, tombstones_from
from musicnft.batch import deletions
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
    rebuild: Callable[[datetime], Any] | None = None,
) -> tuple[int, deletions.PurgeResult]:
    recorded = deletions.record_tombstones(warehouse, lake, tombstones)
    result = deletions.apply_deletions(lake, warehouse)
    if rebuild is not None:
        for window in result.windows:
            rebuild(window)
    return recorded, result


def forget(
    path: Path,
    action: str,
    lake: Lake,
    warehouse: Any,
    dry_run: bool = False,
    rebuild: Callable[[datetime], Any] | None = None,
) -> ForgetReport:
    report = ForgetReport()
    report.tombstones, report.bad_lines = read_ids(path, action, datetime.now(UTC))
    if dry_run or not report.tombstones:
        return report
    report.recorded, report.purge = record_and_apply(lake, warehouse, report.tombstones, rebuild)
    return report


def stored_x_ids(warehouse: Any) -> tuple[list[str], list[str]]:
    """(X post ids, X user ids) the warehouse holds, as X writes them (no prefix)."""
    posts: set[str] = set()
    users: set[str] = set()
    for table in deletions.POST_TABLES:
        rows = warehouse.query(
            f"SELECT DISTINCT post_id, author_id FROM {table} WHERE platform = 'x'"
        ).to_pylist()
        posts |= {r["post_id"].removeprefix("x:") for r in rows if r["post_id"]}
        users |= {r["author_id"] for r in rows if r["author_id"]}
    return sorted(posts), sorted(users)


def x_sync(
    api: ComplianceApi,
    lake: Lake,
    warehouse: Any,
    dry_run: bool = False,
    kinds: Iterable[str] = ("tweets", "users"),
    poll_seconds: float = 10.0,
    timeout_seconds: float = 3600.0,
    rebuild: Callable[[datetime], Any] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> ForgetReport:
    """One compliance job per type over what we store, then record and apply the results."""
    report = ForgetReport()
    post_ids, user_ids = stored_x_ids(warehouse)
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
        report.recorded, report.purge = record_and_apply(
            lake, warehouse, report.tombstones, rebuild
        )
    return report
