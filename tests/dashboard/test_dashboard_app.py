"""The dashboard renders headless (Streamlit's AppTest) on fixture data and on an empty warehouse."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from musicnft.contract.tables import WINDOW_METRICS_SCHEMA
from musicnft.contract.windows import window_key, window_start
from tests.support import dashboard_fixture as fx
from tests.support.paths import ROOT

APP = str(ROOT / "dashboard" / "app.py")
PANELS = [
    "Sentiment over time",
    "Sentiment breakdown",
    "Sentiment: VADER beside the trained model",
    "Posts per hour",
    "Volume per keyword",
    "Hashtag cloud",
    "Hashtag ranking",
    "Top locations",
    "Top posts by engagement",
    "Share of voice by entity",
    "Spiking now",
    "Engagement at 24 h",
    "NFT sales beside the talk",
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


def _add_fresh_window(data_dir: Path) -> None:
    """The fixture plus a window written just now, so the indicator says "Fresh"."""
    wh = fx.build(data_dir / "warehouse")
    now = datetime.now(UTC)
    row = {
        "window_start": window_start(now),
        "keyword": "all",
        "post_count": 3,
        "unique_authors": 3,
        "avg_followers": 10.0,
        "avg_sentiment": 0.0,
        "positive_count": 1,
        "neutral_count": 1,
        "negative_count": 1,
        "total_engagement": 0,
        "avg_engagement_rate": 0.0,
        "repost_share": 0.0,
        "updated_at": now,
    }
    wh.replace_partition(
        "window_metrics_15m",
        window_key(window_start(now)),
        pa.Table.from_pylist([row], schema=WINDOW_METRICS_SCHEMA),
    )


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(None, 60), ("30", 30), ("1", 5), ("99999", 900), ("soon", 60), ("", 60)],
)
def test_refresh_interval_comes_from_settings_clamped(
    raw: str | None, seconds: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_fresh_window(tmp_path / "data")
    if raw is None:
        monkeypatch.delenv("MUSICNFT_DASHBOARD_REFRESH_SECONDS", raising=False)
    else:
        monkeypatch.setenv("MUSICNFT_DASHBOARD_REFRESH_SECONDS", raw)
    at = _run(tmp_path / "data", monkeypatch)
    fresh = [s.value for s in at.success]
    assert len(fresh) == 1 and fresh[0].startswith("● Fresh"), fresh
    assert fresh[0].endswith(f"Refreshes every {seconds} s.")


def test_dashboard_reads_the_environment_only_through_settings() -> None:
    for path in sorted((ROOT / "dashboard").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert "os.environ" not in source and "getenv" not in source, path
