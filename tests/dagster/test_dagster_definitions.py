"""The code location loads, with every asset, check, sensor, schedule and job in place."""

from __future__ import annotations

import dagster as dg

from musicnft_dagster.definitions import defs
from musicnft_dagster.partitions import DAYS, WINDOWS
from musicnft_dagster.resources import EmbeddedWarehouseResource, LocalLakeResource

MODEL_ASSET_NAMES = {
    "sentiment_training_set",
    "sentiment_model",
    "sentiment_model_evaluation",
    "sentiment_model_promoted",
}
ASSETS = {
    "deletions",  # the deletions sweep (issue 19)
    "posts",
    "window_metrics_15m",
    "hashtag_counts_15m",
    "location_counts_15m",
    "reconciliation_15m",
    "entity_metrics_15m",
    "spikes_15m",
    # the sentiment model (issue 15): not windowed, its own group and job
    *MODEL_ASSET_NAMES,
    "nft_sales_15m",
    "engagement_rereads",  # engagement re-read at +1 h / +24 h (issue 18), on its own schedule
    "scored_posts",  # Spark scoring (issue 16): the stream's checkpoint says what is new
}
# Assets that are not window tables: no day partitions (the deletions sweep, the model, the
# engagement re-reads run on their own schedules or on demand)
NOT_WINDOWED = {"deletions", "engagement_rereads", "scored_posts", *MODEL_ASSET_NAMES}
CHECKS = {
    ("deletions", "no_deleted_post_visible"),
    ("deletions", "no_deleted_post_visible_now"),
    ("posts", "post_id_unique"),
    ("posts", "schema_v1"),
    ("reconciliation_15m", "lake_matches_warehouse"),
    ("spikes_15m", "no_spikes"),
    ("sentiment_model", "beats_vader"),
    ("nft_sales_15m", "sale_ids_unique"),
    ("nft_sales_15m", "prices_non_negative"),
}


def test_definitions_load_with_everything() -> None:
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == ASSETS
    assert {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys} == CHECKS
    assert sorted(s.name for s in repo.sensor_defs) == [
        "deletions_sensor",
        "failed_windows_sensor",
        "lake_drop_sensor",
    ]
    assert "refresh_latest_windows" in {s.name for s in repo.schedule_defs}
    assert "window_refresh" in {j.name for j in repo.get_all_jobs()}
    assert "sentiment_model_training" in {j.name for j in repo.get_all_jobs()}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if key.to_user_string() in NOT_WINDOWED:
            assert node.partitions_def is None and node.description
            continue
        assert node.partitions_def == DAYS
        assert node.freshness_policy is not None
        assert node.backfill_policy is not None
        assert node.backfill_policy.max_partitions_per_run == 7
        assert node.owners == ["team:data-engineering"]
        assert node.description
        # kinds follow the warehouse in use (embedded here): never a stale "duckdb" on BigQuery
        assert {"duckdb", "parquet"} <= set(node.kinds)
    # every job, the implicit one of backfills included, runs its steps in the run's process
    for job in repo.get_all_jobs():
        assert job.executor_def.name == "in_process", job.name
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


def test_partitions_are_utc_days_within_dagsters_guidance() -> None:
    assert DAYS.get_first_partition_key() == "2021-11-01"
    assert DAYS.timezone == "UTC"
    # at most 100,000 partitions per asset, now and after five more years (15-minute
    # partitions were 178,090 in November 2026)
    now = len(DAYS.get_partition_keys())
    assert 1_800 < now < 2_500
    assert now + 5 * 366 < 100_000


def test_kinds_follow_the_backends() -> None:
    from musicnft.settings import Settings
    from musicnft_dagster.resources import kinds_for

    bigquery = kinds_for(
        Settings.from_env(
            {
                "MUSICNFT_PROFILE": "cloud",
                "MUSICNFT_S3_BUCKET": "b",
                "MUSICNFT_BIGQUERY_PROJECT": "p",
            }
        )
    )
    assert bigquery.tables == {"bigquery"} and bigquery.posts == {"bigquery", "s3"}
    local = kinds_for(Settings.from_env({}))
    assert local.tables == {"duckdb", "parquet"}


def test_the_window_calendar_is_15_minute_utc_from_2021() -> None:
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
    [request] = refresh_latest_windows(ctx)
    assert request.partition_key == "2026-01-02"
    assert request.tags["musicnft/windows"] == "2026-01-02-10:00,2026-01-02-10:15"
    # at midnight the two windows are in two day partitions: one run each
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 1, 2, tzinfo=UTC))
    requests = refresh_latest_windows(ctx)
    assert [(r.partition_key, r.tags["musicnft/windows"]) for r in requests] == [
        ("2026-01-01", "2026-01-01-23:45"),
        ("2026-01-02", "2026-01-02-00:00"),
    ]
    assert len({r.run_key for r in requests}) == 2
