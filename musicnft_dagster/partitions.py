"""Partitions: the assets are partitioned by UTC day; the tables keep their 15-minute grain.

Dagster's guidance is at most 100,000 partitions per asset (the UI slows past that). 15-minute
partitions from 2021-11-01 were 178,090 in late 2026 and grew by 35,040 a year; days are 1,856
then and grow by 365 a year. A run for a day recomputes only the windows it names (the drop
sensor's and the schedule's runs, see `musicnft_dagster.windows`) or every window of the day (a
backfill), so the per-window precision and the 15-minute refresh stay.
"""

from datetime import UTC, datetime

import dagster as dg

from musicnft.contract.windows import KEY_FORMAT, parse_window_key
from musicnft.settings import DEFAULT_PARTITIONS_START, Settings

# Kept for importers of the old name; the value lives in settings.
DEFAULT_START = DEFAULT_PARTITIONS_START
DAY_FORMAT = "%Y-%m-%d"


def days_from(start: str) -> dg.DailyPartitionsDefinition:
    """The day partitions from the day of `start` (a window key, UTC).

    end_offset=1: today is a partition too, so the window in progress is materialized live.
    """
    first = parse_window_key(start)
    return dg.DailyPartitionsDefinition(
        start_date=first.strftime(DAY_FORMAT), timezone="UTC", fmt=DAY_FORMAT, end_offset=1
    )


def windows_from(start: str) -> dg.TimeWindowPartitionsDefinition:
    """The window calendar from `start` (KEY_FORMAT, UTC): which 15-minute windows exist (the
    first from the settings, the last the window in progress). Not an asset's partitions: the
    drop sensor plans its runs against it, and a day's run never reaches outside it."""
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="*/15 * * * *",
        start=start,
        fmt=KEY_FORMAT,
        timezone="UTC",
        end_offset=1,
    )


def day_key(window: datetime) -> str:
    """The day partition a window belongs to."""
    return window.astimezone(UTC).strftime(DAY_FORMAT)


# Read once at definition time (the composition root), never inside an asset body. An invalid
# MUSICNFT_PARTITIONS_START raises musicnft.settings.ConfigError naming the variable.
_START = Settings.from_env().partitions_start
DAYS = days_from(_START)
WINDOWS = windows_from(_START)
