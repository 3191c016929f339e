"""The job the sensors and the schedule launch: every windowed asset for one day partition,
restricted to the 15-minute windows its run tags name."""

import dagster as dg

WINDOW_GROUP = "windows"
# Run tags (see musicnft_dagster.windows): the windows a run recomputes, comma-separated window
# keys; or a [first, end) range of windows; and what asked for the run.
WINDOWS_TAG = "musicnft/windows"
RANGE_TAG = "musicnft/window_range"
TRIGGER_TAG = "musicnft/trigger"
# Kept for importers of the old name (runs used to be one window each).
WINDOW_TAG = WINDOWS_TAG

windows_job = dg.define_asset_job(
    "window_refresh",
    selection=dg.AssetSelection.groups(WINDOW_GROUP),
    executor_def=dg.in_process_executor,
    description="Rebuild the 15-minute windows of one day that the run's `musicnft/windows` tag "
    "names (all of the day without it): posts, aggregates, reconciliation, checks.",
)
