"""The batch path for one 15-minute window: lake → posts → aggregates → reconciliation.

Plain functions over the lake and warehouse ports, so Dagster assets, the `musicnft backfill`
command and tests all run the same code. Each step replaces its window's rows (idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from musicnft.batch.aggregates import dedupe_latest, hashtag_counts, location_counts, window_metrics
from musicnft.batch.deletions import hide_deleted
from musicnft.batch.engagement import engagement_24h_by_window, fill_engagement_24h
from musicnft.batch.lake_index import LakeIndex, read_table, unreadable_reason
from musicnft.batch.window_sql import in_windows
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
from musicnft.contract.windows import spans, window_key, window_start
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

    def row(self, checked_at: datetime) -> dict[str, Any]:
        """The window's `reconciliation_15m` row."""
        counts = ("lake_count", "hot_count", "missing", "duplicates", "repaired")
        return {"window_start": self.window, **{k: getattr(self, k) for k in counts}} | {
            "checked_at": checked_at
        }


# A run recomputes its windows this many at a time: one read and one write per step and chunk
# instead of one per window (each warehouse commit or query costs tens of milliseconds whatever
# its size), while the post ids a chunk passes as query parameters stay few enough for BigQuery.
WINDOWS_PER_CHUNK = 24


def chunked(windows: Iterable[datetime], size: int = WINDOWS_PER_CHUNK) -> Iterator[list[datetime]]:
    """The windows, in order, `size` at a time."""
    ordered = sorted(set(windows))
    for i in range(0, len(ordered), size):
        yield ordered[i : i + size]


def _keys(windows: Sequence[datetime]) -> list[str]:
    return [window_key(w) for w in windows]


def build_posts(lake: Lake, warehouse: Any, window: datetime) -> PostsResult:
    """Every post created in the window, from every lake file that touches it, one row per post_id
    (latest ingest wins), enriched with the consumer's code, written as the window's `posts`."""
    return build_posts_windows(lake, warehouse, [window])[0]


def _read_lake_rows(
    lake: Lake, index: LakeIndex, files: dict[datetime, list[str]], windows: list[datetime]
) -> dict[datetime, list[dict[str, Any]]]:
    """The lake rows created in each window, each file read once. A file that is itself bad is
    quarantined and dropped from every window's list; a transient error raises (the run fails
    and is retried)."""
    window_filter = [
        [("created_at", ">=", lo), ("created_at", "<", hi)] for lo, hi in spans(windows)
    ]
    tables = []
    bad: set[str] = set()
    for key in sorted({k for keys in files.values() for k in keys}):
        try:
            tables.append(read_table(lake, key, list(POST_COLUMNS), window_filter))
        except FileNotFoundError:
            log.warning("lake file %s is indexed but gone; skipping it", key)
        except Exception as exc:
            reason = unreadable_reason(exc)
            if reason is None:
                raise  # transient (network, throttling): the run fails and is retried
            # the file itself is bad: set it aside, and the rest of the windows still work
            index.quarantine(key, reason)
            bad.add(key)
    for window in windows:
        files[window] = [k for k in files[window] if k not in bad]
    rows: dict[datetime, list[dict[str, Any]]] = {w: [] for w in windows}
    if tables:
        for row in pa.concat_tables(tables, promote_options="default").to_pylist():
            into = rows.get(window_start(row["created_at"]))
            if into is not None:
                into.append(row)
    return rows


def build_posts_windows(
    lake: Lake, warehouse: Any, windows: Sequence[datetime]
) -> list[PostsResult]:
    """`build_posts` for several windows: each lake file read once, one write of `posts`."""
    chosen = sorted(set(windows))
    if not chosen:
        return []
    index = LakeIndex(warehouse)
    files = index.files_for_windows(chosen)
    raw = _read_lake_rows(lake, index, files, chosen)
    unique = {w: dedupe_latest(raw[w]) for w in chosen}
    # posts deleted at the source, looked up once for all the windows
    visible = hide_deleted(warehouse, [p for w in chosen for p in unique[w]])
    written = datetime.now(UTC)
    rows: dict[datetime, list[dict[str, Any]]] = {w: [] for w in chosen}
    for p in visible:
        window = window_start(p["created_at"])
        rows[window].append(
            with_entities(conform(enrich(p), HOT_FIELDS))
            | {"window_start": window, "inserted_at": written}
        )
    every = [r for w in chosen for r in rows[w]]
    # The trained model's columns, from the promoted model (re-scores rows the hot path left
    # VADER-only when the endpoint was down).
    score_rows(every, PromotedScoring(lake, recheck_seconds=0))
    warehouse.replace_partitions(
        "posts", _keys(chosen), pa.Table.from_pylist(every, schema=POSTS_SCHEMA)
    )
    return [
        PostsResult(
            w,
            len(rows[w]),
            len(raw[w]),
            files[w],
            [
                {k: r[k] for k in ("post_id", "author_handle", "sentiment_label", "text")}
                for r in rows[w][:5]
            ],
        )
        for w in chosen
    ]


def window_posts(warehouse: Any, window: datetime) -> list[dict[str, Any]]:
    return window_posts_by_window(warehouse, [window])[window]


def window_posts_by_window(
    warehouse: Any, windows: Sequence[datetime]
) -> dict[datetime, list[dict[str, Any]]]:
    """Each window's `posts` rows (ordered by created_at, post_id), in one query."""
    found: dict[datetime, list[dict[str, Any]]] = {w: [] for w in windows}
    if not windows:
        return found
    condition, params = in_windows(windows)
    rows = warehouse.query(
        f"SELECT * FROM posts WHERE {condition} ORDER BY created_at, post_id", params
    ).to_pylist()
    for row in rows:
        found[row["window_start"]].append(row)
    return found


AGGREGATE_TABLES = ("window_metrics_15m", "hashtag_counts_15m", "location_counts_15m")


def build_aggregate(
    warehouse: Any,
    table: str,
    window: datetime,
    keywords: list[str],
    now: datetime | None = None,
) -> int:
    """Replace one aggregate table's rows for the window, from the window's `posts`."""
    return build_aggregates(warehouse, table, [window], keywords, now)[window]


def build_aggregates(
    warehouse: Any,
    table: str,
    windows: Sequence[datetime],
    keywords: list[str],
    now: datetime | None = None,
) -> dict[datetime, int]:
    """`build_aggregate` for several windows: one read of their `posts`, one write.
    Returns window -> rows written."""
    if table not in AGGREGATE_TABLES:
        raise ValueError(f"not an aggregate table: {table!r}")
    chosen = sorted(set(windows))
    if not chosen:
        return {}
    now = now or datetime.now(UTC)
    posts = window_posts_by_window(warehouse, chosen)
    at_24h = engagement_24h_by_window(warehouse, chosen) if table == "window_metrics_15m" else {}
    rows: dict[datetime, list[dict[str, Any]]] = {}
    for window in chosen:
        if table == "window_metrics_15m":
            rows[window] = window_metrics(posts[window], window, keywords, now)
            # engagement re-read at +24 h, for posts already that old (issue 18 item 4)
            fill_engagement_24h(posts[window], rows[window], at_24h[window])
        elif table == "hashtag_counts_15m":
            rows[window] = hashtag_counts(posts[window], window)
        else:
            rows[window] = location_counts(posts[window], window)
    schema = {
        "window_metrics_15m": WINDOW_METRICS_SCHEMA,
        "hashtag_counts_15m": HASHTAG_COUNTS_SCHEMA,
        "location_counts_15m": LOCATION_COUNTS_SCHEMA,
    }[table]
    every = [r for w in chosen for r in rows[w]]
    warehouse.replace_partitions(table, _keys(chosen), pa.Table.from_pylist(every, schema=schema))
    return {w: len(rows[w]) for w in chosen}


def _hot_counts_by_window(
    warehouse: Any, windows: Sequence[datetime], truth: dict[datetime, dict[str, Any]]
) -> dict[datetime, dict[str, int]]:
    """For each window: rows per post_id in posts_hot for the window's lake posts (wherever the
    hot path filed them) and for posts it filed under this window. One query for all."""
    ids = sorted({pid for w in windows for pid in truth[w]})
    created, params = in_windows(windows, "created_at")  # never the days between windows
    result = warehouse.query(
        "SELECT post_id, created_at, count(*) AS n FROM posts_hot "
        f"WHERE {warehouse.dialect.in_list_param('post_id')} OR {created} "
        "GROUP BY post_id, created_at",
        [ids, *params],
    ).to_pylist()
    rows_of: dict[str, int] = {}  # every row of a post (a lake post's count, wherever filed)
    filed: dict[datetime, dict[str, int]] = {w: {} for w in windows}  # rows filed per window
    for r in result:
        rows_of[r["post_id"]] = rows_of.get(r["post_id"], 0) + r["n"]
        created = r["created_at"]
        if created is not None and (window := window_start(created)) in filed:
            filed[window][r["post_id"]] = filed[window].get(r["post_id"], 0) + r["n"]
    counts: dict[datetime, dict[str, int]] = {}
    for w in windows:
        counts[w] = dict(filed[w])
        for pid in truth[w]:
            if pid in rows_of:
                counts[w][pid] = rows_of[pid]
    return counts


def reconcile(
    warehouse: Any, window: datetime, now: datetime | None = None
) -> ReconciliationResult:
    """Compare the lake's truth (`posts`) with `posts_hot` for the window and repair `posts_hot`:
    insert what the hot path missed, remove what it wrote twice."""
    return reconcile_windows(warehouse, [window], now)[0]


def reconcile_windows(
    warehouse: Any, windows: Sequence[datetime], now: datetime | None = None
) -> list[ReconciliationResult]:
    """`reconcile` for several windows: one read of each side, one repair, one write."""
    chosen = sorted(set(windows))
    if not chosen:
        return []
    now = now or datetime.now(UTC)
    truth = {
        w: {r["post_id"]: r for r in rows}
        for w, rows in window_posts_by_window(warehouse, chosen).items()
    }
    hot = _hot_counts_by_window(warehouse, chosen, truth)
    missing = {w: [pid for pid in truth[w] if pid not in hot[w]] for w in chosen}
    duplicated = sorted({pid for w in chosen for pid, n in hot[w].items() if n > 1})
    inserted: dict[datetime, int] = dict.fromkeys(chosen, 0)
    all_missing = [(w, pid) for w in chosen for pid in missing[w]]
    if all_missing:
        # Recorded first: a consumer that is merely behind (its records still on the stream)
        # skips these ids when it gets to them, instead of inserting them a second time.
        warehouse.append(
            "posts_hot_repairs",
            pa.Table.from_pylist(
                [{"post_id": pid, "window_start": w, "repaired_at": now} for w, pid in all_missing],
                schema=TABLES["posts_hot_repairs"],
            ),
        )
    for w in chosen:
        if missing[w]:  # rare once the hot path runs: a write only for windows that need one
            # entities too: a repaired row stands in for the hot path's, which tags them
            rows = [
                {k: truth[w][pid][k] for k in (*ENRICHED_COLUMNS, "entities")} for pid in missing[w]
            ]
            inserted[w] = warehouse.insert_rows("posts_hot", rows, missing[w]).inserted
    excess = {w: sum(n - 1 for n in hot[w].values() if n > 1) for w in chosen}
    deferred = False
    try:
        removed_left = warehouse.remove_duplicates("posts_hot", "post_id", duplicated)
    except StreamingBufferError as exc:
        log.warning(
            "windows %s to %s: %s; a later run removes them",
            window_key(chosen[0]),
            window_key(chosen[-1]),
            exc,
        )
        removed_left, deferred = 0, True
    after = _hot_counts_by_window(warehouse, chosen, truth)
    results = []
    for w in chosen:
        removed = min(removed_left, excess[w])  # one DELETE for all: each window its share
        removed_left -= removed
        r = ReconciliationResult(
            window=w,
            lake_count=len(truth[w]),
            hot_count=sum(hot[w].values()),
            missing=len(missing[w]),
            duplicates=excess[w],
            repaired=inserted[w] + removed,
            hot_only=sum(1 for pid in hot[w] if pid not in truth[w]),
            after_missing=sum(1 for pid in truth[w] if pid not in after[w]),
            after_duplicates=sum(n - 1 for n in after[w].values() if n > 1),
        )
        if deferred:
            r.deferred_duplicates = r.after_duplicates
        results.append(r)
    warehouse.replace_partitions(
        "reconciliation_15m",
        _keys(chosen),
        pa.Table.from_pylist([r.row(now) for r in results], schema=RECONCILIATION_SCHEMA),
    )
    return results


def check_posts_unique(warehouse: Any, window: datetime) -> tuple[bool, int]:
    """(passed, duplicate rows) for `post_id` in the window's `posts`."""
    dups = duplicate_post_rows(warehouse, [window])[window]
    return dups == 0, dups


def duplicate_post_rows(warehouse: Any, windows: Sequence[datetime]) -> dict[datetime, int]:
    """window -> rows of its `posts` beyond one per `post_id`, in one query."""
    found = dict.fromkeys(windows, 0)
    if not windows:
        return found
    condition, params = in_windows(windows)
    rows = warehouse.query(
        "SELECT window_start, count(*) - count(DISTINCT post_id) AS d FROM posts "
        f"WHERE {condition} GROUP BY window_start",
        params,
    ).to_pylist()
    for row in rows:
        found[row["window_start"]] = int(row["d"])
    return found


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
    return check_posts_schemas(warehouse, [window])[window]


def check_posts_schemas(
    warehouse: Any, windows: Sequence[datetime]
) -> dict[datetime, tuple[bool, list[str]]]:
    """`check_posts_schema` for several windows, in one read."""
    keys = {w: window_key(w) for w in windows}
    stored = warehouse.partition_schemas("posts", list(keys.values())) if keys else {}
    return {w: _schema_check(stored[key]) for w, key in keys.items()}


def _schema_check(stored: pa.Schema | None) -> tuple[bool, list[str]]:
    if stored is None:
        return False, ["the window has no posts partition"]
    got = [(f.name, _type_key(f.type)) for f in stored]
    want = [(f.name, _type_key(f.type)) for f in POSTS_SCHEMA]
    diffs = [f"{g} != {w}" for g, w in zip(got, want, strict=False) if g != w]
    if len(got) != len(want):
        diffs.append(f"{len(got)} columns, expected {len(want)}")
    return not diffs, diffs
