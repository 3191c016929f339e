"""The live layer (issue #14 item 6): the posts the hot path stored after the last reconciled
window come from posts_hot, each post once, and the page shows them before any window exists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from benchmarks.dashboard_live import lag_seconds
from dashboard.live_queries import FIRST_LOOK_BACK, live, live_since
from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.tables import POSTS_HOT_SCHEMA
from musicnft.contract.windows import WINDOW, window_start
from tests.support.paths import ROOT


def _hot(wh: EmbeddedWarehouse, rows: list[tuple[str, datetime, float, str]]) -> None:
    table = pa.Table.from_pylist(
        [
            {
                "post_id": pid,
                "platform": "x",
                "created_at": created,
                "ingested_at": created,
                "text": "t",
                "sentiment_compound": score,
                "sentiment_label": label,
                "schema_version": 1,
            }
            for pid, created, score, label in rows
        ],
        schema=POSTS_HOT_SCHEMA,
    )
    wh.append("posts_hot", table)


def test_live_counts_posts_after_the_last_reconciled_window_once_each(tmp_path: Path) -> None:
    wh = EmbeddedWarehouse(tmp_path / "wh")
    last = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    since = live_since(last, datetime(2024, 5, 1, 12, 20, tzinfo=UTC))
    assert since == last + WINDOW
    _hot(
        wh,
        [
            ("x:old", last + timedelta(minutes=5), 0.9, "positive"),  # reconciled already
            ("x:a", since, 0.5, "positive"),
            ("x:b", since + timedelta(minutes=1), -0.5, "negative"),
            ("x:b", since + timedelta(minutes=1), -0.5, "negative"),  # a hot-path double
            ("x:c", since + timedelta(minutes=2), 0.0, "neutral"),
        ],
    )
    got = live(wh, since)
    assert (got.posts, got.positive, got.neutral, got.negative) == (3, 1, 1, 1)
    assert got.avg_sentiment == pytest.approx(0.0)
    assert got.last_inserted_at is not None  # stamped by the warehouse
    assert live_since(None, last) == last - FIRST_LOOK_BACK


def test_the_page_shows_live_posts_before_any_window_is_materialized(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a run's first seconds: posts in posts_hot, no aggregate yet
    wh = EmbeddedWarehouse(tmp_path / "data" / "warehouse")
    now = datetime.now(UTC)
    _hot(
        wh,
        [(f"x:{i}", window_start(now) + timedelta(seconds=i), 0.6, "positive") for i in range(7)],
    )
    monkeypatch.setenv("MUSICNFT_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    # THEN the live numbers are there, marked as not yet reconciled
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Live posts"] == "7"
    assert metrics["Live positive / neutral / negative"] == "7 / 0 / 0"
    assert [s.value for s in at.subheader] == ["Live: posts not yet in a reconciled window"]
    assert any("No reconciled window yet" in i.value for i in at.info)
    # AND it says when it rendered and how old the newest stored post was then, which is how
    # `make bench` (benchmarks/dashboard_live.py) reads how far the page is behind posts_hot
    page = " ".join([c.value for c in at.caption] + [f"{m.label} {m.value}" for m in at.metric])
    lag = lag_seconds(page, datetime.now(UTC))
    assert lag is not None and 0 <= lag < 120
