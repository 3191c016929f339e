"""The insight panels (issue 18): their queries on known rows, and the app rendering them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import insight_queries as iq
from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.schema import conform
from musicnft.contract.tables import TABLES
from musicnft.contract.windows import window_key
from musicnft.hotpath.consumer import enrich_rows
from tests.support import dashboard_fixture as fx
from tests.support.paths import ROOT

APP = str(ROOT / "dashboard" / "app.py")
START, END = fx.W1, fx.W4 + timedelta(hours=1)
# window -> entity -> (posts, avg_sentiment, pos, neu, neg, engagement)
ENTITIES = {
    fx.W1: {"bts": (4, 0.5, 3, 1, 0, 10), "opensea": (2, -0.5, 0, 0, 2, 1)},
    fx.W2: {"bayc": (12, 0.1, 5, 5, 2, 40), "opensea": (2, None, 0, 2, 0, 0)},
}


def build(root: Path) -> EmbeddedWarehouse:
    wh = fx.build(root)
    for window, by_entity in ENTITIES.items():
        rows = [
            {
                "window_start": window,
                "entity": e,
                "post_count": n,
                "unique_authors": n,
                "avg_sentiment": s,
                "positive_count": pos,
                "neutral_count": neu,
                "negative_count": neg,
                "total_engagement": eng,
                "updated_at": fx.UPDATED,
            }
            for e, (n, s, pos, neu, neg, eng) in by_entity.items()
        ]
        wh.replace_partition(
            "entity_metrics_15m",
            window_key(window),
            pa.Table.from_pylist(rows, schema=TABLES["entity_metrics_15m"]),
        )
    spikes = [
        {"window_start": fx.W2, "dimension": "entity", "key": "bayc", "post_count": 12,
         "baseline": 1.0, "score": 11.0, "is_spike": True, "updated_at": fx.UPDATED},
        {"window_start": fx.W2, "dimension": "entity", "key": "opensea", "post_count": 2,
         "baseline": 2.0, "score": 0.0, "is_spike": False, "updated_at": fx.UPDATED},
    ]  # fmt: skip
    wh.replace_partition(
        "spikes_15m", window_key(fx.W2), pa.Table.from_pylist(spikes, schema=TABLES["spikes_15m"])
    )
    posts = [
        conform(
            {
                "post_id": f"x:9{i}",
                "platform": "x",
                "created_at": fx.W2,
                "ingested_at": fx.W2,
                "text": text,
                "author_handle": f"fan{i}",
                "like_count": likes,
                "schema_version": 1,
            }
        )
        for i, (text, likes) in enumerate(
            [("Bored Ape Yacht Club band Kingship!", 3), ("BAYC floor up", 9), ("gm", 50)]
        )
    ]
    rows = [r | {"window_start": fx.W2} for r in enrich_rows(posts)]
    wh.replace_partition(
        "posts", window_key(fx.W2), pa.Table.from_pylist(rows, schema=TABLES["posts"])
    )
    engagement = [
        {"window_start": fx.W1, "keyword": "all", "post_count": 10, "read_1h": 8,
         "engagement_1h": 16, "read_24h": 8, "engagement_24h": 40, "updated_at": fx.UPDATED},
        {"window_start": fx.W2, "keyword": "all", "post_count": 20, "read_1h": 2,
         "engagement_1h": 1, "read_24h": 2, "engagement_24h": 10, "updated_at": fx.UPDATED},
    ]  # fmt: skip
    for row in engagement:
        wh.replace_partition(
            "engagement_15m",
            window_key(row["window_start"]),
            pa.Table.from_pylist([row], schema=TABLES["engagement_15m"]),
        )
        # the same reading in window_metrics_15m's columns, which the panel draws
        window = row["window_start"]
        metrics = wh.query(
            "SELECT * FROM window_metrics_15m WHERE window_start = ?", [window]
        ).to_pylist()
        for m in metrics:
            if m["keyword"] == "all":
                m["engagement_24h_posts"] = row["read_24h"]
                m["avg_engagement_24h"] = row["engagement_24h"] / row["read_24h"]
        wh.replace_partition(
            "window_metrics_15m",
            window_key(window),
            pa.Table.from_pylist(metrics, schema=TABLES["window_metrics_15m"]),
        )
    return wh


@pytest.fixture
def wh(tmp_path: Path) -> EmbeddedWarehouse:
    return build(tmp_path / "data" / "warehouse")


def test_entity_totals_weight_sentiment_by_posts_and_share_of_all_posts(
    wh: EmbeddedWarehouse,
) -> None:
    rows = {r["entity"]: r for r in iq.entity_totals(wh, START, END)}
    assert list(rows) == ["bayc", "bts", "opensea"]
    # all tracked posts in the range: 10 + 20 + 30 + 40 = 100
    assert rows["bayc"]["share_of_voice"] == pytest.approx(0.12)
    # opensea: -0.5 over 2 posts, and 2 posts without sentiment that must not weigh in
    assert rows["opensea"]["avg_sentiment"] == pytest.approx(-0.5)
    assert rows["opensea"]["posts"] == 4 and rows["opensea"]["negative"] == 2
    hourly = iq.entity_hourly(wh, START, END)
    assert {(r["entity"], r["posts"]) for r in hourly} == {("bts", 4), ("opensea", 4), ("bayc", 12)}


def test_spikes_with_the_posts_behind_them(wh: EmbeddedWarehouse) -> None:
    (spike,) = iq.spikes(wh, START, END)
    assert (spike["dimension"], spike["key"], spike["post_count"]) == ("entity", "bayc", 12)
    behind = iq.posts_behind(wh, spike)
    assert [p["author_handle"] for p in behind] == ["fan1", "fan0"]  # most engaged first


def test_app_renders_share_of_voice_and_spiking_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(tmp_path / "data" / "warehouse")
    monkeypatch.setenv("MUSICNFT_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    headers = [s.value for s in at.subheader]
    assert "Share of voice by entity" in headers and "Spiking now" in headers
    assert any("Most talked about: bayc in 12 posts (12% of all)" in c.value for c in at.caption)
    (expander,) = [e for e in at.expander if "bayc" in e.label]
    assert "12 posts vs 1.0 usual" in expander.label
    shown = [df.value for df in at.dataframe]
    assert any("fan1" in set(d.get("author_handle", [])) for d in shown)
    assert any("10 posts re-read at 24 h: 50 replies" in c.value for c in at.caption)


def test_engagement_hourly_sums_what_was_re_read(wh: EmbeddedWarehouse) -> None:
    (row,) = iq.engagement_hourly(wh, START, END)[:1]
    assert (row["posts"], row["read_24h"], row["engagement_24h"]) == (30, 10, 50)


def test_engagement_24h_hourly_reads_window_metrics(wh: EmbeddedWarehouse) -> None:
    (row,) = iq.engagement_24h_hourly(wh, START, END)[:1]
    assert (row["posts"], row["read_24h"], row["engagement_24h"]) == (30, 10, 50)
