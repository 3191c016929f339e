"""The windowed assets: posts → aggregates and reconciliation.

Partitioned by UTC day (`DAYS`); each run recomputes the 15-minute windows its tags select
(`musicnft_dagster.windows`), each window with the core's per-window pipeline
(`musicnft.batch.window_pipeline`). A backfill runs up to `DAYS_PER_BACKFILL_RUN` days per run.
"""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa

from musicnft.batch import window_pipeline as wp
from musicnft.contract.tables import (
    HASHTAG_COUNTS_SCHEMA,
    LOCATION_COUNTS_SCHEMA,
    POSTS_SCHEMA,
    RECONCILIATION_SCHEMA,
    WINDOW_METRICS_SCHEMA,
)
from musicnft.contract.windows import window_key
from musicnft.settings import Settings
from musicnft_dagster.jobs import WINDOW_GROUP
from musicnft_dagster.partitions import DAYS, WINDOWS, day_key
from musicnft_dagster.resources import (
    LakeResource,
    PipelineResource,
    WarehouseResource,
    kinds_for,
)
from musicnft_dagster.windows import select_windows

# A window refreshed less than every 30 minutes is stale: the dashboard promises ≤ 15 minutes.
FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(minutes=30), warn_window=timedelta(minutes=20)
)
# A warehouse that fails for a moment (a dropped connection, a rate limit) is retried within the
# run; a longer outage fails the run, and the `failed_windows_sensor` asks for it again later.
RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)
# A backfill materializes up to a week of days per run (96 windows a day, about 2 s each
# on the embedded warehouse): a range is a few runs, not one per day.
DAYS_PER_BACKFILL_RUN = 7
BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_BACKFILL_RUN)
OWNERS = ["team:data-engineering"]
# Kinds from the backends the settings pick (duckdb/parquet locally, bigquery/s3 in the cloud).
_KINDS = kinds_for(Settings.from_env())
COMMON: dict[str, Any] = {
    "partitions_def": DAYS,
    "group_name": WINDOW_GROUP,
    "owners": OWNERS,
    "freshness_policy": FRESHNESS,
    "retry_policy": RETRY,
    "backfill_policy": BACKFILL,
}
PREVIEW_ROWS = 10
WINDOW_TABLE_ROWS = 96


def _schema(schema: pa.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(f.name, str(f.type)) for f in schema])


def _asset_metadata(schema: pa.Schema) -> dict[str, Any]:
    return {"dagster/column_schema": _schema(schema), "grain": "15-minute window (UTC)"}


def run_windows(context: dg.AssetExecutionContext) -> list[datetime]:
    """The windows this run recomputes (its day partitions narrowed by its tags)."""
    span = context.partition_time_window
    return select_windows(span.start, span.end, context.run.tags, WINDOWS.start)


@dataclass
class DayTotals:
    """What a step did to one day partition, for its materialization's metadata."""

    windows: int = 0
    rows: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def add(self, rows: int, **extra: int) -> None:
        self.windows += 1
        self.rows += rows
        for k, v in extra.items():
            self.extra[k] = self.extra.get(k, 0) + v


def _record_days(
    context: dg.AssetExecutionContext, days: dict[str, DayTotals], row_key: str
) -> None:
    """Per-day metadata: rows written (Dagster's row count) and the windows recomputed."""
    for key in context.partition_keys:
        totals = days.get(key, DayTotals())
        context.add_asset_metadata(
            {
                "dagster/row_count": totals.rows,
                row_key: totals.rows,
                "windows": totals.windows,
                **totals.extra,
            },
            partition_key=key,
        )


def _markdown(rows: list[dict[str, Any]], limit: int = PREVIEW_ROWS) -> str:
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows[:limit]:
        cells = (str(r[c]).replace("|", "\\|").replace("\n", " ")[:80] for c in cols)
        lines.append("| " + " | ".join(cells) + " |")
    if len(rows) > limit:
        lines.append(f"\n({len(rows) - limit} more)")
    return "\n".join(lines)


POST_ID_UNIQUE = dg.AssetCheckSpec(
    "post_id_unique",
    asset="posts",
    blocking=True,
    partitions_def=DAYS,
    description="Each post appears once in its window (no duplicate post_id); blocks the "
    "aggregates and the reconciliation when it fails.",
)
SCHEMA_V1 = dg.AssetCheckSpec(
    "schema_v1",
    asset="posts",
    partitions_def=DAYS,
    description="Stored columns and types match the post schema v1 + enrichment.",
)
LAKE_MATCHES_WAREHOUSE = dg.AssetCheckSpec(
    "lake_matches_warehouse",
    asset="reconciliation_15m",
    blocking=True,
    partitions_def=DAYS,
    description="After repair, every lake post of the window is in posts_hot exactly once "
    "(duplicates BigQuery's streaming buffer still holds only warn).",
)


def _check(
    context: dg.AssetExecutionContext,
    spec: dg.AssetCheckSpec,
    failures: dict[str, list[dict[str, Any]]],
    description: str,
    totals: dict[str, dict[str, int]],
    severity: dict[str, dg.AssetCheckSeverity] | None = None,
) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
    """One evaluation per day partition of the run (a backfill's run spans several days, and an
    `AssetCheckResult` would name none): passed when every window of that day passed; the
    failing windows and why are in its metadata and description."""
    yield dg.Output(None, output_name=spec.get_python_identifier())
    for key in context.partition_keys:
        bad = failures.get(key, [])
        yield dg.AssetCheckEvaluation(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=not bad,
            partition=key,
            blocking=spec.blocking,
            severity=(severity or {}).get(key, dg.AssetCheckSeverity.ERROR),
            description=description
            if not bad
            else f"{len(bad)} window(s) failed: " + "; ".join(b["reason"] for b in bad[:3]),
            metadata={
                **totals.get(key, {}),
                "failed_windows": len(bad),
                "failures": dg.MetadataValue.json(bad[:50]),
            },
        )


@dg.asset(
    kinds=_KINDS.posts,
    metadata=_asset_metadata(POSTS_SCHEMA),
    check_specs=[POST_ID_UNIQUE, SCHEMA_V1],
    **COMMON,
)
def posts(
    context: dg.AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.Output | dg.AssetCheckEvaluation]:
    """Every post created in each window, read from every lake file that touches it (late drops
    included), one row per `post_id` (the latest ingest wins), scored with the same sentiment and
    engagement code as the hot path. The lake is the source of truth; this is its clean view.

    One row per post and window (`window_start`); a run rewrites the windows it recomputes."""
    the_lake, wh = lake.lake(), warehouse.warehouse()
    days: dict[str, DayTotals] = defaultdict(DayTotals)
    unique_bad: dict[str, list[dict[str, Any]]] = defaultdict(list)
    dups: dict[str, dict[str, int]] = defaultdict(lambda: {"duplicate_rows": 0})
    schema_diffs: dict[str, dict[str, int]] = defaultdict(lambda: {"differences": 0})
    schema_bad: dict[str, list[dict[str, Any]]] = defaultdict(list)
    files: set[str] = set()
    per_window: list[dict[str, Any]] = []
    preview: list[dict[str, Any]] = []
    lake_rows = 0
    results: list[wp.PostsResult] = []
    duplicate_rows: dict[datetime, int] = {}
    schema_checks: dict[datetime, tuple[bool, list[str]]] = {}
    for chunk in wp.chunked(run_windows(context)):  # one read and one write per chunk
        results += wp.build_posts_windows(the_lake, wh, chunk)
        duplicate_rows.update(wp.duplicate_post_rows(wh, chunk))
        schema_checks.update(wp.check_posts_schemas(wh, chunk))
    for result in results:
        window = result.window
        key, day = window_key(window), day_key(window)
        dup_rows = duplicate_rows[window]
        unique_ok = dup_rows == 0
        schema_ok, diffs = schema_checks[window]
        dups[day]["duplicate_rows"] += dup_rows
        schema_diffs[day]["differences"] += len(diffs)
        if not unique_ok:
            unique_bad[day].append(
                {"window": key, "duplicate_rows": dup_rows, "reason": f"{key}: {dup_rows} dup"}
            )
        if not schema_ok:
            schema_bad[day].append(
                {"window": key, "differences": diffs, "reason": f"{key}: {'; '.join(diffs[:2])}"}
            )
        days[day].add(result.unique_posts, lake_rows=result.lake_rows)
        lake_rows += result.lake_rows
        files.update(result.files_read)
        if result.unique_posts:
            preview = result.preview
            per_window.append(
                {"window": key, "posts": result.unique_posts, "files": len(result.files_read)}
            )
        context.log.debug(
            "window %s: %d posts from %d lake rows in %d files",
            key,
            result.unique_posts,
            result.lake_rows,
            len(result.files_read),
        )
    total = sum(d.rows for d in days.values())
    context.log.info(
        "%d window(s): %d posts from %d lake rows in %d files",
        sum(d.windows for d in days.values()),
        total,
        lake_rows,
        len(files),
    )
    _record_days(context, days, "posts")
    yield dg.MaterializeResult(
        metadata={
            "posts": total,
            "lake_rows": lake_rows,
            "duplicates_in_lake": lake_rows - total,
            "files_read": len(files),
            "files": dg.MetadataValue.json(sorted(files)[:50]),
            "windows_with_posts": dg.MetadataValue.md(_markdown(per_window, WINDOW_TABLE_ROWS)),
            "preview": dg.MetadataValue.md(_markdown(preview)),
        }
    )
    yield from _check(
        context, POST_ID_UNIQUE, unique_bad, "Every window's post ids are unique.", dups
    )
    yield from _check(
        context, SCHEMA_V1, schema_bad, "Every window's posts match schema v1.", schema_diffs
    )


def _aggregate(
    table: str, schema: pa.Schema, description: str, priority: int = 0
) -> dg.AssetsDefinition:
    @dg.asset(
        name=table,
        deps=[posts],
        kinds=_KINDS.tables,
        description=description,
        metadata=_asset_metadata(schema),
        op_tags={"dagster/priority": str(priority)},
        **COMMON,
    )
    def _asset(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, pipeline: PipelineResource
    ) -> dg.MaterializeResult:
        wh = warehouse.warehouse()
        days: dict[str, DayTotals] = defaultdict(DayTotals)
        last_with_rows: datetime | None = None
        for chunk in wp.chunked(run_windows(context)):
            written = wp.build_aggregates(wh, table, chunk, list(pipeline.keywords))
            for window, rows in written.items():
                days[day_key(window)].add(rows)
                if rows:
                    last_with_rows = window
        preview: list[dict[str, Any]] = []
        if last_with_rows is not None:
            preview = wh.query(
                f"SELECT * FROM {table} WHERE window_start = ? LIMIT {PREVIEW_ROWS}",
                [last_with_rows],
            ).to_pylist()
        _record_days(context, days, "rows")
        return dg.MaterializeResult(
            metadata={
                "rows": sum(d.rows for d in days.values()),
                "preview": dg.MetadataValue.md(_markdown(preview)),
            }
        )

    return _asset


window_metrics_15m = _aggregate(
    "window_metrics_15m",
    WINDOW_METRICS_SCHEMA,
    "Per 15-minute window: posts, unique authors, average followers and sentiment, sentiment "
    "counts, engagement and repost share; one row for `all` and one per tracked keyword. The "
    "dashboard's volume and sentiment panels read it.",
    # right after posts in a run: the dashboard's first panels wait for it
    priority=1,
)
hashtag_counts_15m = _aggregate(
    "hashtag_counts_15m",
    HASHTAG_COUNTS_SCHEMA,
    "Posts per hashtag (lower-case, no #) per 15-minute window; the dashboard's hashtag panel.",
)
location_counts_15m = _aggregate(
    "location_counts_15m",
    LOCATION_COUNTS_SCHEMA,
    "Posts per author location (as written on the profile) per 15-minute window; the "
    "dashboard's location panel.",
)


@dg.asset(
    deps=[posts],
    kinds=_KINDS.tables,
    metadata=_asset_metadata(RECONCILIATION_SCHEMA),
    check_specs=[LAKE_MATCHES_WAREHOUSE],
    **COMMON,
)
def reconciliation_15m(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.Output | dg.AssetCheckEvaluation]:
    """Lake (the window's `posts`) against what the hot path wrote to `posts_hot`: posts it
    missed are inserted, posts it wrote twice are reduced to one, and the counts are recorded
    (one row per window)."""
    wh = warehouse.warehouse()
    days: dict[str, DayTotals] = defaultdict(DayTotals)
    bad: dict[str, list[dict[str, Any]]] = defaultdict(list)
    severity: dict[str, dg.AssetCheckSeverity] = {}
    left: dict[str, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(
            ("lake_count", "still_missing", "still_duplicated", "duplicates_in_streaming_buffer"),
            0,
        )
    )
    totals = dict.fromkeys(("lake_count", "hot_count", "missing", "duplicates", "repaired"), 0)
    totals["hot_only"] = 0
    reconciled = [
        r for chunk in wp.chunked(run_windows(context)) for r in wp.reconcile_windows(wh, chunk)
    ]
    for r in reconciled:
        window = r.window
        key, day = window_key(window), day_key(window)
        days[day].add(1, missing=r.missing, duplicates=r.duplicates, repaired=r.repaired)
        for name in totals:
            totals[name] += getattr(r, name)
        for name, value in (
            ("lake_count", r.lake_count),
            ("still_missing", r.after_missing),
            ("still_duplicated", r.after_duplicates),
            ("duplicates_in_streaming_buffer", r.deferred_duplicates),
        ):
            left[day][name] += value
        if r.missing or r.duplicates:
            context.log.warning(
                "window %s: posts_hot missed %d and duplicated %d posts; repaired %d rows",
                key,
                r.missing,
                r.duplicates,
                r.repaired,
            )
        if not r.reconciled:
            # Duplicates BigQuery cannot delete yet (streaming buffer) warn without blocking:
            # `posts` is unique regardless, and the window's next run removes them.
            deferred_only = r.after_missing == 0 and r.after_duplicates == r.deferred_duplicates
            if not deferred_only:
                severity[day] = dg.AssetCheckSeverity.ERROR
            else:
                severity.setdefault(day, dg.AssetCheckSeverity.WARN)
            bad[day].append(
                {
                    "window": key,
                    "lake_count": r.lake_count,
                    "still_missing": r.after_missing,
                    "still_duplicated": r.after_duplicates,
                    "duplicates_in_streaming_buffer": r.deferred_duplicates,
                    "reason": f"{key}: {r.after_missing} missing, {r.after_duplicates} duplicated"
                    + (" (in BigQuery's streaming buffer)" if deferred_only else ""),
                }
            )
    merged = wp.compact_windowed_tables(wh)
    if merged:
        context.log.info("compacted window files: %s", merged)
    _record_days(context, days, "rows")
    yield dg.MaterializeResult(metadata=dict(totals))
    yield from _check(
        context,
        LAKE_MATCHES_WAREHOUSE,
        bad,
        "Every window's lake posts are in posts_hot exactly once.",
        left,
        severity,
    )


WINDOW_ASSETS = [
    posts,
    window_metrics_15m,
    hashtag_counts_15m,
    location_counts_15m,
    reconciliation_15m,
]
