"""Sales windows: the pure aggregation, then a window built from a real lake and warehouse.

The lake holds sales files the way the collector leaves them (a sale read twice, a changed one,
sales of neighbouring windows, a non-ETH sale), beside a post file under raw/; every expectation
is worked out by hand.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.batch import sales as bs
from musicnft.batch import window_pipeline as wp
from musicnft.batch.backfill import index_lake, materialize_window, windows_with_posts
from musicnft.batch.lake_index import LakeIndex
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.lake_layout import raw_key, sales_key
from musicnft.contract.schema import POST_SCHEMA, format_timestamp, to_table
from musicnft.contract.windows import WINDOW
from musicnft.hotpath.normalize_opensea import normalize_opensea_event
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.settings import DEFAULT_KEYWORDS
from tests.support.fake_opensea import WEI, sale_event
from tests.support.records import x_message

pytestmark = pytest.mark.slow

W = datetime(2021, 12, 1, 10, 0, tzinfo=UTC)
READ1 = datetime(2021, 12, 1, 11, 0, tzinfo=UTC)
READ2 = datetime(2021, 12, 1, 11, 5, tzinfo=UTC)


def at(minutes: float) -> int:
    return int((W + timedelta(minutes=minutes)).timestamp())


def sale(i: int, minutes: float, read: datetime = READ1, slug: str = "tapes", **kw: object) -> dict:
    return normalize_opensea_event(sale_event(i, slug, at(minutes), **kw), slug, read)  # type: ignore[arg-type]


# ---- pure


def test_aggregate_one_row_per_collection_with_sales() -> None:
    sales = [
        sale(1, 1, wei=WEI, buyer="0xAB"),
        sale(2, 2, wei=3 * WEI, buyer="0xab"),  # the same buyer, another spelling
        sale(3, 3, wei=2 * WEI, symbol="WETH"),
        sale(4, 4, wei=5_000_000, symbol="USDC", decimals=6),  # a sale, but no ETH price
        sale(5, 5, slug="shards", wei=WEI // 2),
    ]
    now = datetime(2021, 12, 2, tzinfo=UTC)
    rows = bs.aggregate_sales(sales, W, now)
    assert rows == [
        {
            "window_start": W,
            "collection": "shards",
            "sale_count": 1,
            "volume_eth": 0.5,
            "avg_price_eth": 0.5,
            "max_price_eth": 0.5,
            "unique_buyers": 1,
            "updated_at": now,
        },
        {
            "window_start": W,
            "collection": "tapes",
            "sale_count": 4,
            "volume_eth": 6.0,
            "avg_price_eth": 2.0,
            "max_price_eth": 3.0,
            "unique_buyers": 3,
            "updated_at": now,
        },
    ]


def test_only_non_eth_sales_have_volume_zero_and_no_average() -> None:
    rows = bs.aggregate_sales([sale(1, 1, symbol="USDC", decimals=6)], W, W)
    assert (rows[0]["sale_count"], rows[0]["volume_eth"]) == (1, 0.0)
    assert rows[0]["avg_price_eth"] is None and rows[0]["max_price_eth"] is None


def test_no_sales_no_rows() -> None:
    assert bs.aggregate_sales([], W, W) == []


def test_dedupe_keeps_the_latest_read() -> None:
    first = sale(1, 1, READ1, wei=WEI)
    corrected = sale(1, 1, READ2, wei=2 * WEI)
    assert first["sale_id"] == corrected["sale_id"]
    assert bs.dedupe_sales([corrected, first]) == [corrected]
    assert bs.dedupe_sales([first, corrected, sale(2, 0)])[0]["nft_identifier"] == "2"


# ---- from the lake


@pytest.fixture
def lake(tmp_path: Path) -> LocalLake:
    return LocalLake(tmp_path / "lake")


@pytest.fixture
def wh(tmp_path: Path) -> EmbeddedWarehouse:
    return EmbeddedWarehouse(tmp_path / "warehouse")


def put(lake: LocalLake, rows: list[dict], read: datetime) -> str:
    key = sales_key("opensea", read)
    lake.put(key, bs.sales_parquet(rows))
    return key


def fill(lake: LocalLake) -> None:
    # the first read: three sales of the window, one of the next
    put(lake, [sale(1, 1, wei=WEI), sale(2, 2, wei=WEI), sale(3, 14, wei=WEI), sale(9, 16)], READ1)
    # a re-read: sale 1 unchanged, sale 2 corrected, a late sale 4, and one of another collection
    put(
        lake,
        [
            sale(1, 1, READ2, wei=WEI),
            sale(2, 2, READ2, wei=4 * WEI),
            sale(4, 10, READ2, wei=WEI, symbol="USDC", decimals=6),
            sale(5, 5, READ2, slug="shards", wei=WEI // 4),
        ],
        READ2,
    )


def table(wh: EmbeddedWarehouse, window: datetime = W) -> list[dict]:
    rows = wh.query(
        "SELECT * FROM nft_sales_15m WHERE window_start = ? ORDER BY collection", [window]
    ).to_pylist()
    return [{k: v for k, v in r.items() if k != "updated_at"} for r in rows]


def test_a_window_counts_each_sale_once_with_its_latest_read(
    lake: LocalLake, wh: EmbeddedWarehouse
) -> None:
    fill(lake)
    assert index_lake(lake, wh) == 2
    result = bs.build_sales(lake, wh, W)
    assert (result.sales, result.lake_rows, result.rows, len(result.files_read)) == (5, 7, 2, 2)
    assert result.duplicates_in_lake == 2  # sales 1 and 2 were read twice
    shards, tapes = table(wh)
    assert shards == {
        "window_start": W,
        "collection": "shards",
        "sale_count": 1,
        "volume_eth": 0.25,
        "avg_price_eth": 0.25,
        "max_price_eth": 0.25,
        "unique_buyers": 1,
    }
    assert tapes["sale_count"] == 4  # ids 1, 2, 3 and 4 (paid in USDC)
    assert tapes["volume_eth"] == pytest.approx(6.0)  # 1 + 4 (the corrected read) + 1
    assert tapes["avg_price_eth"] == pytest.approx(2.0) and tapes["max_price_eth"] == 4.0
    assert tapes["unique_buyers"] == 4
    ok, detail = bs.check_sales_counted_once(wh, W, result.sales)
    assert ok and detail == {"sale_ids": 5, "counted": 5, "duplicate_rows": 0}
    assert bs.check_sales_prices(wh, W) == (True, 0)
    # the next window holds only sale 9
    nxt = bs.build_sales(lake, wh, W + WINDOW)
    assert nxt.sales == 1 and table(wh, W + WINDOW)[0]["sale_count"] == 1


def test_running_a_window_twice_leaves_the_same_table(
    lake: LocalLake, wh: EmbeddedWarehouse
) -> None:
    fill(lake)
    index_lake(lake, wh)
    bs.build_sales(lake, wh, W)
    before = table(wh)
    bs.build_sales(lake, wh, W)
    assert table(wh) == before
    assert wh.count("nft_sales_15m") == 2


def test_sales_and_posts_files_stay_apart(lake: LocalLake, wh: EmbeddedWarehouse) -> None:
    fill(lake)
    raw = raw_key("musicnft-posts", READ1)
    created = W + timedelta(minutes=3)
    post = normalize_x_message(
        x_message(1, created=format_timestamp(created)),
        KeywordMatcher(DEFAULT_KEYWORDS),
        created + timedelta(seconds=2),
    )
    buf = io.BytesIO()
    pq.write_table(to_table([post], POST_SCHEMA), buf)
    lake.put(raw, buf.getvalue())
    index_lake(lake, wh)
    index = LakeIndex(wh)
    assert index.files_for_window(W) == [raw]
    assert all(k.startswith("sales/") for k in index.files_for_window(W, prefix="sales/"))
    posts = wp.build_posts(lake, wh, W)
    assert (posts.unique_posts, posts.files_read) == (1, [raw])
    assert bs.build_sales(lake, wh, W).sales == 5
    # a backfill covers windows with sales only (W + 15 min holds sale 9 and no post)
    assert {W, W + WINDOW} <= set(windows_with_posts(wh))
    outcome = materialize_window(lake, wh, W + WINDOW, ["nft"])
    assert outcome.passed and outcome.sales is not None and outcome.sales.sales == 1
    assert outcome.checks["nft_sales_15m.sale_ids_unique"][0]


def test_an_unreadable_sales_file_is_quarantined_and_the_window_still_builds(
    lake: LocalLake, wh: EmbeddedWarehouse
) -> None:
    fill(lake)
    bad = sales_key("opensea", READ2 + timedelta(minutes=1))
    sink = io.BytesIO()
    # the time column, but no sale_id or collection: not a sales file of ours
    pq.write_table(pa.table({"event_timestamp": pa.array([W], pa.timestamp("us", tz="UTC"))}), sink)
    lake.put(bad, sink.getvalue())
    index_lake(lake, wh)
    result = bs.build_sales(lake, wh, W)
    assert bad not in result.files_read and result.sales == 5
    assert bad in LakeIndex(wh).quarantined()
    assert "required" in LakeIndex(wh).quarantined()[bad]


def test_a_negative_price_from_a_foreign_writer_is_left_out_and_reported(
    lake: LocalLake, wh: EmbeddedWarehouse
) -> None:
    bad = sale(7, 3)
    bad["price"] = Decimal("-1")
    bad["price_eth"] = -1.0
    put(lake, [sale(1, 1, wei=WEI), bad], READ1)
    index_lake(lake, wh)
    result = bs.build_sales(lake, wh, W)
    assert (result.sales, result.negative_prices) == (1, 1)
    assert bs.check_sales_prices(wh, W) == (True, 0)
    outcome = materialize_window(lake, wh, W, ["nft"])
    assert not outcome.checks["nft_sales_15m.prices_non_negative"][0]
