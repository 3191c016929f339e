"""The drop sensor: new Parquet files in the lake → one run per window they touch."""

from datetime import datetime

import dagster as dg

from musicnft.batch.drops import DropCursor, RunPlan, plan_runs, run_key, select_new_files
from musicnft.batch.lake_index import FileStats, LakeIndex, read_file_stats, read_table
from musicnft.contract.lake_layout import ERRORS_PREFIX, RAW_PREFIX
from musicnft.contract.windows import parse_window_key, window_start
from musicnft.ports import Lake, LakeObject
from musicnft_dagster.jobs import WINDOW_TAG, windows_job
from musicnft_dagster.partitions import WINDOWS
from musicnft_dagster.resources import LakeResource, WarehouseResource

MAX_FILES_PER_TICK = 500


def _read_cursor(context: dg.SensorEvaluationContext) -> DropCursor:
    try:
        return DropCursor.from_json(context.cursor)
    except ValueError as exc:
        # Starting over is safe (run keys dedupe repeated work); silently mis-reading is not.
        context.log.error("%s; rescanning the lake from the beginning", exc)
        return DropCursor()


def _warn_about_errors(context: dg.SensorEvaluationContext, lake: Lake, cursor: DropCursor) -> None:
    """Files under errors/ newer than the watermark: logged, never aggregated."""
    errors = [
        o
        for o in lake.list_objects(ERRORS_PREFIX)
        if cursor.watermark is None or o.last_modified > cursor.watermark
    ]
    if errors:
        context.log.warning(
            "%d new file(s) under errors/ (records Parquet conversion refused), e.g. %s; they "
            "are not aggregated",
            len(errors),
            errors[0].key,
        )


def _read_stats(
    context: dg.SensorEvaluationContext, lake: Lake, new_files: list[LakeObject]
) -> list[FileStats]:
    """Each new file's footer stats; a file whose footer cannot be read is logged and skipped."""
    stats = []
    for obj in new_files:
        try:
            stats.append(read_file_stats(lake, obj))
        except Exception as exc:  # a corrupt drop must not stop the others
            context.log.error("cannot read the Parquet footer of %s: %s; skipping it", obj.key, exc)
    return stats


def _exact_windows(lake: Lake, s: FileStats) -> set[datetime]:
    """The windows a file's posts fall in, from its created_at column (for wide-spanning files)."""
    column = read_table(lake, s.key, columns=["created_at"]).column(0).to_pylist()
    return {window_start(t) for t in column if t is not None}


def _plan(lake: Lake, stats: list[FileStats], pending: dict[str, list[str]]) -> RunPlan:
    """The runs for the windows that exist now; later windows stay pending (in `plan.future`)."""
    last_key = WINDOWS.get_last_partition_key() or WINDOWS.get_first_partition_key()
    if last_key is None:  # only with MUSICNFT_PARTITIONS_START in the future; fail the tick loudly
        raise ValueError(f"no window partition exists yet (they start {WINDOWS.start.isoformat()})")
    last = parse_window_key(last_key)
    return plan_runs(stats, WINDOWS.start, last, pending, lambda s: _exact_windows(lake, s))


def _log_plan(context: dg.SensorEvaluationContext, plan: RunPlan) -> None:
    if plan.before_start:
        context.log.warning(
            "%d file(s) hold posts created before the partitions start (%s); those posts are "
            "not in any window (set MUSICNFT_PARTITIONS_START earlier to include them)",
            plan.before_start,
            WINDOWS.start.isoformat(),
        )
    if plan.dropped_future:
        context.log.error(
            "%d far-future window(s) not kept waiting (over %d); run `musicnft backfill` for them "
            "when their time comes",
            plan.dropped_future,
            len(plan.future),
        )
    if plan.future:
        context.log.warning(
            "posts stamped in the future (clock skew?) wait for windows %s", ", ".join(plan.future)
        )


def _run_requests(plan: RunPlan) -> list[dg.RunRequest]:
    """One run per window, keyed by the window and its new files."""
    return [
        dg.RunRequest(
            run_key=run_key(window, files),
            partition_key=window,
            tags={
                WINDOW_TAG: window,
                "musicnft/trigger": "drop",
                "musicnft/new_files": str(len(files)),
            },
        )
        for window, files in plan.runs.items()
    ]


def _tick_result(
    context: dg.SensorEvaluationContext,
    *,
    cursor: DropCursor,
    next_cursor: DropCursor,
    listed: int,
    new_files: list[LakeObject],
    more: bool,
    plan: RunPlan,
) -> dg.SensorResult | dg.SkipReason:
    """The tick's runs and next cursor, or why there are none (no cursor change without news)."""
    requests = _run_requests(plan)
    if not requests:
        if not new_files and not cursor.pending:
            return dg.SkipReason(
                f"no new Parquet drops under raw/ (listed {listed} file(s) since "
                f"{cursor.list_from_hour() or 'the beginning'})"
            )
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"{len(new_files)} new file(s) touch no window that exists yet "
                f"(future: {len(plan.future)}, before start: {plan.before_start})"
            ),
            cursor=next_cursor.to_json(),
        )
    context.log.info(
        "%d new file(s) → %d window run(s)%s",
        len(new_files),
        len(requests),
        "; more files waiting for the next tick" if more else "",
    )
    return dg.SensorResult(run_requests=requests, cursor=next_cursor.to_json())


@dg.sensor(
    job=windows_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Watches raw/ for new Parquet drops (late ones in earlier hour folders too), reads each "
        "file's created_at range from its footer, and requests one run per window touched, "
        "keyed by the window and its new files so a repeated or restarted tick never runs "
        "the same work twice."
    ),
)
def lake_drop_sensor(
    context: dg.SensorEvaluationContext, lake: LakeResource, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    cursor = _read_cursor(context)
    the_lake = lake.lake()
    listing = the_lake.list_objects(RAW_PREFIX, cursor.list_from_hour())
    new_files, next_cursor, more = select_new_files(cursor, listing, MAX_FILES_PER_TICK)
    _warn_about_errors(context, the_lake, cursor)
    stats = _read_stats(context, the_lake, new_files)
    LakeIndex(warehouse.warehouse()).record(stats)
    plan = _plan(the_lake, stats, next_cursor.pending)
    next_cursor.pending = plan.future
    _log_plan(context, plan)
    return _tick_result(
        context,
        cursor=cursor,
        next_cursor=next_cursor,
        listed=len(listing),
        new_files=new_files,
        more=more,
        plan=plan,
    )
