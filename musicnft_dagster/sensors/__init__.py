"""Sensors: new Parquet drops in the lake, window runs that failed, and deletions to apply."""

import dagster as dg

from musicnft_dagster.sensors.deletions import deletions_sensor
from musicnft_dagster.sensors.drops import lake_drop_sensor
from musicnft_dagster.sensors.reruns import failed_windows_sensor

defs = dg.Definitions(sensors=[lake_drop_sensor, failed_windows_sensor, deletions_sensor])
