"""The 15-minute UTC windows every windowed asset is partitioned by."""

import dagster as dg

from musicnft.contract.windows import KEY_FORMAT
from musicnft.settings import DEFAULT_PARTITIONS_START, Settings

# Kept for importers of the old name; the value lives in settings.
DEFAULT_START = DEFAULT_PARTITIONS_START


def windows_from(start: str) -> dg.TimeWindowPartitionsDefinition:
    """The window partitions from `start` (KEY_FORMAT, UTC).

    end_offset=1: the window in progress is a partition too, so a live dashboard sees it fill.
    """
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="*/15 * * * *",
        start=start,
        fmt=KEY_FORMAT,
        timezone="UTC",
        end_offset=1,
    )


# Read once at definition time (the composition root), never inside an asset body. An invalid
# MUSICNFT_PARTITIONS_START raises musicnft.settings.ConfigError naming the variable.
WINDOWS = windows_from(Settings.from_env().partitions_start)
