"""Every 15 minutes the latest windows are rebuilt, drop or no drop, so nothing goes stale."""

from collections import defaultdict
from datetime import UTC

import dagster as dg

from musicnft.contract.windows import WINDOW, window_key, window_start
from musicnft_dagster.jobs import TRIGGER_TAG, WINDOWS_TAG, windows_job
from musicnft_dagster.partitions import day_key
from musicnft_dagster.windows import windows_tag


@dg.schedule(
    cron_schedule="*/15 * * * *",
    job=windows_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Rebuild the window that just closed and the one that just opened (one run per "
    "day partition they fall in, naming the two windows).",
)
def refresh_latest_windows(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    at = context.scheduled_execution_time.astimezone(UTC)
    current = window_start(at)
    days: dict[str, list[str]] = defaultdict(list)
    for w in (current - WINDOW, current):
        days[day_key(w)].append(window_key(w))
    return [
        dg.RunRequest(
            run_key=f"refresh:{day}:{at:%Y%m%dT%H%M}",
            partition_key=day,
            tags={WINDOWS_TAG: windows_tag(windows), TRIGGER_TAG: "schedule"},
        )
        for day, windows in sorted(days.items())
    ]


defs = dg.Definitions(schedules=[refresh_latest_windows])
