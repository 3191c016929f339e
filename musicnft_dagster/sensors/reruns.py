"""The re-run sensor: windows whose last run failed are asked for again, with backoff.

A warehouse outage fails window runs (after the assets' own retries); their run keys launch once
and the schedule refreshes only the latest windows, so without this sensor those windows would
stay stale. Every tick looks at window runs that failed in the last `LOOKBACK`; a failed run's
days that no later run has rebuilt (or is rebuilding) are requested again with the same windows,
tagged with the failed run and the attempt number. Attempt n waits 2^n minutes after the failure
(the first goes at once), up to `MAX_ATTEMPTS`; after that the failure stays for a person (a
backfill of those days, or "Re-execute" in the UI).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import dagster as dg

from musicnft_dagster.jobs import RANGE_TAG, TRIGGER_TAG, WINDOWS_TAG, windows_job
from musicnft_dagster.partitions import DAYS

RERUN_OF_TAG = "musicnft/rerun_of"
ATTEMPT_TAG = "musicnft/attempt"
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
WINDOW_ASSET_NAMES = frozenset(
    (
        "posts",
        "window_metrics_15m",
        "hashtag_counts_15m",
        "location_counts_15m",
        "reconciliation_15m",
        "entity_metrics_15m",
        "spikes_15m",
        "nft_sales_15m",
    )
)
WINDOW_ASSET_KEYS = frozenset(dg.AssetKey(k) for k in WINDOW_ASSET_NAMES)
LOOKBACK = timedelta(hours=24)
MAX_ATTEMPTS = 8
MAX_DELAY = timedelta(hours=1)
INTERVAL_SECONDS = 60
# Runs that still count as rebuilding a day (a later one of these supersedes a failure).
LIVE_OR_DONE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.SUCCESS,
]


def delay_before(attempt: int) -> timedelta:
    """How long after a failure its re-run waits: at once, then 2, 4, 8 … minutes (≤ 1 hour)."""
    if attempt <= 0:
        return timedelta(0)
    return min(timedelta(minutes=2**attempt), MAX_DELAY)


def is_window_run(run: dg.DagsterRun) -> bool:
    """A run of the window job, or of window assets (a backfill, a Materialize in the UI)."""
    if run.asset_selection:
        return bool(set(run.asset_selection) & WINDOW_ASSET_KEYS)
    steps = {k.split("[")[0] for k in run.step_keys_to_execute or []}
    return run.job_name == windows_job.name or bool(steps & WINDOW_ASSET_NAMES)


def run_days(run: dg.DagsterRun) -> list[str]:
    """The day partitions a run was for (one, or a backfill's range)."""
    tags = run.tags
    if PARTITION_TAG in tags:
        return [tags[PARTITION_TAG]]
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return list(
            DAYS.get_partition_keys_in_range(
                dg.PartitionKeyRange(tags[RANGE_START_TAG], tags[RANGE_END_TAG])
            )
        )
    return []


def _windows_of(tags: dict[str, str], day: str) -> set[str] | None:
    """The windows of `day` a run's tags name (None: every window of the day)."""
    named = tags.get(WINDOWS_TAG, "").strip()
    if not named:
        return None
    return {w.strip() for w in named.split(",") if w.strip().startswith(day)}


def _superseded(
    instance: dg.DagsterInstance, failed: dg.DagsterRun, created: datetime, day: str
) -> bool:
    """A later run of the day that succeeded or is under way, covering the failed windows."""
    later = instance.get_run_records(filters=dg.RunsFilter(created_after=created), limit=200)
    wanted = _windows_of(dict(failed.tags), day)
    for record in later:
        run = record.dagster_run
        if run.run_id == failed.run_id or not is_window_run(run) or day not in run_days(run):
            continue
        if run.tags.get(RERUN_OF_TAG) == failed.run_id:
            return True
        if run.status not in LIVE_OR_DONE or RANGE_TAG in run.tags:
            continue  # a partial range: not worth proving it covers the failed windows
        done = _windows_of(dict(run.tags), day)
        if done is None or (wanted is not None and wanted <= done):
            return True
    return False


def rerun_requests(
    instance: dg.DagsterInstance, now: datetime, log: logging.Logger | None = None
) -> list[dg.RunRequest]:
    """Run requests for the failed window runs due for another attempt."""
    failed = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], updated_after=now - LOOKBACK),
        limit=200,
    )
    requests: list[dg.RunRequest] = []
    for record in failed:
        run = record.dagster_run
        if not is_window_run(run):
            continue
        attempt = int(run.tags.get(ATTEMPT_TAG, "0") or 0)
        ended = datetime.fromtimestamp(record.end_time or record.update_timestamp.timestamp(), UTC)
        if attempt >= MAX_ATTEMPTS:
            if log is not None:
                log.error(
                    "run %s failed %d times in a row; not retrying it (backfill its days)",
                    run.run_id,
                    attempt + 1,
                )
            continue
        if now - ended < delay_before(attempt):
            continue
        for day in run_days(run):
            if _superseded(instance, run, record.create_timestamp, day):
                continue
            requests.append(_request(run, day, attempt + 1))
    return requests


def _request(failed: dg.DagsterRun, day: str, attempt: int) -> dg.RunRequest:
    tags = {TRIGGER_TAG: "rerun", RERUN_OF_TAG: failed.run_id, ATTEMPT_TAG: str(attempt)}
    windows = _windows_of(dict(failed.tags), day)
    if windows:
        tags[WINDOWS_TAG] = ",".join(sorted(windows))
    if RANGE_TAG in failed.tags:
        tags[RANGE_TAG] = failed.tags[RANGE_TAG]
    return dg.RunRequest(run_key=f"rerun:{failed.run_id}:{day}", partition_key=day, tags=tags)


def _describe(requests: Iterable[dg.RunRequest]) -> str:
    return ", ".join(f"{r.partition_key} (attempt {r.tags[ATTEMPT_TAG]})" for r in requests)


@dg.sensor(
    job=windows_job,
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Re-runs the windows of window runs that failed in the last 24 hours (a warehouse "
        "outage) and that no later run has rebuilt: the first attempt at once, then after 2, 4, "
        "8 … minutes, at most 8 attempts."
    ),
)
def failed_windows_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    requests = rerun_requests(context.instance, datetime.now(UTC), context.log)
    if not requests:
        return dg.SkipReason("no failed window run is due for another attempt")
    context.log.info("re-running failed windows: %s", _describe(requests))
    return dg.SensorResult(run_requests=requests)
