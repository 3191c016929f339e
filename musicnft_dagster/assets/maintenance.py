"""Warehouse maintenance on a schedule: DuckLake's own merge, snapshot expiry and file cleanup.

A job (not an asset: it changes no table's content, only how the tables are stored) that the
schedule launches every hour by default (`MUSICNFT_WAREHOUSE_MAINTENANCE_CRON`); its run shows
the counts in the UI. Retention comes from `MUSICNFT_WAREHOUSE_RETENTION_HOURS` unless the run
config overrides it. BigQuery maintains its own storage: there the job only says so.
"""

from datetime import timedelta

import dagster as dg
from dagster._utils.schedules import is_valid_cron_string

from musicnft.settings import Settings
from musicnft_dagster.resources import WarehouseResource

MAINTENANCE_TAG = "musicnft/maintenance"


class MaintenanceConfig(dg.Config):
    retention_hours: float | None = None  # None: MUSICNFT_WAREHOUSE_RETENTION_HOURS


@dg.op(
    description="Merge small files, expire snapshots older than the retention, delete files "
    "no kept snapshot needs (DuckLake's own calls); one transaction per step.",
)
def maintain_warehouse(
    context: dg.OpExecutionContext, config: MaintenanceConfig, warehouse: WarehouseResource
) -> dg.Output[dict]:
    wh = warehouse.warehouse()
    if not hasattr(wh, "maintain"):
        context.log.info("the %s warehouse maintains its own storage", type(wh).__name__)
        return dg.Output({}, metadata={"skipped": True})
    hours = config.retention_hours
    if hours is None:
        hours = Settings.from_env().warehouse_retention_hours
    counts = wh.maintain(retention=timedelta(hours=hours))
    context.log.info("warehouse maintenance (retention %s h): %s", hours, counts)
    metadata: dict = {**counts, "retention_hours": float(hours)}
    if hasattr(wh, "table_stats"):
        stats = wh.table_stats()
        metadata["data_files"] = sum(s["data_files"] for s in stats.values())
        metadata["tables"] = dg.MetadataValue.json(stats)
    return dg.Output(counts, metadata=metadata)


@dg.job(
    name="warehouse_maintenance",
    description="DuckLake maintenance of the embedded warehouse (merge, expire, clean up).",
    tags={MAINTENANCE_TAG: "true"},
)
def warehouse_maintenance_job() -> None:
    maintain_warehouse()


def _cron() -> str:
    cron = Settings.from_env().warehouse_maintenance_cron
    return cron if is_valid_cron_string(cron) else Settings().warehouse_maintenance_cron


warehouse_maintenance_schedule = dg.ScheduleDefinition(
    name="warehouse_maintenance_schedule",
    job=warehouse_maintenance_job,
    cron_schedule=_cron(),
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Run the warehouse maintenance job (MUSICNFT_WAREHOUSE_MAINTENANCE_CRON).",
)

MAINTENANCE_JOBS = [warehouse_maintenance_job]
MAINTENANCE_SCHEDULES = [warehouse_maintenance_schedule]
