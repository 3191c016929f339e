"""The composition root of the code location: merges each module's Definitions, wires the
resources of the active profile (MUSICNFT_PROFILE) and applies global policy: every job, the
implicit asset job of backfills and UI materializations included, runs its steps in the run's
own process (a window step takes well under a second; a process per step took 5-7 s)."""

import dagster as dg

from musicnft.settings import Settings
from musicnft_dagster import assets, schedules, sensors
from musicnft_dagster.resources import resources_for

defs = dg.Definitions.merge(
    assets.defs,
    sensors.defs,
    schedules.defs,
    dg.Definitions(resources=resources_for(Settings.from_env()), executor=dg.in_process_executor),
)
