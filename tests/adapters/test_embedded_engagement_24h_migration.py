"""The embedded warehouse (DuckLake) adds `window_metrics_15m`'s engagement-at-24 h columns to a
catalog made before they existed, when it opens it (issue 18 item 4): old rows kept with nulls,
new rows written with values, a second open changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from musicnft.adapters import embedded_warehouse as ew
from musicnft.contract.tables import TABLES, WINDOW_METRICS_SCHEMA
from musicnft.contract.windows import window_key

W1 = datetime(2021, 12, 1, 10, 0, tzinfo=UTC)
W2 = datetime(2021, 12, 1, 10, 15, tzinfo=UTC)
NEW = ["engagement_24h_posts", "avg_engagement_24h"]
OLD_SCHEMA = pa.schema([f for f in WINDOW_METRICS_SCHEMA if f.name not in NEW])


def columns(wh: ew.EmbeddedWarehouse) -> list[str]:
    return wh.query("SELECT * FROM window_metrics_15m LIMIT 0").schema.names


def test_opening_an_older_catalog_adds_the_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "warehouse"
    # GIVEN a catalog whose window_metrics_15m predates the columns, with a row in it
    with monkeypatch.context() as old:
        old.setitem(TABLES, "window_metrics_15m", OLD_SCHEMA)
        old.setattr(ew, "_READY", set())
        wh = ew.EmbeddedWarehouse(root)
        row = {"window_start": W1, "keyword": "all", "post_count": 3, "updated_at": W1}
        wh.replace_partition(
            "window_metrics_15m", window_key(W1), pa.Table.from_pylist([row], schema=OLD_SCHEMA)
        )
        assert columns(wh) == OLD_SCHEMA.names
        wh.close()
    # WHEN today's code opens it
    monkeypatch.setattr(ew, "_READY", set())
    wh = ew.EmbeddedWarehouse(root)
    # THEN the columns are there, last, and the old row has nulls in them
    assert columns(wh) == WINDOW_METRICS_SCHEMA.names
    (old_row,) = wh.query("SELECT * FROM window_metrics_15m").to_pylist()
    assert old_row["post_count"] == 3
    assert [old_row[c] for c in NEW] == [None, None]
    # AND a new window is written with them
    row = {
        "window_start": W2,
        "keyword": "all",
        "post_count": 4,
        "updated_at": W2,
        "engagement_24h_posts": 2,
        "avg_engagement_24h": 7.5,
    }
    wh.replace_partition(
        "window_metrics_15m",
        window_key(W2),
        pa.Table.from_pylist([row], schema=WINDOW_METRICS_SCHEMA),
    )
    (new_row,) = wh.query(
        "SELECT engagement_24h_posts, avg_engagement_24h FROM window_metrics_15m "
        "WHERE window_start = ?",
        [W2],
    ).to_pylist()
    assert new_row == {"engagement_24h_posts": 2, "avg_engagement_24h": 7.5}
    wh.close()
    # AND opening it again is a no-op
    monkeypatch.setattr(ew, "_READY", set())
    again = ew.EmbeddedWarehouse(root)
    assert columns(again) == WINDOW_METRICS_SCHEMA.names
    assert again.count("window_metrics_15m") == 2
