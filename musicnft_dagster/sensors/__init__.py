"""Sensors that watch the lake's Parquet drops."""

import dagster as dg

from musicnft_dagster.sensors.drops import lake_drop_sensor

defs = dg.Definitions(sensors=[lake_drop_sensor])
