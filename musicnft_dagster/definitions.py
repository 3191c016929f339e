"""The composition root of the code location: merges each module's Definitions and wires the
resources of the active profile (MUSICNFT_PROFILE), nothing more."""

import dagster as dg

from musicnft.settings import Settings
from musicnft_dagster import assets, schedules, sensors
from musicnft_dagster.resources import resources_for

defs = dg.Definitions.merge(
    assets.defs,
    sensors.defs,
    schedules.defs,
    dg.Definitions(resources=resources_for(Settings.from_env())),
)
