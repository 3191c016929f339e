"""The "sales beside talk" panel: its queries on known rows, and the panel rendered headless."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import sales_queries as sq
from musicnft.contract.tables import NFT_SALES_SCHEMA
from musicnft.contract.windows import window_key
from tests.support import dashboard_fixture as fx
from tests.support.paths import ROOT

APP = str(ROOT / "dashboard" / "app.py")
START = datetime(2021, 12, 1, tzinfo=UTC)
END = datetime(2021, 12, 3, tzinfo=UTC)
# window -> collection -> (sales, volume_eth, max_price_eth, buyers)
SALES = {
    fx.W1: {"genesis-tapes": (3, 1.5, 0.9, 2), "sonic-shards": (1, 0.1, 0.1, 1)},
    fx.W3: {"genesis-tapes": (2, 0.4, 0.3, 2)},
    datetime(2021, 12, 1, 12, 0, tzinfo=UTC): {"sonic-shards": (4, 0.0, None, 3)},  # no posts
}


def fill_sales(wh: object) -> None:
    for window, by_collection in SALES.items():
        rows = [
            {
                "window_start": window,
                "collection": c,
                "sale_count": n,
                "volume_eth": vol,
                "avg_price_eth": (vol / n) if top is not None else None,
                "max_price_eth": top,
                "unique_buyers": buyers,
                "updated_at": fx.UPDATED,
            }
            for c, (n, vol, top, buyers) in by_collection.items()
        ]
        wh.replace_partition(  # type: ignore[attr-defined]
            "nft_sales_15m", window_key(window), pa.Table.from_pylist(rows, schema=NFT_SALES_SCHEMA)
        )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    wh = fx.build(tmp_path / "data" / "warehouse")
    fill_sales(wh)
    return tmp_path / "data"


@pytest.fixture
def wh(data_dir: Path) -> object:
    from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse

    return EmbeddedWarehouse(data_dir / "warehouse", read_only=True)


def test_collections_busiest_first(wh: object) -> None:
    got = sq.collections(wh, START, END)
    assert [(r["collection"], r["sales"]) for r in got] == [
        ("genesis-tapes", 5),
        ("sonic-shards", 5),
    ]
    assert got[0]["volume_eth"] == pytest.approx(1.9)


def test_sales_and_talk_side_by_side_on_one_axis(wh: object) -> None:
    sales = sq.sales_by_window(wh, START, END, "genesis-tapes")
    assert [(r["window_start"], r["sales"]) for r in sales] == [(fx.W1, 3), (fx.W3, 2)]
    everything = sq.sales_by_window(wh, START, END)
    assert [r["sales"] for r in everything] == [4, 2, 4]
    talk = sq.talk_by_window(wh, START, END)
    assert [(r["window_start"], r["posts"]) for r in talk] == [
        (fx.W1, 10), (fx.W2, 20), (fx.W3, 30), (fx.W4, 40)
    ]  # fmt: skip
    rows = sq.side_by_side(everything, talk)
    by_window = {r["window_start"]: r for r in rows}
    assert len(rows) == 5  # four windows with posts, one more with sales only
    assert (by_window[fx.W1]["sales"], by_window[fx.W1]["posts"]) == (4, 10)
    assert by_window[fx.W1]["avg_sentiment"] == pytest.approx(0.2)
    assert (by_window[fx.W2]["sales"], by_window[fx.W2]["volume_eth"]) == (0, 0.0)
    noon = by_window[datetime(2021, 12, 1, 12, 0, tzinfo=UTC)]
    assert (noon["sales"], noon["posts"], noon["avg_sentiment"]) == (4, 0, None)


def test_entities_are_offered_once_they_exist(wh: object) -> None:
    assert sq.entities(wh, START, END) == []


def test_the_panel_renders(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICNFT_DATA_DIR", str(data_dir))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert "NFT sales beside the talk" in [s.value for s in at.subheader]
    picker = next(s for s in at.selectbox if s.label == "Collection")
    assert picker.options == [sq.ALL_COLLECTIONS, "genesis-tapes", "sonic-shards"]
    assert any("all collections: 10 sales, 2.00 ETH" in c.value for c in at.caption)
    picker.select("genesis-tapes").run()
    assert not at.exception, at.exception
    assert any("genesis-tapes: 5 sales, 1.90 ETH" in c.value for c in at.caption)


def test_an_entitys_collections(wh: object, tmp_path: Path) -> None:
    among = sq.sales_by_window(wh, START, END, among=["sonic-shards"])
    assert [r["sales"] for r in among] == [1, 4]
    entities = tmp_path / "entities.json"
    entities.write_text(
        '{"entities": [{"id": "nova", "name": "Nova Reyes", "kind": "artist", '
        '"aliases": ["Nova Reyes"], "opensea_slugs": ["sonic-shards"]}]}'
    )
    assert sq.entity_collections("nova", entities) == ["sonic-shards"]
    assert sq.entity_collections("nobody", entities) == []
    assert sq.entity_collections("nova", tmp_path / "missing.json") == []
