"""Windowed assets over the lake (posts, 15-minute aggregates, reconciliation)."""

import dagster as dg

from musicnft_dagster.assets.windows import WINDOW_ASSETS
from musicnft_dagster.jobs import windows_job

defs = dg.Definitions(assets=WINDOW_ASSETS, jobs=[windows_job])
