"""The chaos run (issue 12), shortened: a few thousand posts through `musicnft run` while the
producer, delivery, consumer and a Dagster run of the backfill are SIGKILLed at random points, with
posts deleted at the source before, during and after they arrive (issue 19), and 1,500 through the
cloud profile through Kinesis throttling, outages of Kinesis and BigQuery and SIGKILLs of its
stages; nothing may be lost or doubled, no deleted post may survive anywhere, no window may be
short, and every malformed line must be dead-lettered. `make chaos` runs both in full."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicnft.devtools.chaos import ChaosResult, format_table, run_cloud, run_embedded
from tests.support.paths import ROOT

pytestmark = pytest.mark.slow


def test_a_replay_survives_sigkills_of_every_stage_without_losing_or_doubling_a_post(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    # GIVEN a 3,000-post sample (re-deliveries and malformed lines included), 3% of whose posts
    # are deleted at the source: tombstones on the stream before their posts, on the stream in
    # the middle of the replay, and `musicnft forget` once they are everywhere
    # WHEN it is replayed while 6 processes are SIGKILLed: each stream stage at least once
    # (a killed producer makes the driver replay the whole file again), then the Dagster run
    # of `musicnft backfill` materializing the windows
    result: ChaosResult = run_embedded(tmp_path, posts=3000, kills=6, seed=5, batch_kills=1)
    table = format_table([result])
    # THEN every kill was survived: each stage came back, the killed Dagster run too (a retry
    # or the next backfill's run)
    assert len(result.kills) == 6, table
    assert set(result.kills_by_stage()) == {"produce", "deliver", "consume", "dagster-run"}, table
    assert result.kills_survived == 6, table
    assert result.run_attempts >= 2, table  # the producer's death ended a run; another replayed
    # AND Dagster recorded the killed run as failed: no run is left started (sensor runs may
    # wait in the queue for the next daemon)
    assert result.dagster_runs.get("FAILURE", 0) >= 1, table
    assert result.dagster_unfinished == 0 and result.dagster_runs.get("SUCCESS", 0) >= 1, table
    # AND the deletions happened in each way, the `before` ones really before their posts
    assert result.deleted_before == result.deleted_during == result.deleted_after == 30, table
    assert result.tombstones_before_posts > 0, table
    # AND no deleted post is left in the lake's files, posts_hot or posts, and every other
    # input post is in each exactly once
    assert result.deleted_visible == 0, table
    assert result.input_unique >= 3000
    assert result.lost == 0 and result.doubled == 0 and result.unexpected == 0, table
    kept = result.input_unique - result.deleted
    assert result.lake_unique == result.posts_hot_unique == result.posts_unique == kept, table
    assert result.posts_hot_rows == result.posts_rows == kept, table
    # AND every window counts exactly its posts less the deleted ones, once
    assert result.windows_checked and result.windows_wrong == 0, table
    assert result.window_duplicate_rows == 0, table
    # AND `musicnft status --json` holds every tombstone, none pending after the purge
    assert result.status_deleted == result.deleted and result.status_deleted_pending == 0, table
    # AND every malformed line is in a dead-letter file
    assert result.input_malformed > 0 and result.not_dead_lettered == 0, table
    assert result.backfill_exit_code == 0 and result.ok, table


def test_the_cloud_profile_loses_and_doubles_nothing_through_outages_and_throttling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    # GIVEN 1,500 posts replayed through the cloud profile (moto's Kinesis and S3, the BigQuery
    # emulator), each behind a fault proxy
    # WHEN Kinesis is throttled (10% of calls and records), then down for 20 s, then BigQuery down
    # for 20 s, while the replay runs and delivery and the consumer are SIGKILLed once each
    result = run_cloud(
        tmp_path, posts=1500, seed=3, kinesis_outage=20, bq_outage=20, throttle=0.1, kills=2
    )
    table = format_table([result])
    # THEN every kill was survived
    assert result.kills_by_stage() == {"deliver": 1, "consume": 1}, table
    assert result.kills_survived == 2, table
    # THEN the faults really happened
    assert result.faults["kinesis_outage_s"] >= 19 and result.faults["bigquery_outage_s"] >= 19
    assert result.faults["kinesis_refused"] > 0 and result.faults["bigquery_refused"] > 0, table
    assert result.faults["kinesis_throttled"] > 0, table
    # AND S3, BigQuery's posts_hot and posts hold each input post exactly once, after
    # reconciliation (the emulator ignores insertIds, so retried inserts double rows until then)
    assert result.lost == 0 and result.doubled == 0 and result.unexpected == 0, table
    assert result.lake_unique == result.posts_hot_unique == result.posts_unique, table
    assert result.not_dead_lettered == 0 and result.ok, table
