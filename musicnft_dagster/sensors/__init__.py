"""Sensors: new Parquet drops in the lake, and window runs that failed."""

import dagster as dg

from musicnft_dagster.sensors.drops import lake_drop_sensor
from musicnft_dagster.sensors.reruns import failed_windows_sensor

defs = dg.Definitions(sensors=[lake_drop_sensor, failed_windows_sensor])
