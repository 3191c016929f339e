"""Windowed assets over the lake (posts, 15-minute aggregates, reconciliation)."""

import dagster as dg

# The windowed assets arrive with the Dagster issue (#3); the module's Definitions are merged by
# the root already, so adding them changes nothing else.
defs = dg.Definitions()
