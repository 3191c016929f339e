"""The "VADER beside the trained model" panel: its queries on known rows, and the panel rendered
headless, with and without model scores."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import model_sentiment_queries as mq
from dashboard.model_sentiment import long_form
from musicnft.contract.tables import WINDOW_METRICS_SCHEMA
from musicnft.contract.windows import window_key
from tests.support import dashboard_fixture as fx
from tests.support.paths import ROOT

APP = str(ROOT / "dashboard" / "app.py")
START = datetime(2021, 12, 1, tzinfo=UTC)
END = datetime(2021, 12, 3, tzinfo=UTC)
MODEL = {fx.W1: 0.4, fx.W3: -0.2}  # window -> the model's average ("all"); W2, W4 unscored


def add_model_scores(wh: object) -> None:
    for window, score in MODEL.items():
        rows = wh.query(  # type: ignore[attr-defined]
            "SELECT * FROM window_metrics_15m WHERE window_start = ?", [window]
        ).to_pylist()
        for row in rows:
            row["avg_model_sentiment"] = score if row["keyword"] == "all" else None
        wh.replace_partition(  # type: ignore[attr-defined]
            "window_metrics_15m",
            window_key(window),
            pa.Table.from_pylist(rows, schema=WINDOW_METRICS_SCHEMA),
        )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    wh = fx.build(tmp_path / "data" / "warehouse")
    add_model_scores(wh)
    return tmp_path / "data"


@pytest.fixture
def wh(data_dir: Path) -> object:
    from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse

    return EmbeddedWarehouse(data_dir / "warehouse", read_only=True)


def test_both_averages_per_window_and_weighted_over_the_range(wh: object) -> None:
    rows = mq.by_window(wh, START, END)
    assert [(r["window_start"], r["avg_model_sentiment"]) for r in rows] == [
        (fx.W1, 0.4),
        (fx.W2, None),
        (fx.W3, -0.2),
        (fx.W4, None),
    ]
    totals = mq.overall(wh, START, END)
    assert totals["model_posts"] == 40  # W1 (10 posts) and W3 (30)
    assert totals["model"] == pytest.approx((0.4 * 10 - 0.2 * 30) / 40)
    assert totals["vader"] == pytest.approx((0.2 * 10 - 0.1 * 20 + 0.3 * 30 + 0.0 * 40) / 100)
    assert mq.overall(wh, START, END, "music")["model_posts"] == 0


def test_long_form_drops_windows_without_a_model_score(wh: object) -> None:
    data = long_form(mq.by_window(wh, START, END))
    assert sorted(data["scorer"].value_counts().items()) == [("VADER", 4), ("trained model", 2)]


def test_the_panel_renders_both_scores(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICNFT_DATA_DIR", str(data_dir))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert "Sentiment: VADER beside the trained model" in [s.value for s in at.subheader]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Trained model (avg score)"] == "-0.050"
    assert any("40 posts scored by the model" in c.value for c in at.caption)


def test_the_panel_says_how_to_get_model_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fx.build(tmp_path / "data" / "warehouse")  # no model scores at all
    monkeypatch.setenv("MUSICNFT_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert any("musicnft model train" in i.value for i in at.info)
