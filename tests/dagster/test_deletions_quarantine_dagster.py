"""The daily deletions sweep through Dagster with a quarantined lake file (issue 19, gap 3):
its check fails naming the file that blocks a deletion and why, and passes once the file is
repaired and redriven."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.app.deletions import redrive_quarantined
from musicnft.batch import deletions
from musicnft_dagster.assets.deletions import CHECK, deletions_asset
from musicnft_dagster.resources import EmbeddedWarehouseResource, LocalLakeResource
from tests.batch.test_deletions import post, tomb
from tests.batch.test_deletions_quarantine import parquet, quarantined_file

pytestmark = pytest.mark.slow  # two Dagster runs in process


def sweep(root: Path) -> dg.AssetCheckEvaluation:
    result = dg.materialize(
        [deletions_asset],
        resources={
            "lake": LocalLakeResource(root=str(root / "lake")),
            "warehouse": EmbeddedWarehouseResource(root=str(root / "warehouse")),
        },
    )
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == CHECK
    return check


def test_sweep_check_names_the_quarantined_file_until_it_is_redriven(tmp_path: Path) -> None:
    lake, wh = LocalLake(tmp_path / "lake"), EmbeddedWarehouse(tmp_path / "warehouse")
    p = post(7)
    good = parquet([p, post(8)])
    key = quarantined_file(lake, wh, b"PAR1 garbage", "corrupt: magic")
    deletions.record_tombstones(wh, lake, [tomb(p["post_id"])])
    wh.close()
    failing = sweep(tmp_path)
    assert not failing.passed
    assert failing.metadata["blocked_files"].value == 1
    blocked = str(failing.metadata["blocked"].value)
    assert key in blocked and "cannot be read" in blocked
    # WHEN the file is restored and redriven, THEN the sweep's check passes
    lake.put(key, good)
    wh = EmbeddedWarehouse(tmp_path / "warehouse")
    assert redrive_quarantined(lake, wh).ok
    wh.close()
    assert sweep(tmp_path).passed
