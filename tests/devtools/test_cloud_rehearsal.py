"""The cloud profile rehearsed on moto server and the BigQuery emulator: producer → Kinesis →
event-source loop → handler → BigQuery `posts_hot`, and → delivery → S3 Parquet in Firehose's
layout → Dagster sensor on S3 → window assets → BigQuery aggregates, reconciled."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from musicnft.adapters.bigquery.warehouse import BigQueryWarehouse
from musicnft.contract.windows import window_start
from musicnft.devtools.bq_emulator import PROJECT
from musicnft.devtools.sample import write_sample
from musicnft_dagster.assets.windows import WINDOW_ASSETS
from musicnft_dagster.jobs import WINDOWS_TAG
from musicnft_dagster.resources import BigQueryWarehouseResource, PipelineResource, S3LakeResource
from musicnft_dagster.sensors.drops import lake_drop_sensor
from musicnft_dagster.windows import window_run
from tests.support.aws import AWS_ENV, client, moto_server
from tests.support.bq import fresh_warehouse
from tests.support.expectations import expected_from
from tests.support.paths import ROOT, cli

pytestmark = pytest.mark.slow
BUCKET = "musicnft-lake-test"
STREAM = "musicnft-posts"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        client("kinesis", url).create_stream(StreamName=STREAM, ShardCount=2)
        client("s3", url).create_bucket(Bucket=BUCKET)
        yield url


def test_cloud_profile_end_to_end(endpoint: str, bq_endpoint: str, tmp_path: Path) -> None:
    # GIVEN the cloud profile pointed at moto server and a migrated BigQuery dataset on the
    # emulator, and 400 sample lines: seven windows, with re-deliveries and malformed lines
    # (each window is a Dagster run against the emulator: more of them test nothing more)
    sample = tmp_path / "sample.jsonl"
    write_sample(sample, lines=400, seed=5)
    expected = expected_from(sample)
    assert expected.source_duplicates > 0 and expected.rejected
    data_dir = tmp_path / "data"
    wh: BigQueryWarehouse = fresh_warehouse(bq_endpoint, "cloud")
    env = dict(os.environ, **AWS_ENV)
    env.update(
        MUSICNFT_PROFILE="cloud",
        MUSICNFT_AWS_ENDPOINT_URL=endpoint,
        MUSICNFT_S3_BUCKET=BUCKET,
        MUSICNFT_STREAM_NAME=STREAM,
        MUSICNFT_DATA_DIR=str(data_dir),
        MUSICNFT_BIGQUERY_PROJECT=PROJECT,
        MUSICNFT_BIGQUERY_DATASET=wh.dataset,
        MUSICNFT_BIGQUERY_ENDPOINT=bq_endpoint,
        PYTHONPATH=str(ROOT),
        # small consumer batches, so that re-deliveries land in different batches (a batch
        # drops its own duplicates) and reach posts_hot twice, for reconciliation to repair
        MUSICNFT_CONSUMER_BATCH_SIZE="40",
    )
    env.pop("MUSICNFT_WAREHOUSE", None)  # the cloud profile's default: BigQuery
    # WHEN the producer replays it onto Kinesis, delivery writes S3 and the consumer scores it
    for args in (("produce", "--file", str(sample)), ("deliver", "--once"), ("consume", "--once")):
        proc = subprocess.run(cli(*args), env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    # THEN BigQuery's posts_hot holds every unique valid post (and no embedded warehouse exists)
    assert wh.count("posts_hot", "post_id") == expected.unique
    assert not (data_dir / "warehouse").exists()
    # AND S3 holds Parquet drops in Firehose's layout with every valid post
    s3 = client("s3", endpoint)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="raw/").get("Contents", [])]
    assert keys
    ids: list[str] = []
    for key in keys:
        parts = key.split("/")
        assert len(parts) == 6 and parts[5].startswith(
            f"{STREAM}-1-{parts[1]}-{parts[2]}-{parts[3]}-{parts[4]}-"
        )
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        ids += pq.read_table(BytesIO(body), columns=["post_id"]).column(0).to_pylist()
    assert sorted(ids) == sorted(p["post_id"] for p in expected.posts)

    # WHEN the Dagster drop sensor watches the bucket and the requested windows materialize
    resources = {
        "lake": S3LakeResource(bucket=BUCKET, endpoint_url=endpoint),
        "warehouse": BigQueryWarehouseResource(
            project=PROJECT, dataset=wh.dataset, endpoint=bq_endpoint
        ),
        "pipeline": PipelineResource(),
    }
    result = lake_drop_sensor(dg.build_sensor_context(resources=resources))
    assert isinstance(result, dg.SensorResult)
    # one run per day, naming the 15-minute windows it touched in its tag
    windows = {w for r in result.run_requests or [] for w in r.tags[WINDOWS_TAG].split(",") if w}
    expected_windows = {
        window_start(p["created_at"]).strftime("%Y-%m-%d-%H:%M") for p in expected.posts
    }
    assert windows == expected_windows
    for key in sorted(windows):
        run = dg.materialize(WINDOW_ASSETS, **window_run(key), resources=resources)
        assert run.success
        assert all(e.passed for e in run.get_asset_check_evaluations())
    # THEN every valid post is accounted for in the aggregates
    total = wh.query("SELECT sum(post_count) AS n FROM window_metrics_15m WHERE keyword = 'all'")
    assert total.to_pylist() == [{"n": expected.unique}]
    recon = wh.query(
        "SELECT sum(missing) AS m, sum(duplicates) AS d, sum(repaired) AS r, "
        "sum(lake_count) AS lake FROM reconciliation_15m"
    ).to_pylist()[0]
    # (the emulator ignores insertIds, so the sample's redeliveries reach posts_hot twice:
    # reconciliation must have found and removed every one)
    assert recon["m"] == 0 and recon["r"] == recon["d"] > 0
    assert recon["lake"] == expected.unique
    assert wh.query("SELECT count(*) AS n FROM posts").to_pylist() == [{"n": expected.unique}]
    assert wh.count("posts_hot") == wh.count("posts_hot", "post_id") == expected.unique
