"""The dashboard's "Engagement at 24 h" panel draws `window_metrics_15m`'s engagement-at-24 h
columns (issue 18 item 4): with only those filled (no `engagement_15m` rows), it shows them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from musicnft.contract.tables import WINDOW_METRICS_SCHEMA
from musicnft.contract.windows import window_key
from tests.support import dashboard_fixture as fx
from tests.support.paths import ROOT

APP = str(ROOT / "dashboard" / "app.py")
# window -> (posts read at +24 h, their mean engagement then), on the `all` rows
READ = {fx.W1: (4, 2.5), fx.W2: (6, 5.0)}


def build(root: Path) -> None:
    wh = fx.build(root)
    assert wh.count("engagement_15m") == 0
    for window, (read, avg) in READ.items():
        rows = wh.query(
            "SELECT * FROM window_metrics_15m WHERE window_start = ?", [window]
        ).to_pylist()
        for row in rows:
            if row["keyword"] == "all":
                row["engagement_24h_posts"], row["avg_engagement_24h"] = read, avg
        wh.replace_partition(
            "window_metrics_15m",
            window_key(window),
            pa.Table.from_pylist(rows, schema=WINDOW_METRICS_SCHEMA),
        )


def test_the_panel_shows_the_window_metrics_engagement_at_24h(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(tmp_path / "data" / "warehouse")
    monkeypatch.setenv("MUSICNFT_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert "Engagement at 24 h" in [s.value for s in at.subheader]
    # 4 × 2.5 + 6 × 5.0 = 40 over 10 posts
    assert any("10 posts re-read at 24 h: 40 replies" in c.value for c in at.caption), [
        c.value for c in at.caption
    ]


def test_without_any_reading_the_panel_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fx.build(tmp_path / "data" / "warehouse")
    monkeypatch.setenv("MUSICNFT_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert any("re-read 24 h after it was posted yet" in i.value for i in at.info)
