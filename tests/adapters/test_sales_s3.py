"""Sales on the cloud profile's lake (S3, moto server): the collector lands them under sales/,
the drop sensor's listing finds them by hour folder, and a window reads them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.s3_lake import S3Lake
from musicnft.batch.backfill import index_lake
from musicnft.batch.sales import build_sales
from musicnft.hotpath.deadletter import DeadLetter
from musicnft_dagster.sensors.drops import list_drops
from producer.opensea import OpenSeaApi
from producer.sales import SalesCollector, SalesState
from producer.x_stream import Secret
from tests.support.aws import client, moto_server
from tests.support.fake_opensea import KEY, fake_opensea, sale_event

pytestmark = pytest.mark.slow

W = datetime(2021, 12, 1, 10, 0, tzinfo=UTC)


def test_sales_land_in_s3_and_build_their_window(tmp_path: Path) -> None:
    with moto_server() as endpoint, fake_opensea() as fake:
        client("s3", endpoint).create_bucket(Bucket="lake")
        lake = S3Lake("lake", endpoint_url=endpoint)
        fake.events["tapes"] = [
            sale_event(i, "tapes", int((W + timedelta(minutes=i)).timestamp())) for i in range(3)
        ]
        read_at = datetime.now(UTC)
        collector = SalesCollector(
            OpenSeaApi(fake.url, Secret(KEY), min_interval=0),
            lake,
            SalesState(tmp_path / "state.sqlite"),
            DeadLetter(tmp_path / "dl", "sales"),
            now=lambda: read_at,
        )
        report = collector.collect("tapes", W, W + timedelta(hours=1))
        assert report.key is not None and report.key.startswith("sales/")
        listed = [o.key for o in list_drops(lake, read_at - timedelta(hours=1))]
        assert report.key in listed
        wh = EmbeddedWarehouse(tmp_path / "warehouse")
        assert index_lake(lake, wh) == 1
        result = build_sales(lake, wh, W)
        assert (result.sales, result.rows) == (3, 1)
