"""The code location loads, with every asset, check, sensor, schedule and job in place."""

from __future__ import annotations

import dagster as dg

from musicnft_dagster.definitions import defs
from musicnft_dagster.partitions import WINDOWS
from musicnft_dagster.resources import EmbeddedWarehouseResource, LocalLakeResource

ASSETS = {
    "posts",
    "window_metrics_15m",
    "hashtag_counts_15m",
    "location_counts_15m",
    "reconciliation_15m",
}
CHECKS = {
    ("posts", "post_id_unique"),
    ("posts", "schema_v1"),
    ("reconciliation_15m", "lake_matches_warehouse"),
}


def test_definitions_load_with_everything() -> None:
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == ASSETS
    assert {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys} == CHECKS
    assert [s.name for s in repo.sensor_defs] == ["lake_drop_sensor"]
    assert [s.name for s in repo.schedule_defs] == ["refresh_latest_windows"]
    assert "window_refresh" in {j.name for j in repo.get_all_jobs()}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.partitions_def == WINDOWS
        assert node.freshness_policy is not None
    resources = defs.resources or {}
    assert isinstance(resources["lake"], LocalLakeResource)
    assert isinstance(resources["warehouse"], EmbeddedWarehouseResource)


def test_blocking_checks_are_blocking() -> None:
    from musicnft_dagster.assets.windows import posts, reconciliation_15m

    specs = {
        (spec.asset_key.to_user_string(), spec.name): spec
        for assets_def in (posts, reconciliation_15m)
        for spec in assets_def.check_specs
    }
    assert specs[("posts", "post_id_unique")].blocking
    assert specs[("reconciliation_15m", "lake_matches_warehouse")].blocking


def test_windows_are_15_minute_utc_from_2021() -> None:
    assert WINDOWS.get_first_partition_key() == "2021-11-01-00:00"
    assert WINDOWS.timezone == "UTC"
    keys = WINDOWS.get_partition_keys_in_range(
        dg.PartitionKeyRange("2021-12-01-00:00", "2021-12-01-01:00")
    )
    assert keys == [
        "2021-12-01-00:00",
        "2021-12-01-00:15",
        "2021-12-01-00:30",
        "2021-12-01-00:45",
        "2021-12-01-01:00",
    ]


def test_schedule_refreshes_the_closed_and_the_open_window() -> None:
    from datetime import UTC, datetime

    from musicnft_dagster.schedules import refresh_latest_windows

    ctx = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 1, 2, 10, 15, tzinfo=UTC)
    )
    requests = refresh_latest_windows(ctx)
    assert [r.partition_key for r in requests] == ["2026-01-02-10:00", "2026-01-02-10:15"]
    assert len({r.run_key for r in requests}) == 2
    assert all(r.tags["musicnft/window"] == r.partition_key for r in requests)
