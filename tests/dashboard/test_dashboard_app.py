"""The dashboard renders headless (Streamlit's AppTest) on fixture data and on an empty warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.support import dashboard_fixture as fx
from tests.support.paths import ROOT

APP = str(ROOT / "dashboard" / "app.py")
PANELS = [
    "Sentiment over time",
    "Sentiment breakdown",
    "Posts per hour",
    "Volume per keyword",
    "Hashtag cloud",
    "Hashtag ranking",
    "Top locations",
    "Top posts by engagement",
]


def _run(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("MUSICNFT_DATA_DIR", str(data_dir))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_renders_every_panel_on_fixture_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fx.build(tmp_path / "data" / "warehouse")
    at = _run(tmp_path / "data", monkeypatch)
    metrics = {m.label: m.value for m in at.metric}
    # Default range: the last two days with data (both fixture days).
    assert metrics == {
        "Total posts tracked": "100",
        "Posts per hour": "4.3",
        "Average followers per post": "170",
        "Average sentiment": "0.090",
    }
    assert [s.value for s in at.subheader] == PANELS
    # The fixture's aggregates are from 2021: the freshness indicator says so plainly.
    assert any("Stale" in w.value and "2021-12-02 09:20 UTC" in w.value for w in at.warning)
    cloud = " ".join(m.value for m in at.markdown)
    assert "#nft" in cloud and "#opensea" in cloud
    assert any("positive 41" in c.value for c in at.caption)


def test_keyword_filter_changes_the_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fx.build(tmp_path / "data" / "warehouse")
    at = _run(tmp_path / "data", monkeypatch)
    at.selectbox[0].select("nft").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Total posts tracked"] == "55"


def test_says_so_plainly_when_there_is_no_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _run(tmp_path / "empty", monkeypatch)
    assert not at.metric
    assert any("No data yet" in i.value for i in at.info)
