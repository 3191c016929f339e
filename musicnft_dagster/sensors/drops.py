"""The drop sensor: new Parquet files in the lake → one run per day, naming the 15-minute
windows they touch."""

import hashlib
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from musicnft.batch.drops import (
    DropCursor,
    RunPlan,
    missed_files,
    plan_runs,
    run_key,
    select_new_files,
)
from musicnft.batch.lake_index import (
    FileStats,
    LakeIndex,
    read_file_stats,
    read_table,
    unreadable_reason,
)
from musicnft.contract.lake_layout import DROP_PREFIXES, ERRORS_PREFIX, time_column
from musicnft.contract.windows import parse_window_key, window_start
from musicnft.ports import Lake, LakeObject
from musicnft_dagster.jobs import TRIGGER_TAG, WINDOWS_TAG, windows_job
from musicnft_dagster.partitions import DAYS, WINDOWS, day_key
from musicnft_dagster.resources import LakeResource, WarehouseResource
from musicnft_dagster.sensors.reruns import WINDOW_ASSET_KEYS, is_window_run, run_days
from musicnft_dagster.windows import WindowSelectionError, select_windows, windows_tag

MAX_FILES_PER_TICK = 500
BACKFILL_IN_PROGRESS = {"REQUESTED", "CANCELING", "FAILING"}
ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# The last asset of a window's chain: its materialization means the whole window was rebuilt.
LAST_ASSET = dg.AssetKey("reconciliation_15m")
# The sensor ticks every 10 s: a drop becomes aggregates within seconds of landing (a tick is
# a listing of recent hour folders and a footer read per new file).
INTERVAL_SECONDS = 10


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
    context: dg.SensorEvaluationContext, lake: Lake, index: LakeIndex, new_files: list[LakeObject]
) -> list[FileStats]:
    """Each new file's footer stats. A file that is itself unreadable (not Parquet, a corrupt
    footer, required columns missing) is quarantined with its reason, as a window run would; one
    that fails for a passing reason (network, throttling) is skipped and found again by the next
    sweep, since it is neither indexed nor quarantined."""
    stats = []
    for obj in new_files:
        try:
            stats.append(read_file_stats(lake, obj))
        except Exception as exc:  # a corrupt drop must not stop the others
            reason = unreadable_reason(exc)
            if reason is None:
                context.log.warning(
                    "cannot read the Parquet footer of %s now (%s); the next sweep retries it",
                    obj.key,
                    exc,
                )
            else:
                index.quarantine(obj.key, reason)
    return stats


def _sweep(
    context: dg.SensorEvaluationContext,
    lake: Lake,
    index: LakeIndex,
    cursor: DropCursor,
    taken: list[LakeObject],
    now: datetime,
) -> list[LakeObject]:
    """The periodic full listing of raw/ against the index: files delivered beyond the hour
    listing's lookback, or hidden behind a skewed watermark, are taken in this tick. The sweep is
    done when nothing is left over; until then it repeats on the next tick."""
    room = MAX_FILES_PER_TICK - len(taken)
    if room <= 0 or not cursor.sweep_due(now):
        return []
    known = index.known_keys() | set(index.quarantined()) | {o.key for o in taken}
    missed = missed_files(list_drops(lake), known, room + 1)
    if len(missed) <= room:
        cursor.swept_at = now
    missed = missed[:room]
    if missed:
        context.log.warning(
            "full listing of raw/: %d file(s) the hour-folder listing missed (delivered late or "
            "behind a skewed clock), e.g. %s; taking them now",
            len(missed),
            missed[0].key,
        )
    return missed


def list_drops(lake: Lake, from_hour: datetime | None = None) -> list[LakeObject]:
    """The lake's drops: posts under raw/ and NFT sales under sales/ (one cursor for both: keys
    differ by prefix, and a window's run rebuilds its posts and its sales alike)."""
    return [o for prefix in DROP_PREFIXES for o in lake.list_objects(prefix, from_hour)]


def _exact_windows(lake: Lake, s: FileStats) -> set[datetime]:
    """The windows a file's posts (or sales) fall in, from its created_at (event_timestamp)
    column (for wide-spanning files)."""
    column = read_table(lake, s.key, columns=[time_column(s.key)]).column(0).to_pylist()
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


def day_run_key(day: str, windows: dict[str, list[str]]) -> str:
    """Deterministic: the same windows of a day with the same new files are the same run."""
    per_window = "\n".join(run_key(w, files) for w, files in sorted(windows.items()))
    return f"drops:{day}:{hashlib.sha1(per_window.encode()).hexdigest()[:16]}"


def by_day(runs: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
    """Window runs (window key → its new files) grouped by their day partition."""
    days: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for window, files in runs.items():
        days[day_key(parse_window_key(window))][window] = files
    return dict(days)


def _run_requests(plan: RunPlan) -> list[dg.RunRequest]:
    """One run per day, naming its windows, keyed by the windows and their new files."""
    return [
        dg.RunRequest(
            run_key=day_run_key(day, windows),
            partition_key=day,
            tags={
                WINDOWS_TAG: windows_tag(windows),
                TRIGGER_TAG: "drop",
                "musicnft/new_files": str(len({f for fs in windows.values() for f in fs})),
            },
        )
        for day, windows in sorted(by_day(plan.runs).items())
    ]


def _indexed_before(warehouse: Any, keys: list[str], before: datetime) -> dict[str, datetime]:
    """When each of these files was first indexed, for those indexed before `before` (by a
    backfill, or an earlier tick)."""
    if not keys:
        return {}
    result = warehouse.query(
        "SELECT key, min(indexed_at) AS at FROM lake_files "
        f"WHERE {warehouse.dialect.in_list_param('key')} GROUP BY key",
        [keys],
    )
    out = {}
    for k, t in zip(result.column(0).to_pylist(), result.column(1).to_pylist(), strict=True):
        at = t if t.tzinfo else t.replace(tzinfo=UTC)
        if at < before:
            out[k] = at
    return out


def _rebuilds(run: dg.DagsterRun, started: datetime | None, window: str) -> bool:
    """Whether this run rebuilds (or rebuilt) `window`, from its tags."""
    day = day_key(parse_window_key(window))
    span = DAYS.time_window_for_partition_key(day)
    try:
        done = select_windows(
            span.start, span.end, run.tags, WINDOWS.start, started or datetime.now(UTC)
        )
    except (WindowSelectionError, ValueError):
        return False
    return parse_window_key(window) in done


def _covering_run(instance: dg.DagsterInstance, window: str, since: datetime) -> str | None:
    """A run that rebuilt `window` after `since` (it started after its files were indexed, so it
    read them): a backfill's, or one the UI launched. None when there is none."""
    day = day_key(parse_window_key(window))
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=LAST_ASSET, asset_partitions=[day], after_timestamp=since.timestamp()
        ),
        limit=20,
    ).records
    for record in records:
        run = instance.get_run_record_by_id(record.run_id) if record.run_id else None
        if run is None or run.start_time is None or run.start_time <= since.timestamp():
            continue
        if _rebuilds(run.dagster_run, datetime.fromtimestamp(run.start_time, UTC), window):
            return run.dagster_run.run_id
    return None


def _coming_run(runs: list[dg.RunRecord], window: str, since: datetime) -> str | None:
    """A queued or running run (a backfill's) that will rebuild `window` reading files indexed
    at `since`: the window waits for it instead of getting a run of its own."""
    day = day_key(parse_window_key(window))
    for record in runs:
        run = record.dagster_run
        if not is_window_run(run) or day not in run_days(run):
            continue
        if record.start_time is not None and record.start_time <= since.timestamp():
            continue  # it may have read the index before these files were in it
        if _rebuilds(run, None, window):
            return run.run_id
    return None


def _window_backfill_in_progress(instance: dg.DagsterInstance) -> str | None:
    """The id of a backfill of the window assets still under way (`musicnft backfill`, or a
    range materialized from the UI), if any."""
    for backfill in instance.get_backfills(limit=20):
        if backfill.status.value in BACKFILL_IN_PROGRESS and set(
            backfill.asset_selection or []
        ) & set(WINDOW_ASSET_KEYS):
            return str(backfill.backfill_id)
    return None


def _drop_covered(
    context: dg.SensorEvaluationContext,
    plan: RunPlan,
    indexed: dict[str, datetime],
    waiting: dict[str, list[str]],
) -> int:
    """Windows whose new files were all indexed before a run that rebuilt them (`musicnft
    backfill`, a Materialize in the UI) need no run: drop them from the plan. Windows a queued or
    running run, or a backfill in progress, will rebuild wait in `waiting` (the cursor's pending
    windows) for it. Files indexed by this tick are never held back."""
    covered = 0
    active: list[dg.RunRecord] | None = None
    backfill: str | None = None
    for window, files in list(plan.runs.items()):
        if not files or not all(f in indexed for f in files):
            continue  # a file indexed only now: no earlier run can have read it
        since = max(indexed[f] for f in files)
        run_id = _covering_run(context.instance, window, since)
        if run_id is not None:
            context.log.info("window %s: already rebuilt with its files by run %s", window, run_id)
            del plan.runs[window]
            covered += 1
            continue
        if active is None:
            active = list(
                context.instance.get_run_records(filters=dg.RunsFilter(statuses=ACTIVE), limit=200)
            )
            backfill = _window_backfill_in_progress(context.instance)
        if backfill is not None:
            # Its runs may not exist yet: wait for it, then look again.
            context.log.info("window %s: waits for backfill %s to finish", window, backfill)
            waiting[window] = files
            del plan.runs[window]
            continue
        run_id = _coming_run(active, window, since)
        if run_id is not None:
            context.log.info("window %s: waits for run %s, which will rebuild it", window, run_id)
            waiting[window] = files
            del plan.runs[window]
    return covered


def _tick_result(
    context: dg.SensorEvaluationContext,
    *,
    cursor: DropCursor,
    next_cursor: DropCursor,
    listed: int,
    new_files: list[LakeObject],
    more: bool,
    plan: RunPlan,
    covered: int = 0,
    swept: bool = False,
) -> dg.SensorResult | dg.SkipReason:
    """The tick's runs and next cursor, or why there are none (no cursor change without news,
    but for the time of a full sweep, so the next one waits its turn)."""
    requests = _run_requests(plan)
    if not requests:
        if not new_files and not cursor.pending:
            reason = dg.SkipReason(
                f"no new Parquet drops under raw/ or sales/ (listed {listed} file(s) since "
                f"{cursor.list_from_hour() or 'the beginning'}"
                f"{'; full listing swept' if swept else ''})"
            )
            if swept:
                return dg.SensorResult(skip_reason=reason, cursor=next_cursor.to_json())
            return reason
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"{len(new_files)} new file(s) touch no window that exists yet or that a run "
                f"has not rebuilt with them already (future: {len(plan.future)}, before start: "
                f"{plan.before_start}, already rebuilt: {covered})"
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
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Watches raw/ (posts) and sales/ (NFT sales) for new Parquet drops (late ones in earlier "
        "hour folders too), reads each "
        "file's created_at range from its footer, and requests one run per day naming the "
        "15-minute windows touched, keyed by the windows and their new files so a repeated or "
        "restarted tick never runs the same work twice; windows a backfill already rebuilt "
        "with those files are not run again."
    ),
)
def lake_drop_sensor(
    context: dg.SensorEvaluationContext, lake: LakeResource, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    cursor = _read_cursor(context)
    the_lake = lake.lake()
    now = datetime.now(UTC)
    listing = list_drops(the_lake, cursor.list_from_hour())
    new_files, next_cursor, more = select_new_files(cursor, listing, MAX_FILES_PER_TICK, now)
    wh = warehouse.warehouse()
    index = LakeIndex(wh)
    swept_before = next_cursor.swept_at
    if cursor.watermark is None:  # this tick's listing was the full listing
        if new_files and not more:
            next_cursor.swept_at = swept_before = now
    else:
        new_files = new_files + _sweep(context, the_lake, index, next_cursor, new_files, now)
    swept = next_cursor.swept_at != swept_before
    _warn_about_errors(context, the_lake, cursor)
    stats = _read_stats(context, the_lake, index, new_files)
    tick_started = datetime.now(UTC)
    index.record(stats)
    plan = _plan(the_lake, stats, next_cursor.pending)
    next_cursor.pending = plan.future
    _log_plan(context, plan)
    planned = sorted({f for files in plan.runs.values() for f in files})
    indexed = _indexed_before(wh, planned, tick_started)
    covered = _drop_covered(context, plan, indexed, next_cursor.pending) if indexed else 0
    return _tick_result(
        context,
        cursor=cursor,
        next_cursor=next_cursor,
        listed=len(listing),
        new_files=new_files,
        more=more,
        plan=plan,
        covered=covered,
        swept=swept,
    )
