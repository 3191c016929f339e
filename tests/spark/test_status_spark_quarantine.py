"""`musicnft status` counts the raw drops the Spark scoring job quarantined (its ledger under
`checkpoints/spark-score-files/`) as `spark_quarantined_files`, and `--check --max-quarantined N`
fails when there are more than N."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.app.cli import main
from musicnft.app.status import Thresholds, health_line, health_problems
from musicnft.contract.lake_layout import raw_key
from musicnft.spark.lake_fs import LakeRoot
from musicnft.spark.quarantine import LEDGER_PREFIX, FileCheck, ledger_quarantined
from tests.support.spark_lake import START, STREAM, parquet_bytes, post


def _status(data_dir: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
    code = main(["status", "--data-dir", str(data_dir), *flags])
    return code, capsys.readouterr().out


def test_status_check_counts_the_spark_job_s_quarantined_drops(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a lake where the Spark job's file check found two unreadable drops and one good one
    EmbeddedWarehouse(data_dir / "warehouse").query("SELECT 1")  # an empty warehouse
    lake_dir = data_dir / "lake"
    lake = LakeRoot.of(str(lake_dir))
    lake.put(raw_key(STREAM, START, "good"), parquet_bytes([post(1, START, START)]))
    lake.put(raw_key(STREAM, START, "garbage"), b"not parquet")
    lake.put(raw_key(STREAM, START, "cut"), parquet_bytes([post(2, START, START)])[:40])
    assert len(FileCheck(lake).run()) == 2
    # the batch path saw none of them (its lake_quarantine is empty)
    code, out = _status(data_dir, capsys, "--json")
    status = json.loads(out)
    assert code == 0
    assert status["spark_quarantined_files"] == 2 and status["lake_quarantined"] == 0

    # WHEN the probe runs with the default --max-quarantined 0, THEN it is unhealthy, naming it
    code, out = _status(data_dir, capsys, "--check", "--max-age", "0")
    assert code == 1, out
    assert "2 raw files quarantined by the Spark job > 0" in out
    # AND with --max-quarantined 2 it passes, the count in its line
    code, out = _status(data_dir, capsys, "--check", "--max-age", "0", "--max-quarantined", "2")
    assert code == 0, out
    assert "spark quarantined 2" in out
    # AND the table of `musicnft status` shows it
    code, out = _status(data_dir, capsys)
    assert code == 0 and "raw files quarantined by the Spark job" in out


def test_the_ledger_is_read_through_the_lake_port_and_a_bad_object_is_skipped(
    tmp_path: Path,
) -> None:
    lake = LakeRoot.of(str(tmp_path))
    lake.put(raw_key(STREAM, START, "garbage"), b"not parquet")
    bad = FileCheck(lake).run()
    lake.put(f"{LEDGER_PREFIX}checked-broken.json", b"{half")
    lake.put(f"{LEDGER_PREFIX}notes.txt", b"not a ledger object")
    assert ledger_quarantined(LocalLake(tmp_path)) == bad and len(bad) == 1
    assert ledger_quarantined(LocalLake(tmp_path / "empty")) == {}


def test_health_counts_spark_quarantined_files_against_max_quarantined() -> None:
    assert health_problems({"spark_quarantined_files": 1}, Thresholds()) == [
        "1 raw files quarantined by the Spark job > 0"
    ]
    assert health_problems({"spark_quarantined_files": 1}, Thresholds(max_quarantined=1)) == []
    assert health_problems({"spark_quarantined_files": None}, Thresholds()) == []
    assert "spark quarantined 0" in health_line({"spark_quarantined_files": 0}, [])
