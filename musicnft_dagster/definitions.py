"""The composition root of the code location: merges each module's Definitions, nothing more."""

import dagster as dg

from musicnft_dagster import assets, sensors

defs = dg.Definitions.merge(assets.defs, sensors.defs)
