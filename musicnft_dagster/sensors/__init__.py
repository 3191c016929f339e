"""Sensors that watch the lake's Parquet drops."""

import dagster as dg

# The drop sensor arrives with the Dagster issue (#3); see assets/__init__.py.
defs = dg.Definitions()
