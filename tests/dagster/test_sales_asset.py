"""`nft_sales_15m` in Dagster: the drop sensor notices sales drops, the asset materializes a
window's sales with its checks, and running it again changes nothing."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.batch.sales import sales_parquet
from musicnft.contract.lake_layout import sales_key
from musicnft.contract.windows import window_key
from musicnft.hotpath.normalize_opensea import normalize_opensea_event
from musicnft_dagster.assets.sales import SALES_ASSETS
from musicnft_dagster.definitions import defs
from musicnft_dagster.jobs import WINDOWS_TAG
from musicnft_dagster.resources import EmbeddedWarehouseResource, LocalLakeResource
from musicnft_dagster.sensors.drops import lake_drop_sensor
from musicnft_dagster.windows import window_run
from tests.support.fake_opensea import WEI, sale_event

pytestmark = pytest.mark.slow

W = datetime(2021, 12, 1, 10, 0, tzinfo=UTC)
KEY = window_key(W)


def at(minutes: float) -> int:
    return int((W + timedelta(minutes=minutes)).timestamp())


def sale(i: int, minutes: float, read: datetime, slug: str = "tapes", wei: int = WEI) -> dict:
    return normalize_opensea_event(sale_event(i, slug, at(minutes), wei=wei), slug, read)


def resources(root: Path) -> dict[str, object]:
    return {
        "lake": LocalLakeResource(root=str(root / "lake")),
        "warehouse": EmbeddedWarehouseResource(root=str(root / "warehouse")),
    }


def drop(root: Path, rows: list[dict], read: datetime) -> str:
    lake = LocalLake(root / "lake")
    key = sales_key("opensea", read)
    lake.put(key, sales_parquet(rows))
    now = datetime.now(UTC).timestamp()
    os.utime(root / "lake" / key, (now, now))
    return key


def tick(root: Path, cursor: str | None = None) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(
        cursor=cursor, resources=resources(root), instance=dg.DagsterInstance.ephemeral()
    )
    result = lake_drop_sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def test_the_asset_is_a_window_asset_with_its_checks() -> None:
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    key = dg.AssetKey("nft_sales_15m")
    assert key in graph.get_all_asset_keys()
    checks = {c.name for c in graph.asset_check_keys if c.asset_key == key}
    assert checks == {"sale_ids_unique", "prices_non_negative"}
    job = repo.get_job("window_refresh")
    assert "nft_sales_15m" in {n.name for n in job.graph.node_defs}
    node = graph.get(key)
    assert node.description and "sale_id" in node.description


def test_a_sales_drop_requests_a_run_of_its_windows(tmp_path: Path) -> None:
    read = datetime(2021, 12, 1, 11, 0, tzinfo=UTC)
    key = drop(tmp_path, [sale(1, 1, read), sale(2, 20, read)], read)
    result = tick(tmp_path)
    assert isinstance(result, dg.SensorResult)
    requests = list(result.run_requests or [])
    assert [r.partition_key for r in requests] == ["2021-12-01"]
    assert requests[0].tags[WINDOWS_TAG] == f"{KEY},{window_key(W + timedelta(minutes=15))}"
    indexed = EmbeddedWarehouse(tmp_path / "warehouse").query(
        "SELECT key, min_created_at, max_created_at FROM lake_files"
    )
    assert indexed.to_pylist() == [
        {"key": key, "min_created_at": W + timedelta(minutes=1),
         "max_created_at": W + timedelta(minutes=20)}
    ]  # fmt: skip
    # the next tick has nothing new
    again = tick(tmp_path, result.cursor)
    assert not (isinstance(again, dg.SensorResult) and again.run_requests)


def test_materializing_a_window_twice_counts_each_sale_once(tmp_path: Path) -> None:
    first_read = datetime(2021, 12, 1, 11, 0, tzinfo=UTC)
    second_read = first_read + timedelta(minutes=1)
    drop(tmp_path, [sale(1, 1, first_read), sale(2, 2, first_read)], first_read)
    drop(tmp_path, [sale(2, 2, second_read, wei=3 * WEI), sale(3, 5, second_read)], second_read)
    assert isinstance(tick(tmp_path), dg.SensorResult)  # indexes both files

    def run() -> tuple[dg.ExecuteInProcessResult, list[dict]]:
        result = dg.materialize(SALES_ASSETS, **window_run(KEY), resources=resources(tmp_path))
        rows = EmbeddedWarehouse(tmp_path / "warehouse").query(
            "SELECT collection, sale_count, volume_eth, max_price_eth FROM nft_sales_15m "
            "WHERE window_start = ?",
            [W],
        )
        return result, rows.to_pylist()

    first, rows = run()
    assert first.success
    assert rows == [
        {"collection": "tapes", "sale_count": 3, "volume_eth": 5.0, "max_price_eth": 3.0}
    ]
    evaluations = first.get_asset_check_evaluations()
    assert {e.check_name: e.passed for e in evaluations} == {
        "sale_ids_unique": True,
        "prices_non_negative": True,
    }
    meta = first.asset_materializations_for_node("nft_sales_15m")[-1].metadata
    assert meta["sales"].value == 3 and meta["duplicates_in_lake"].value == 1
    second, again = run()
    assert second.success and again == rows
