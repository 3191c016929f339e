"""The job the sensor and the schedule launch: every windowed asset for one window."""

import dagster as dg

WINDOW_GROUP = "windows"
WINDOW_TAG = "musicnft/window"

windows_job = dg.define_asset_job(
    "window_refresh",
    selection=dg.AssetSelection.groups(WINDOW_GROUP),
    description="Rebuild one 15-minute window: posts, aggregates, reconciliation, checks.",
)
