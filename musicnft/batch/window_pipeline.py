"""The batch path for one 15-minute window: lake → posts → aggregates → reconciliation.

Plain functions over the lake and warehouse ports, so Dagster assets, the `musicnft backfill`
command and tests all run the same code. Each step replaces its window's rows (idempotent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from musicnft.batch.aggregates import dedupe_latest, hashtag_counts, location_counts, window_metrics
from musicnft.batch.deletions import hide_deleted
from musicnft.batch.engagement import with_engagement_24h
from musicnft.batch.lake_index import LakeIndex, read_table, unreadable_reason
from musicnft.contract.schema import ENRICHED_COLUMNS, HOT_FIELDS, POST_COLUMNS, conform
from musicnft.contract.tables import (
    HASHTAG_COUNTS_SCHEMA,
    LOCATION_COUNTS_SCHEMA,
    POSTS_SCHEMA,
    RECONCILIATION_SCHEMA,
    TABLES,
    WINDOW_METRICS_SCHEMA,
    WINDOWED_TABLES,
)
from musicnft.contract.windows import WINDOW, window_key
from musicnft.hotpath.enrich import enrich
from musicnft.hotpath.entities import with_entities
from musicnft.hotpath.model_scoring import PromotedScoring, score_rows
from musicnft.ports import Lake, StreamingBufferError

log = logging.getLogger("musicnft.windows")


@dataclass
class PostsResult:
    window: datetime
    unique_posts: int
    lake_rows: int
    files_read: list[str]
    preview: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duplicates_in_lake(self) -> int:
        return self.lake_rows - self.unique_posts


@dataclass
class ReconciliationResult:
    window: datetime
    lake_count: int
    hot_count: int
    missing: int
    duplicates: int
    repaired: int
    hot_only: int
    after_missing: int
    after_duplicates: int
    # Duplicates the warehouse could not remove yet (BigQuery's streaming buffer); `posts`
    # holds each post once regardless, and a later run of the window removes them.
    deferred_duplicates: int = 0

    @property
    def reconciled(self) -> bool:
        return self.after_missing == 0 and self.after_duplicates == 0


def build_posts(lake: Lake, warehouse: Any, window: datetime) -> PostsResult:
    """Every post created in the window, from every lake file touching it, one row per post_id
    (latest ingest wins), enriched with the consumer's code, written as the window's `posts`."""
    end = window + WINDOW
    index = LakeIndex(warehouse)
    files = index.files_for_window(window)
    window_filter = [("created_at", ">=", window), ("created_at", "<", end)]
    tables = []
    for key in list(files):
        try:
            tables.append(read_table(lake, key, list(POST_COLUMNS), window_filter))
        except FileNotFoundError:
            log.warning("lake file %s is indexed but gone; skipping it", key)
        except Exception as exc:
            reason = unreadable_reason(exc)
            if reason is None:
                raise  # transient (network, throttling): the run fails and is retried
            # the file itself is bad: set it aside, and the rest of the window still works
            index.quarantine(key, reason)
            files.remove(key)
    raw = pa.concat_tables(tables, promote_options="default").to_pylist() if tables else []
    unique = hide_deleted(warehouse, dedupe_latest(raw))  # posts deleted at the source
    written = datetime.now(UTC)
    rows = [
        with_entities(conform(enrich(p), HOT_FIELDS))
        | {"window_start": window, "inserted_at": written}
        for p in unique
    ]
    # The trained model's columns, from the promoted model (re-scores rows the hot path left
    # VADER-only when the endpoint was down).
    score_rows(rows, PromotedScoring(lake, recheck_seconds=0))
    warehouse.replace_partition(
        "posts", window_key(window), pa.Table.from_pylist(rows, schema=POSTS_SCHEMA)
    )
    preview = [
        {k: r[k] for k in ("post_id", "author_handle", "sentiment_label", "text")} for r in rows[:5]
    ]
    return PostsResult(window, len(rows), len(raw), files, preview)


def window_posts(warehouse: Any, window: datetime) -> list[dict[str, Any]]:
    return warehouse.query(
        "SELECT * FROM posts WHERE window_start = ? ORDER BY created_at, post_id", [window]
    ).to_pylist()


AGGREGATE_TABLES = ("window_metrics_15m", "hashtag_counts_15m", "location_counts_15m")


def build_aggregate(
    warehouse: Any,
    table: str,
    window: datetime,
    keywords: list[str],
    now: datetime | None = None,
) -> int:
    """Replace one aggregate table's rows for the window, from the window's `posts`."""
    now = now or datetime.now(UTC)
    posts = window_posts(warehouse, window)
    if table == "window_metrics_15m":
        rows, schema = window_metrics(posts, window, keywords, now), WINDOW_METRICS_SCHEMA
        # engagement re-read at +24 h, for posts already that old (issue 18 item 4)
        with_engagement_24h(warehouse, window, posts, rows)
    elif table == "hashtag_counts_15m":
        rows, schema = hashtag_counts(posts, window), HASHTAG_COUNTS_SCHEMA
    elif table == "location_counts_15m":
        rows, schema = location_counts(posts, window), LOCATION_COUNTS_SCHEMA
    else:
        raise ValueError(f"not an aggregate table: {table!r}")
    warehouse.replace_partition(
        table, window_key(window), pa.Table.from_pylist(rows, schema=schema)
    )
    return len(rows)


def _hot_counts(warehouse: Any, window: datetime, lake_ids: list[str]) -> dict[str, int]:
    """Rows per post_id in posts_hot for the window's lake posts (wherever the hot path filed
    them) and for posts it filed under this window."""
    result = warehouse.query(
        "SELECT post_id, count(*) AS n FROM posts_hot "
        f"WHERE {warehouse.dialect.in_list_param('post_id')} "
        "OR (created_at >= ? AND created_at < ?) "
        "GROUP BY post_id",
        [lake_ids, window, window + WINDOW],
    )
    return dict(zip(result.column(0).to_pylist(), result.column(1).to_pylist(), strict=True))


def reconcile(
    warehouse: Any, window: datetime, now: datetime | None = None
) -> ReconciliationResult:
    """Compare the lake's truth (`posts`) with `posts_hot` for the window and repair `posts_hot`:
    insert what the hot path missed, remove what it wrote twice."""
    now = now or datetime.now(UTC)
    truth = {r["post_id"]: r for r in window_posts(warehouse, window)}
    hot = _hot_counts(warehouse, window, list(truth))
    missing = [pid for pid in truth if pid not in hot]
    duplicated = [pid for pid, n in hot.items() if n > 1]
    duplicates = sum(hot[pid] - 1 for pid in duplicated)
    inserted = 0
    if missing:
        # entities too: a repaired row stands in for the hot path's, which tags them
        rows = [{k: truth[pid][k] for k in (*ENRICHED_COLUMNS, "entities")} for pid in missing]
        # Recorded first: a consumer that is merely behind (its records still on the stream)
        # skips these ids when it gets to them, instead of inserting them a second time.
        warehouse.append(
            "posts_hot_repairs",
            pa.Table.from_pylist(
                [{"post_id": pid, "window_start": window, "repaired_at": now} for pid in missing],
                schema=TABLES["posts_hot_repairs"],
            ),
        )
        inserted = warehouse.insert_rows("posts_hot", rows, missing).inserted
    deferred = False
    try:
        removed = warehouse.remove_duplicates("posts_hot", "post_id", duplicated)
    except StreamingBufferError as exc:
        log.warning("window %s: %s; a later run removes them", window.isoformat(), exc)
        removed, deferred = 0, True
    after = _hot_counts(warehouse, window, list(truth))
    result = ReconciliationResult(
        window=window,
        lake_count=len(truth),
        hot_count=sum(hot.values()),
        missing=len(missing),
        duplicates=duplicates,
        repaired=inserted + removed,
        hot_only=sum(1 for pid in hot if pid not in truth),
        after_missing=sum(1 for pid in truth if pid not in after),
        after_duplicates=sum(n - 1 for n in after.values() if n > 1),
    )
    if deferred:
        result.deferred_duplicates = result.after_duplicates
    row = {
        "window_start": window,
        "lake_count": result.lake_count,
        "hot_count": result.hot_count,
        "missing": result.missing,
        "duplicates": result.duplicates,
        "repaired": result.repaired,
        "checked_at": now,
    }
    warehouse.replace_partition(
        "reconciliation_15m",
        window_key(window),
        pa.Table.from_pylist([row], schema=RECONCILIATION_SCHEMA),
    )
    return result


def check_posts_unique(warehouse: Any, window: datetime) -> tuple[bool, int]:
    """(passed, duplicate rows) for `post_id` in the window's `posts`."""
    row = (
        warehouse.query(
            "SELECT count(*) - count(DISTINCT post_id) FROM posts WHERE window_start = ?", [window]
        )
        .column(0)[0]
        .as_py()
    )
    return row == 0, int(row)


def compact_windowed_tables(warehouse: Any, min_files: int = 96) -> dict[str, int]:
    """Merge the small files window writes leave, so dashboards over weeks of windows read a
    handful of files instead of thousands (the warehouse's own merge; safe at any time)."""
    merged = {t: warehouse.compact_windows(t, min_files) for t in WINDOWED_TABLES}
    return {t: n for t, n in merged.items() if n}


def _type_key(t: pa.DataType) -> str:
    """A type's identity for the contract: list item names, UTC spellings and integer widths
    (BigQuery stores every integer as INT64) don't matter."""
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_list(t):
        return f"list<{_type_key(t.value_type)}>"
    if pa.types.is_timestamp(t):
        tz = "UTC" if t.tz in ("UTC", "Etc/UTC", "+00:00") else t.tz
        return f"timestamp[{t.unit}, {tz}]"
    return str(t)


def check_posts_schema(warehouse: Any, window: datetime) -> tuple[bool, list[str]]:
    """(passed, differences) between the window's stored `posts` and the v1 contract."""
    stored = warehouse.partition_schema("posts", window_key(window))
    if stored is None:
        return False, ["the window has no posts partition"]
    got = [(f.name, _type_key(f.type)) for f in stored]
    want = [(f.name, _type_key(f.type)) for f in POSTS_SCHEMA]
    diffs = [f"{g} != {w}" for g, w in zip(got, want, strict=False) if g != w]
    if len(got) != len(want):
        diffs.append(f"{len(got)} columns, expected {len(want)}")
    return not diffs, diffs
