"""The Dagster maintenance job runs DuckLake's maintenance on the embedded warehouse, on a schedule."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.tables import TABLES
from musicnft.settings import Settings
from musicnft_dagster.assets.maintenance import (
    warehouse_maintenance_job,
    warehouse_maintenance_schedule,
)
from musicnft_dagster.definitions import defs
from musicnft_dagster.resources import EmbeddedWarehouseResource


def _lake_file(i: int) -> pa.Table:
    return pa.Table.from_pylist([{"key": f"raw/{i}.parquet"}], schema=TABLES["lake_files"])


def test_the_job_merges_and_cleans_up_and_reports_counts(tmp_path: Path) -> None:
    # GIVEN twelve one-row appends
    wh = EmbeddedWarehouse(tmp_path)
    for i in range(12):
        wh.append("lake_files", _lake_file(i))
    assert len(wh.files("lake_files")) == 12
    # WHEN the job runs (no retention)
    result = warehouse_maintenance_job.execute_in_process(
        resources={"warehouse": EmbeddedWarehouseResource(root=str(tmp_path))},
        run_config={"ops": {"maintain_warehouse": {"config": {"retention_hours": 0}}}},
    )
    # THEN the files are merged and the old ones deleted, and the run's output says so
    assert result.success
    counts = result.output_for_node("maintain_warehouse")
    assert counts["files_merged"] == 12 and counts["files_deleted"] >= 12
    assert len(wh.files("lake_files")) == 1
    assert wh.count("lake_files") == 12
    on_disk = list((tmp_path / "data").rglob("*.parquet"))
    assert len(on_disk) == 1


def test_the_schedule_is_registered_with_the_settings_cron() -> None:
    repo = defs.get_repository_def()
    assert "warehouse_maintenance_schedule" in {s.name for s in repo.schedule_defs}
    assert "warehouse_maintenance" in {j.name for j in repo.get_all_jobs()}
    assert warehouse_maintenance_schedule.cron_schedule == Settings().warehouse_maintenance_cron


def test_retention_and_cron_come_from_the_environment() -> None:
    s = Settings.from_env(
        {
            "MUSICNFT_WAREHOUSE_RETENTION_HOURS": "6",
            "MUSICNFT_WAREHOUSE_MAINTENANCE_CRON": "5 */2 * * *",
        }
    )
    assert (s.warehouse_retention_hours, s.warehouse_maintenance_cron) == (6.0, "5 */2 * * *")
    assert Settings.from_env({}).warehouse_retention_hours == 24.0


def test_the_catalog_setting_takes_postgres_or_nothing() -> None:
    import pytest

    from musicnft.settings import ConfigError

    pg = "postgres:dbname=musicnft host=db"
    s = Settings.from_env({"MUSICNFT_WAREHOUSE_CATALOG": pg})
    assert (s.warehouse_catalog, Settings.from_env({}).warehouse_catalog) == (pg, "")
    assert pg not in repr(s)  # a password may be in it
    with pytest.raises(ConfigError, match="MUSICNFT_WAREHOUSE_CATALOG"):
        Settings.from_env({"MUSICNFT_WAREHOUSE_CATALOG": "mysql:db"})
