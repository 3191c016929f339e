"""Deletions through Dagster: the sensor applies a tombstone and asks for the window runs that
rebuild the aggregates that counted the post; the check fails while the post is visible anywhere
and passes once the window is rebuilt; the daily sweep asset records its check."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.contract.windows import window_key
from musicnft.hotpath.consumer import handle_kinesis_event
from musicnft_dagster.assets.deletions import CHECK, deletions_asset, visibility_check
from musicnft_dagster.assets.windows import WINDOW_ASSETS
from musicnft_dagster.jobs import TRIGGER_TAG, WINDOWS_TAG
from musicnft_dagster.resources import (
    EmbeddedWarehouseResource,
    LocalLakeResource,
    PipelineResource,
)
from musicnft_dagster.sensors.deletions import DeletionsCursor, evaluate
from musicnft_dagster.windows import window_run
from tests.batch.test_deletions import (
    KEYWORDS,
    WINDOW,
    all_count,
    event,
    post,
    post_bytes,
    put_lake_file,
    tomb,
)

pytestmark = pytest.mark.slow  # three Dagster runs in process (~40 s on a busy machine)


def resources(root: Path) -> dict[str, object]:
    return {
        "lake": LocalLakeResource(root=str(root / "lake")),
        "warehouse": EmbeddedWarehouseResource(root=str(root / "warehouse")),
        "pipeline": PipelineResource(keywords=KEYWORDS),
    }


def test_sensor_rebuilds_the_windows_and_the_check_proves_it(tmp_path: Path) -> None:
    lake, wh = LocalLake(tmp_path / "lake"), EmbeddedWarehouse(tmp_path / "warehouse")
    posts = [post(i) for i in range(1, 4)]
    handle_kinesis_event(event([post_bytes(p) for p in posts]), wh)
    put_lake_file(lake, wh, posts)
    dg.materialize(WINDOW_ASSETS, **window_run(window_key(WINDOW)), resources=resources(tmp_path))
    assert all_count(wh) == 3
    assert visibility_check(wh).passed
    # GIVEN a tombstone arrives on the stream for post 2
    handle_kinesis_event(event([tomb(posts[1]["post_id"]).to_stream_record()], 10), wh)
    # THEN the check fails: `posts` (and the aggregates) still show it
    failing = visibility_check(wh)
    assert not failing.passed and failing.metadata["visible"].value == 1
    # WHEN the sensor ticks
    requests, cursor, summary = evaluate(lake, wh, DeletionsCursor(), datetime.now(UTC))
    assert "1 tombstone(s) applied" in summary
    assert [(r.partition_key, r.tags[WINDOWS_TAG], r.tags[TRIGGER_TAG]) for r in requests] == [
        ("2021-12-01", window_key(WINDOW), "deletions")
    ]
    assert not visibility_check(wh).passed  # the window's aggregates predate the deletion
    # AND Dagster runs what it asked for
    for request in requests:
        dg.materialize(
            WINDOW_ASSETS,
            partition_key=request.partition_key,
            tags=request.tags,
            resources=resources(tmp_path),
        )
    # THEN the aggregates no longer count the post, and the check passes
    assert all_count(wh) == 2
    assert visibility_check(wh).passed
    # AND the next tick has nothing to do; its run keys never repeat work
    again, _, _ = evaluate(lake, wh, cursor, datetime.now(UTC))
    assert again == []
    same, _, _ = evaluate(lake, wh, DeletionsCursor(), datetime.now(UTC))
    assert [r.run_key for r in same] == [r.run_key for r in requests]
    # AND the daily sweep asset materializes with its check passed
    result = dg.materialize([deletions_asset], resources=resources(tmp_path))
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [(CHECK, True)]
    assert DeletionsCursor.parse(cursor.dump()) == cursor
