"""NFT sales on BigQuery (the local emulator): a window of `nft_sales_15m` replaced through the
BigQuery adapter, the `looker_nft_sales` view over it, and the dashboard's sales queries on the
same rows as on the embedded warehouse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from dashboard import sales_queries as sq
from musicnft.batch import sales as bs
from musicnft.contract.tables import NFT_SALES_SCHEMA
from musicnft.contract.windows import window_key
from musicnft.hotpath.normalize_opensea import normalize_opensea_event
from tests.support.bq import fresh_warehouse
from tests.support.fake_opensea import WEI, sale_event

pytestmark = pytest.mark.slow

W = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
NOW = datetime(2024, 5, 1, 11, 0, tzinfo=UTC)


def rows_for(window: datetime) -> list[dict]:
    t = int(window.timestamp()) + 60
    sales = [
        normalize_opensea_event(sale_event(1, "tapes", t, wei=WEI), "tapes", NOW),
        normalize_opensea_event(sale_event(2, "tapes", t, wei=3 * WEI), "tapes", NOW),
        normalize_opensea_event(
            sale_event(3, "tapes", t, wei=10**6, symbol="USDC", decimals=6), "tapes", NOW
        ),
        normalize_opensea_event(sale_event(4, "shards", t, wei=WEI // 2), "shards", NOW),
    ]
    return bs.aggregate_sales(sales, window, NOW)


def test_sales_window_view_and_queries(bq_endpoint: str) -> None:
    wh = fresh_warehouse(bq_endpoint, "sales")
    for window in (W, W + timedelta(minutes=15)):
        data = pa.Table.from_pylist(rows_for(window), schema=NFT_SALES_SCHEMA)
        wh.replace_partition("nft_sales_15m", window_key(window), data)
    # replacing a window again leaves the same rows (idempotent on BigQuery too)
    again = pa.Table.from_pylist(rows_for(W), schema=NFT_SALES_SCHEMA)
    wh.replace_partition("nft_sales_15m", window_key(W), again)
    assert wh.count("nft_sales_15m") == 4
    view = wh.query(
        "SELECT collection, SUM(sales) AS sales, SUM(volume_eth) AS volume, "
        "SUM(eth_priced_sales) AS eth_sales, MAX(max_price_eth) AS top, MIN(hour) AS hour "
        "FROM looker_nft_sales GROUP BY collection ORDER BY collection"
    ).to_pylist()
    assert [(r["collection"], r["sales"], r["eth_sales"]) for r in view] == [
        ("shards", 2, 2),
        ("tapes", 6, 4),  # the USDC sales count as sales, not in the ETH average's weight
    ]
    assert view[1]["volume"] == pytest.approx(8.0) and view[1]["top"] == pytest.approx(3.0)
    # a Looker re-aggregated average: SUM(volume_eth) / SUM(eth_priced_sales)
    assert view[1]["volume"] / view[1]["eth_sales"] == pytest.approx(2.0)
    assert view[0]["hour"] == W
    got = sq.sales_by_window(wh, W, W + timedelta(hours=1), "tapes")
    assert [(r["window_start"], r["sales"]) for r in got] == [
        (W, 3),
        (W + timedelta(minutes=15), 3),
    ]
    assert [c["collection"] for c in sq.collections(wh, W, W + timedelta(hours=1))] == [
        "tapes",
        "shards",
    ]
