"""The `engagement_rereads` asset fills `window_metrics_15m`'s engagement-at-24 h columns of a
window materialized a day earlier, and a second run changes nothing (issue 18 item 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.batch import window_pipeline as wp
from musicnft.contract.tables import TABLES
from musicnft.contract.windows import window_key, window_start
from musicnft_dagster.assets.engagement import RereadResource, engagement_rereads
from musicnft_dagster.resources import EmbeddedWarehouseResource
from tests.support.fake_rereads import FakeRereadServer


def _run(tmp_path: Path, server: FakeRereadServer) -> dict:
    result = dg.materialize(
        [engagement_rereads],
        resources={
            "warehouse": EmbeddedWarehouseResource(root=str(tmp_path / "warehouse")),
            "rereads": RereadResource(appview_url=server.url, x_api_base=server.url),
        },
    )
    assert result.success
    (mat,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in mat.step_materialization_data.materialization.metadata.items()}


def test_the_asset_updates_the_windows_engagement_at_24h_once(tmp_path: Path) -> None:
    created = datetime.now(UTC) - timedelta(hours=24, minutes=2)
    window = window_start(created)
    ids = [f"bsky:at://did:plc:a/app.bsky.feed.post/{i}" for i in range(3)]
    rows = [
        {
            "post_id": pid,
            "platform": "bluesky",
            "created_at": created,
            "ingested_at": created,
            "text": "t",
            "matched_keywords": ["music"],
            "schema_version": 1,
            "window_start": window,
        }
        for pid in ids
    ]
    wh = EmbeddedWarehouse(tmp_path / "warehouse")
    wh.replace_partition(
        "posts", window_key(window), pa.Table.from_pylist(rows, schema=TABLES["posts"])
    )
    built = created + timedelta(minutes=20)
    wp.build_aggregate(wh, "window_metrics_15m", window, ["music"], now=built)
    server = FakeRereadServer()
    server.bluesky = {ids[0][5:]: {"likeCount": 4, "repostCount": 2}, ids[1][5:]: {"likeCount": 6}}
    try:
        first = _run(tmp_path, server)
        second = _run(tmp_path, server)
    finally:
        server.close()
    assert first["read"] == {"bluesky 24h": 3} and first["window_metrics_updated"] == 1
    assert second["read"] == {} and second["window_metrics_updated"] == 0
    got = {
        r["keyword"]: r
        for r in wh.query(
            "SELECT * FROM window_metrics_15m WHERE window_start = ?", [window]
        ).to_pylist()
    }
    for keyword in ("all", "music"):
        assert got[keyword]["engagement_24h_posts"] == 2  # the third post is gone at the source
        assert got[keyword]["avg_engagement_24h"] == 6.0  # (4 + 2 + 6) / 2
        assert got[keyword]["updated_at"] == built
