"""`musicnft status` counts the lake through the Lake port; children get explicit environments."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from musicnft.adapters.local_lake import LocalLake
from musicnft.app.processes import child_env, dagster_env, dashboard_env
from musicnft.app.status import lake_counts
from musicnft.settings import Settings


def _parquet(ids: list[str]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"post_id": ids}), buf)
    return buf.getvalue()


def test_lake_counts_through_the_port(tmp_path: Path) -> None:
    # GIVEN a lake with two drops (one post in both), a writer's temp file, and error files
    lake = LocalLake(tmp_path / "lake")
    lake.put("raw/2021/12/01/00/a.parquet", _parquet(["1", "2", "3"]))
    lake.put("raw/2021/12/01/01/b.parquet", _parquet(["3", "4"]))
    hidden = tmp_path / "lake" / "raw" / "2021" / "12" / "01" / "01" / ".c.parquet.tmp"
    hidden.write_bytes(_parquet(["9"]))
    lake.put("errors/processing-failed/2021/12/01/00/e1", b'{"a": 1}\n{"b": 2}\n')
    lake.put("errors/processing-failed/2021/12/01/00/e2", b'{"c": 3}')  # no final newline
    # WHEN status counts it
    counts = lake_counts(lake)
    # THEN every row, unique post, visible file and error line is counted
    assert counts == {"lake": 5, "lake_unique": 4, "lake_files": 2, "lake_errors": 3}


def test_an_empty_lake_counts_zero(tmp_path: Path) -> None:
    assert lake_counts(LocalLake(tmp_path / "nothing")) == {
        "lake": 0,
        "lake_unique": 0,
        "lake_files": 0,
        "lake_errors": 0,
    }


def test_child_environments_are_built_not_written(tmp_path: Path) -> None:
    # GIVEN settings naming a data directory and a Dagster instance
    before = dict(os.environ)
    settings = Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "dh")
    # WHEN the children's environments are built
    env = child_env(settings, EXTRA="1")
    dash = dashboard_env(settings)
    dag = dagster_env(settings)
    # THEN they carry the settings explicitly, start from ours, and ours is untouched
    assert env["MUSICNFT_DATA_DIR"] == str((tmp_path / "data").resolve())
    assert env["DAGSTER_HOME"] == str(tmp_path / "dh")
    assert env["EXTRA"] == "1"
    assert env.get("PATH") == os.environ.get("PATH")
    assert dash["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] == "false"
    assert dag["DAGSTER_DISABLE_TELEMETRY"] == "1" and dag["DAGSTER_HOME"] == str(tmp_path / "dh")
    assert dict(os.environ) == before
