"""The `engagement_rereads` asset over a warehouse and the local fakes of Bluesky and X."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.tables import TABLES
from musicnft.contract.windows import window_key, window_start
from musicnft_dagster.assets.engagement import RereadResource, engagement_rereads
from musicnft_dagster.definitions import defs
from musicnft_dagster.resources import EmbeddedWarehouseResource
from tests.support.fake_rereads import TOKEN, FakeRereadServer


def test_asset_reads_due_posts_within_the_budget(tmp_path: Path) -> None:
    created = datetime.now(UTC) - timedelta(hours=1, minutes=2)
    window = window_start(created)
    ids = [f"bsky:at://did:plc:a/app.bsky.feed.post/{i}" for i in range(3)] + ["x:1", "x:2"]
    rows = [
        {
            "post_id": pid,
            "platform": "x" if pid.startswith("x:") else "bluesky",
            "created_at": created,
            "ingested_at": created,
            "text": "t",
            "schema_version": 1,
            "window_start": window,
        }
        for pid in ids
    ]
    wh = EmbeddedWarehouse(tmp_path / "warehouse")
    wh.replace_partition(
        "posts", window_key(window), pa.Table.from_pylist(rows, schema=TABLES["posts"])
    )
    server = FakeRereadServer()
    server.bluesky = {pid[5:]: {"likeCount": 4} for pid in ids[:3]}
    server.x = {"1": {"like_count": 7}, "2": {"like_count": 1}}
    try:
        result = dg.materialize(
            [engagement_rereads],
            resources={
                "warehouse": EmbeddedWarehouseResource(root=str(tmp_path / "warehouse")),
                "rereads": RereadResource(
                    appview_url=server.url,
                    x_api_base=server.url,
                    x_bearer_token=TOKEN,
                    x_budget_usd=0.005,  # one X post today
                ),
            },
        )
    finally:
        server.close()
    assert result.success
    (mat,) = result.get_asset_materialization_events()
    meta = {k: v.value for k, v in mat.step_materialization_data.materialization.metadata.items()}
    assert meta["read"] == {"bluesky 1h": 3, "x 1h": 1} and meta["x_skipped"] == 1
    (all_row,) = wh.query(
        "SELECT * FROM engagement_15m WHERE keyword = 'all' AND window_start = ?", [window]
    ).to_pylist()
    assert all_row["read_1h"] == 4 and all_row["engagement_1h"] == 4 * 3 + 7


def test_schedule_and_job_are_defined() -> None:
    repo = defs.get_repository_def()
    assert "engagement_rereads_every_15_minutes" in {s.name for s in repo.schedule_defs}
    assert "engagement_rereads_job" in {j.name for j in repo.get_all_jobs()}
