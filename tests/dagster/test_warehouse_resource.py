"""The embedded warehouse resource opens one warehouse per run (or sensor tick), not one per step:
each new warehouse attaches the DuckLake catalog twice, and a window run has a dozen steps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.tables import TABLES
from musicnft_dagster.resources import EmbeddedWarehouseResource


def _counts_row() -> pa.Table:
    return pa.Table.from_pylist(
        [{"window_start": datetime(2021, 12, 1, tzinfo=UTC), "hashtag": "nft", "post_count": 3}],
        schema=TABLES["hashtag_counts_15m"],
    )


def test_every_step_of_a_run_gets_the_same_warehouse_and_sees_the_others_writes(
    tmp_path: Path,
) -> None:
    seen: list[EmbeddedWarehouse] = []

    @dg.asset
    def writes(warehouse: EmbeddedWarehouseResource) -> None:
        wh = warehouse.warehouse()
        seen.append(wh)
        wh.append("hashtag_counts_15m", _counts_row())

    @dg.asset(deps=[writes])
    def reads(warehouse: EmbeddedWarehouseResource) -> int:
        wh = warehouse.warehouse()
        seen.append(wh)
        return wh.count("hashtag_counts_15m")

    @dg.asset(deps=[reads])
    def reads_again(warehouse: EmbeddedWarehouseResource) -> None:
        seen.append(warehouse.warehouse())

    resource = EmbeddedWarehouseResource(root=str(tmp_path / "wh"))
    result = dg.materialize([writes, reads, reads_again], resources={"warehouse": resource})

    assert result.success
    assert result.output_for_node("reads") == 1
    assert len(seen) == 3 and seen[0] is seen[1] is seen[2]
    # a second run opens its own
    again = dg.materialize([reads_again], resources={"warehouse": resource})
    assert again.success and seen[3] is not seen[0]


def test_outside_an_execution_each_call_opens_a_new_warehouse(tmp_path: Path) -> None:
    resource = EmbeddedWarehouseResource(root=str(tmp_path / "wh"))
    first, second = resource.warehouse(), resource.warehouse()
    assert first is not second
    first.append("hashtag_counts_15m", _counts_row())
    assert second.count("hashtag_counts_15m") == 1


def test_a_sensor_context_built_without_with_still_reaches_the_warehouse(tmp_path: Path) -> None:
    # A resource with a teardown hook becomes a context manager, and this (Dagster's documented
    # way to test a sensor) would raise "attempting to access resources outside of context
    # manager scope".
    opened: list[Any] = []

    @dg.sensor(target=dg.AssetSelection.all())
    def counting(context: dg.SensorEvaluationContext, warehouse: EmbeddedWarehouseResource):
        wh = warehouse.warehouse()
        opened.extend([wh, warehouse.warehouse()])
        return dg.SkipReason(f"{wh.count('posts_hot')} posts")

    resource = EmbeddedWarehouseResource(root=str(tmp_path / "wh"))
    for _ in range(2):
        context = dg.build_sensor_context(resources={"warehouse": resource})
        assert counting(context).skip_message == "0 posts"
    assert opened[0] is opened[1]
    assert opened[2] is opened[3] and opened[2] is not opened[0]
