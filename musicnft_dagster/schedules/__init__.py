"""Every 15 minutes the latest windows are rebuilt, drop or no drop, so nothing goes stale."""

from datetime import UTC

import dagster as dg

from musicnft.contract.windows import WINDOW, window_key, window_start
from musicnft_dagster.jobs import WINDOW_TAG, windows_job


@dg.schedule(
    cron_schedule="*/15 * * * *",
    job=windows_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Rebuild the window that just closed and the one that just opened.",
)
def refresh_latest_windows(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    at = context.scheduled_execution_time.astimezone(UTC)
    current = window_start(at)
    return [
        dg.RunRequest(
            run_key=f"refresh:{window_key(w)}:{at:%Y%m%dT%H%M}",
            partition_key=window_key(w),
            tags={WINDOW_TAG: window_key(w), "musicnft/trigger": "schedule"},
        )
        for w in (current - WINDOW, current)
    ]


defs = dg.Definitions(schedules=[refresh_latest_windows])
