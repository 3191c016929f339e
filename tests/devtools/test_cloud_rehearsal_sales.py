"""`make demo-cloud` replays the seeded NFT sales sample (issue 17): the rehearsal's `musicnft run`
has `--sales`, as `make demo` does, and on the cloud profile (moto server's S3, the BigQuery
emulator) that replay lands every valid sale of the sample under the bucket's `sales/`, the drop
sensor on S3 asks for their windows, `nft_sales_15m` materializes on BigQuery with each sale
counted once, and `musicnft status --json` counts them (`sales`, `sales_windows`)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from musicnft.adapters.bigquery.warehouse import BigQueryWarehouse
from musicnft.devtools import cloud_rehearsal
from musicnft.devtools.bq_emulator import PROJECT
from musicnft.devtools.sales_sample import generate_sale_events
from musicnft.devtools.sample import write_sample
from musicnft.hotpath.decode import RejectedRecord, SkipRecord
from musicnft.hotpath.normalize_opensea import normalize_opensea_event
from musicnft_dagster.assets.sales import SALES_ASSETS
from musicnft_dagster.jobs import WINDOWS_TAG
from musicnft_dagster.resources import BigQueryWarehouseResource, PipelineResource, S3LakeResource
from musicnft_dagster.sensors.drops import lake_drop_sensor
from musicnft_dagster.windows import window_run
from producer.sales import event_collection
from tests.support.aws import AWS_ENV, client, moto_server
from tests.support.bq import fresh_warehouse
from tests.support.paths import ROOT, cli

pytestmark = pytest.mark.slow
BUCKET = "musicnft-lake-sales"
STREAM = "musicnft-posts-sales"
UI_FLAGS = {"--dagster": 0, "--dashboard": 0, "--dagster-port": 1, "--dashboard-port": 1}


def sample_sale_ids() -> set[str]:
    """The valid sales of the seeded sample, by id (its re-deliveries once, malformed left out)."""
    ids = set()
    now = datetime.now(UTC)
    for event in generate_sale_events():
        try:
            ids.add(
                normalize_opensea_event(event, event_collection(event), now, "replay")["sale_id"]
            )
        except (SkipRecord, RejectedRecord):
            continue
    return ids


def headless(run: list[str]) -> list[str]:
    """The rehearsal's `musicnft run` arguments without the Dagster UI and the dashboard."""
    out, skip = [], 0
    for arg in run:
        if skip:
            skip -= 1
        elif arg in UI_FLAGS:
            skip = UI_FLAGS[arg]
        else:
            out.append(arg)
    return out


def test_the_rehearsal_runs_the_pipeline_with_the_sales_replay() -> None:
    args = cloud_rehearsal.parser().parse_args(["--speed", "300", "--seconds", "60"])
    run = cloud_rehearsal.run_arguments(args)
    assert "--sales" in run and "--restamp" in run
    assert run[run.index("--speed") + 1] == "300"
    assert headless(run) == [
        "--fresh",
        "--speed",
        "300",
        "--restamp",
        "--sales",
        "--seconds",
        "60.0",
    ]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        client("kinesis", url).create_stream(StreamName=STREAM, ShardCount=1)
        client("s3", url).create_bucket(Bucket=BUCKET)
        yield url


def test_the_sales_sample_reaches_s3_and_nft_sales_15m_on_bigquery(
    endpoint: str, bq_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN the cloud profile on moto server and a migrated dataset on the emulator
    posts = tmp_path / "posts.jsonl"
    write_sample(posts, lines=200, seed=7)
    wh: BigQueryWarehouse = fresh_warehouse(bq_endpoint, "rehearsal_sales")
    data_dir = tmp_path / "data"
    env = dict(os.environ, **AWS_ENV)
    env.update(
        MUSICNFT_PROFILE="cloud",
        MUSICNFT_AWS_ENDPOINT_URL=endpoint,
        MUSICNFT_S3_BUCKET=BUCKET,
        MUSICNFT_STREAM_NAME=STREAM,
        MUSICNFT_DATA_DIR=str(data_dir),
        MUSICNFT_WAREHOUSE="bigquery",
        MUSICNFT_BIGQUERY_PROJECT=PROJECT,
        MUSICNFT_BIGQUERY_DATASET=wh.dataset,
        MUSICNFT_BIGQUERY_ENDPOINT=bq_endpoint,
        MUSICNFT_DELIVERY_BUFFER_SECONDS="1",
        PYTHONPATH=str(ROOT),
    )
    # WHEN the rehearsal's pipeline runs (at full speed, without its UIs) until the replays end
    args = cloud_rehearsal.parser().parse_args(["--speed", "max"])
    run = headless(cloud_rehearsal.run_arguments(args))
    proc = subprocess.run(
        cli("run", *run, "--exit-when-done", "--file", str(posts)),
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=540,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the sales replay finished" in proc.stderr
    # THEN the bucket's sales/ holds every valid sale of the sample (and nothing lands locally)
    expected = sample_sale_ids()
    assert len(expected) > 1000
    s3 = client("s3", endpoint)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="sales/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert keys and all(k.endswith(".parquet") for k in keys)
    ids: list[str] = []
    for key in keys:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        ids += pq.read_table(BytesIO(body), columns=["sale_id"]).column(0).to_pylist()
    assert set(ids) == expected
    assert not (data_dir / "lake").exists()

    def status() -> dict:
        out = subprocess.run(
            cli("status", "--json"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout)

    before = status()
    assert before["sales"] == len(expected) and before["sales_lake_files"] == len(keys)
    assert before["sales_windows"] == 0 and before["sales_windowed"] == 0
    # WHEN the drop sensor watches the bucket and the windows it asks for materialize
    resources = {
        "lake": S3LakeResource(bucket=BUCKET, endpoint_url=endpoint),
        "warehouse": BigQueryWarehouseResource(
            project=PROJECT, dataset=wh.dataset, endpoint=bq_endpoint
        ),
        "pipeline": PipelineResource(),
    }
    result = lake_drop_sensor(dg.build_sensor_context(resources=resources))
    assert isinstance(result, dg.SensorResult)
    windows = {w for r in result.run_requests or [] for w in r.tags[WINDOWS_TAG].split(",") if w}
    assert windows
    for key in sorted(windows):
        materialized = dg.materialize(SALES_ASSETS, **window_run(key), resources=resources)
        assert materialized.success
        assert all(e.passed for e in materialized.get_asset_check_evaluations())
    # THEN nft_sales_15m on BigQuery counts each sale of the sample once
    (row,) = wh.query(
        "SELECT CAST(sum(sale_count) AS INT64) AS n, count(*) AS r FROM nft_sales_15m"
    ).to_pylist()
    assert row["n"] == len(expected)
    after = status()
    assert after["sales_windows"] == row["r"] > 0
    assert after["sales_windowed"] == len(expected) == after["sales"]
