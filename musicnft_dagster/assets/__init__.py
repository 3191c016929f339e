"""Windowed assets over the lake (posts, 15-minute aggregates, reconciliation, NFT sales), and
the warehouse maintenance job with its schedule."""

import dagster as dg

from musicnft_dagster.assets.deletions import DELETIONS_DEFS
from musicnft_dagster.assets.insight import INSIGHT_DEFS
from musicnft_dagster.assets.maintenance import MAINTENANCE_JOBS, MAINTENANCE_SCHEDULES
from musicnft_dagster.assets.sales import SALES_ASSETS
from musicnft_dagster.assets.scored_posts import SCORING_DEFS
from musicnft_dagster.assets.sentiment_model import MODEL_ASSETS, MODEL_JOBS
from musicnft_dagster.assets.windows import WINDOW_ASSETS
from musicnft_dagster.jobs import windows_job

defs = dg.Definitions(
    assets=[*WINDOW_ASSETS, *SALES_ASSETS],
    jobs=[windows_job, *MAINTENANCE_JOBS],
    schedules=MAINTENANCE_SCHEDULES,
)
# The sentiment model (issue 15): its own group and job, not partitioned.
defs = dg.Definitions.merge(defs, dg.Definitions(assets=MODEL_ASSETS, jobs=MODEL_JOBS))
# Entities and spikes (issue 18): window assets in the windows group, so in `window_refresh`.
defs = dg.Definitions.merge(defs, INSIGHT_DEFS)
# Deletions at the source (issue 19): the daily sweep asset, its check, job and schedule.
defs = dg.Definitions.merge(defs, DELETIONS_DEFS)
# Spark scoring (issue 16): `scored_posts` and its job; where Spark runs is the resource's choice.
defs = dg.Definitions.merge(defs, SCORING_DEFS)
