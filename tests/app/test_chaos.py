"""The chaos run (issue 12), shortened: a few thousand posts through `musicnft run` while the
producer, delivery, consumer and the backfill are SIGKILLed at random points, and 1,500 through the
cloud profile through Kinesis throttling and outages of Kinesis and BigQuery; nothing may be lost
or doubled and every malformed line must be dead-lettered. `make chaos` runs both in full."""

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
    # GIVEN a 3,000-post sample (re-deliveries and malformed lines included)
    # WHEN it is replayed while 6 processes are SIGKILLed: each stream stage at least once
    # (a killed producer makes the driver replay the whole file again), then the backfill
    result: ChaosResult = run_embedded(tmp_path, posts=3000, kills=6, seed=5, batch_kills=1)
    table = format_table([result])
    # THEN every kill was survived: each stage came back
    assert len(result.kills) == 6, table
    assert set(result.kills_by_stage()) == {"produce", "deliver", "consume", "backfill"}, table
    assert result.kills_survived == 6, table
    assert result.run_attempts >= 2, table  # the producer's death ended a run; another replayed
    # AND the lake, posts_hot and posts hold each input post exactly once
    assert result.input_unique >= 3000
    assert result.lost == 0 and result.doubled == 0 and result.unexpected == 0, table
    assert result.lake_unique == result.posts_hot_unique == result.posts_unique, table
    assert result.posts_hot_rows == result.posts_rows == result.input_unique, table
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
    # for 20 s, while the replay runs
    result = run_cloud(tmp_path, posts=1500, seed=3, kinesis_outage=20, bq_outage=20, throttle=0.1)
    table = format_table([result])
    # THEN the faults really happened
    assert result.faults["kinesis_outage_s"] >= 19 and result.faults["bigquery_outage_s"] >= 19
    assert result.faults["kinesis_refused"] > 0 and result.faults["bigquery_refused"] > 0, table
    assert result.faults["kinesis_throttled"] > 0, table
    # AND S3, BigQuery's posts_hot and posts hold each input post exactly once, after
    # reconciliation (the emulator ignores insertIds, so retried inserts double rows until then)
    assert result.lost == 0 and result.doubled == 0 and result.unexpected == 0, table
    assert result.lake_unique == result.posts_hot_unique == result.posts_unique, table
    assert result.not_dead_lettered == 0 and result.ok, table
