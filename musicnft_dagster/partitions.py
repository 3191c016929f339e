"""The 15-minute UTC windows every windowed asset is partitioned by."""

import os
from datetime import datetime

import dagster as dg

from musicnft.contract.windows import KEY_FORMAT

# Early enough for the original project's captures (late 2021) to be replayed and backfilled.
DEFAULT_START = "2021-11-01-00:00"


def _start() -> str:
    # Read once at definition time (the composition root), never inside an asset body.
    raw = os.environ.get("MUSICNFT_PARTITIONS_START", DEFAULT_START)
    try:
        datetime.strptime(raw, KEY_FORMAT)
    except ValueError:
        raise ValueError(
            f"MUSICNFT_PARTITIONS_START must look like 2021-11-01-00:00, got {raw!r}"
        ) from None
    return raw


# end_offset=1: the window in progress is a partition too, so a live dashboard sees it fill.
WINDOWS = dg.TimeWindowPartitionsDefinition(
    cron_schedule="*/15 * * * *",
    start=_start(),
    fmt=KEY_FORMAT,
    timezone="UTC",
    end_offset=1,
)
