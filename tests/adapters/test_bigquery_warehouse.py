"""The BigQuery warehouse, with the real google-cloud-bigquery client against the emulator.

DDL and migration; the consumer's streaming inserts, with per-row errors injected on the wire by
a proxy that answers as BigQuery does; the Dagster window assets on BigQuery (idempotent reruns,
reconciliation repairing injected gaps and duplicates); and the port's contract details.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest

from musicnft.adapters.bigquery.ddl import LAYOUTS, render_tables, table_ddl
from musicnft.adapters.bigquery.migrate import MigrationError, migrate, table_differences
from musicnft.adapters.bigquery.warehouse import BigQueryWarehouse, check_read_only
from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.batch import window_pipeline as wp
from musicnft.batch.backfill import index_lake
from musicnft.contract.schema import HOT_COLUMNS
from musicnft.contract.tables import POSTS_HOT_SCHEMA, TABLES, WINDOWED_TABLES
from musicnft.contract.windows import WINDOW
from musicnft.devtools.bq_emulator import PROJECT
from musicnft.hotpath.consumer import handle_kinesis_event
from musicnft.hotpath.enrich import enrich
from musicnft.ports import ReadOnlyQueryError, StreamingBufferError
from musicnft.settings import Settings
from musicnft_dagster.assets.windows import WINDOW_ASSETS
from musicnft_dagster.resources import (
    BigQueryWarehouseResource,
    LocalLakeResource,
    PipelineResource,
    resources_for,
)
from musicnft_dagster.windows import window_run
from tests.support.bq import client_for, fresh_warehouse, new_dataset
from tests.support.bq_proxy import BigQueryFaultProxy, bigquery_fault_proxy
from tests.support.paths import ROOT, cli
from tests.support.sample_lake import (  # the sample lake's expectations
    KEY,
    KEYWORDS,
    VOLATILE,
    WINDOW_START,
    Lake,
    expected_posts,
    extra_post,
    hot_row,
)

pytestmark = pytest.mark.slow
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture
def proxy(bq_endpoint: str) -> Iterator[BigQueryFaultProxy]:
    with bigquery_fault_proxy(bq_endpoint) as p:
        yield p


# ---------------------------------------------------------------------------------------------
# DDL and migration
# ---------------------------------------------------------------------------------------------


def test_checked_in_ddl_matches_the_table_definitions() -> None:
    path = ROOT / "infra" / "bigquery" / "tables.sql"
    assert path.read_text() == render_tables(), (
        "regenerate with: musicnft bigquery ddl > infra/bigquery/tables.sql"
    )


def test_the_pyarrow_free_table_names_match_the_table_definitions() -> None:
    from musicnft.contract.table_names import TABLE_NAMES, WINDOWED_TABLE_NAMES

    assert tuple(TABLES) == TABLE_NAMES
    assert set(WINDOWED_TABLE_NAMES) <= set(TABLE_NAMES)
    assert all("window_start" in TABLES[t].names for t in WINDOWED_TABLE_NAMES)


def test_ddl_is_partitioned_by_day_and_clustered_by_window() -> None:
    for table in WINDOWED_TABLES:
        ddl = table_ddl(table)
        assert "PARTITION BY DATE(window_start)" in ddl
        assert "CLUSTER BY window_start" in ddl
    assert "CLUSTER BY window_start, keyword" in table_ddl("window_metrics_15m")
    assert set(LAYOUTS) == set(TABLES)


def test_ddl_applies_twice_and_the_schemas_match_the_contract(bq_endpoint: str) -> None:
    client = client_for(bq_endpoint)
    dataset = new_dataset("ddl")
    client.create_dataset(f"{PROJECT}.{dataset}")
    # WHEN the whole DDL file runs twice
    for _ in range(2):
        for statement in render_tables(dataset).split(";\n"):
            body = "\n".join(
                line for line in statement.splitlines() if not line.startswith("--")
            ).strip()
            if body:
                client.query(body).result()
    # THEN every table exists with exactly the contract's columns, types and modes
    for table in TABLES:
        live = list(client.get_table(f"{PROJECT}.{dataset}.{table}").schema)
        assert table_differences(table, live) == ([], [], []), table
        assert [f.name for f in live] == TABLES[table].names
    posts = {f.name: f for f in client.get_table(f"{PROJECT}.{dataset}.posts").schema}
    assert posts["post_id"].mode == "REQUIRED"
    assert posts["hashtags"].mode == "REPEATED" and posts["hashtags"].field_type == "STRING"
    assert posts["author_followers"].field_type == "INTEGER"
    assert posts["created_at"].field_type == "TIMESTAMP"


def test_migrate_is_idempotent_and_creates_the_views(bq_endpoint: str) -> None:
    from musicnft.adapters.bigquery.looker_views import VIEWS

    client = client_for(bq_endpoint)
    dataset = new_dataset("mig")
    first = migrate(client, dataset, "US")
    assert first.dataset_created and first.tables_created == list(LAYOUTS)
    second = migrate(client, dataset, "US")
    assert not second.dataset_created and not second.tables_created
    assert second.tables_current == list(LAYOUTS) and not second.columns_added
    assert second.views == list(VIEWS)
    for view in VIEWS:
        client.query(f"SELECT * FROM `{PROJECT}.{dataset}.{view}` LIMIT 1").result()


def test_migrate_adds_a_new_column_and_refuses_a_changed_type(bq_endpoint: str) -> None:
    client = client_for(bq_endpoint)
    dataset = new_dataset("old")
    client.create_dataset(f"{PROJECT}.{dataset}")
    # GIVEN posts_hot from an older contract (no engagement_rate) and a reconciliation table
    # whose `missing` column was created as STRING
    old_hot = table_ddl("posts_hot", dataset).replace(",\n  engagement_rate FLOAT64", "")
    assert "engagement_rate" not in old_hot
    client.query(old_hot).result()
    client.query(
        table_ddl("reconciliation_15m", dataset).replace("missing INT64", "missing STRING")
    ).result()
    # WHEN migrating, THEN the column is added, the type change is reported and nothing dropped
    with pytest.raises(MigrationError, match=r"reconciliation_15m\.missing"):
        migrate(client, dataset)
    hot = list(client.get_table(f"{PROJECT}.{dataset}.posts_hot").schema)
    assert table_differences("posts_hot", hot) == ([], [], [])
    recon = {
        f.name: f.field_type
        for f in client.get_table(f"{PROJECT}.{dataset}.reconciliation_15m").schema
    }
    assert recon["missing"] == "STRING"


def test_migrate_command(bq_endpoint: str, cli_env: dict[str, str]) -> None:
    dataset = new_dataset("cli")
    args = ("bigquery", "migrate", "--project", PROJECT, "--dataset", dataset)
    args += ("--endpoint", bq_endpoint)
    for attempt in range(2):
        proc = subprocess.run(cli(*args), env=cli_env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        word = "created" if attempt == 0 else "up to date"
        assert f"table posts_hot: {word}" in proc.stderr
    dry = subprocess.run(
        cli(
            "bigquery",
            "migrate",
            "--dry-run",
            "--project",
            PROJECT,
            "--dataset",
            new_dataset(),
            "--endpoint",
            bq_endpoint,
        ),
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dry.returncode == 0 and "CREATE TABLE IF NOT EXISTS" in dry.stdout
    missing = dict(cli_env)
    missing.pop("MUSICNFT_BIGQUERY_PROJECT", None)
    proc = subprocess.run(
        cli("bigquery", "migrate", "--endpoint", bq_endpoint),
        env=missing,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "MUSICNFT_BIGQUERY_PROJECT" in proc.stderr


# ---------------------------------------------------------------------------------------------
# Hot path: the consumer's streaming inserts
# ---------------------------------------------------------------------------------------------


def kinesis_event() -> dict[str, Any]:
    return json.loads((FIXTURES / "kinesis_event.json").read_text())


def event_posts(event: dict[str, Any]) -> list[tuple[str, str]]:
    """(sequence number, post_id) of each record."""
    out = []
    for r in event["Records"]:
        post = json.loads(base64.b64decode(r["kinesis"]["data"]))
        out.append((r["kinesis"]["sequenceNumber"], post["post_id"]))
    return out


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A posts row without the warehouse's own stamp, a null list read as BigQuery returns it."""
    return {
        k: [] if v is None and k == "entities" else v for k, v in row.items() if k != "inserted_at"
    }


def hot_ids(wh: BigQueryWarehouse) -> Counter[str]:
    return Counter(wh.query("SELECT post_id FROM posts_hot").column(0).to_pylist())


def test_consumer_writes_enriched_posts_to_bigquery(bq_endpoint: str, tmp_path: Path) -> None:
    event = kinesis_event()
    wh = fresh_warehouse(bq_endpoint, "hot")
    assert handle_kinesis_event(event, wh) == {"batchItemFailures": []}
    # THEN posts_hot on BigQuery holds exactly what the embedded warehouse holds for the event
    embedded = EmbeddedWarehouse(tmp_path / "wh")
    handle_kinesis_event(event, embedded)
    # (but for inserted_at: each warehouse stamps its own acceptance time)
    sql = "SELECT * EXCEPT (inserted_at) FROM posts_hot ORDER BY post_id"
    # (and BigQuery has no null arrays: a null list reads back as [])
    want = [
        {k: [] if v is None and k == "entities" else v for k, v in row.items()}
        for row in embedded.query(sql.replace("EXCEPT", "EXCLUDE")).to_pylist()
    ]
    assert wh.query(sql).to_pylist() == want


def test_a_row_bigquery_rejects_is_reported_as_exactly_that_record(
    bq_endpoint: str, proxy: BigQueryFaultProxy
) -> None:
    event = kinesis_event()
    records = event_posts(event)
    bad_seq, bad_id = records[1]
    wh = fresh_warehouse(proxy.endpoint, "bad", backoff_seconds=0.01)
    # GIVEN BigQuery rejects one row of the batch every time
    proxy.reject(bad_id)
    # WHEN the consumer handles the batch
    response = handle_kinesis_event(event, wh)
    # THEN exactly that record is reported failed (Lambda retries it, then the failure
    # destination), it was retried with backoff first, and every other post landed once
    assert response == {"batchItemFailures": [{"itemIdentifier": bad_seq}]}
    attempts = [r for r in proxy.insert_requests if bad_id in json.dumps(r)]
    assert len(attempts) == 1 + wh.insert_retries
    assert hot_ids(wh) == Counter({pid: 1 for _, pid in records if pid != bad_id})


def test_a_transient_row_error_is_retried_and_nothing_is_reported(
    bq_endpoint: str, proxy: BigQueryFaultProxy
) -> None:
    event = kinesis_event()
    records = event_posts(event)
    wh = fresh_warehouse(proxy.endpoint, "flaky", backoff_seconds=0.01)
    proxy.reject(records[0][1], times=2, reason="backendError")
    assert handle_kinesis_event(event, wh) == {"batchItemFailures": []}
    assert hot_ids(wh) == Counter({pid: 1 for _, pid in records})


def test_an_unreachable_bigquery_fails_the_whole_batch(
    bq_endpoint: str, proxy: BigQueryFaultProxy
) -> None:
    from google.api_core.exceptions import GoogleAPICallError, RetryError

    # (the adapter gives up on a failing request after its deadline: 30 s by default, under
    # Lambda's 60 s timeout; the client's own default would keep retrying for 10 minutes)
    wh = fresh_warehouse(proxy.endpoint, "down", request_deadline_seconds=5.0)
    proxy.down()
    # Lambda then retries the batch: nothing is reported as processed
    started = time.monotonic()
    with pytest.raises((GoogleAPICallError, RetryError)):
        handle_kinesis_event(kinesis_event(), wh)
    assert time.monotonic() - started < 30  # gave up at its deadline, not the client's 10 min
    proxy.up()
    assert handle_kinesis_event(kinesis_event(), wh) == {"batchItemFailures": []}


def test_insert_rows_skips_repeated_ids_within_a_call(bq_endpoint: str) -> None:
    wh = fresh_warehouse(bq_endpoint, "ids")
    post = json.loads(base64.b64decode(kinesis_event()["Records"][0]["kinesis"]["data"]))
    from musicnft.hotpath.consumer import decode_post

    row = enrich(decode_post(json.dumps(post).encode()))
    result = wh.insert_rows("posts_hot", [row, row], [row["post_id"], row["post_id"]])
    assert (result.inserted, result.skipped_duplicates, result.failed) == (1, 1, ())


# ---------------------------------------------------------------------------------------------
# The Dagster window assets on BigQuery
# ---------------------------------------------------------------------------------------------


def bq_resources(lake: Lake, endpoint: str, dataset: str) -> dict[str, object]:
    return {
        "lake": LocalLakeResource(root=str(lake.lake_root)),
        "warehouse": BigQueryWarehouseResource(project=PROJECT, dataset=dataset, endpoint=endpoint),
        "pipeline": PipelineResource(keywords=KEYWORDS),
    }


@pytest.fixture
def bq_lake(sample_lake: Lake, bq_endpoint: str) -> tuple[BigQueryWarehouse, dict[str, object]]:
    """A fresh dataset whose lake_files index covers the sample lake."""
    wh = fresh_warehouse(bq_endpoint, "win")
    assert index_lake(LocalLake(sample_lake.lake_root), wh) == len(sample_lake.file_ranges)
    return wh, bq_resources(sample_lake, bq_endpoint, wh.dataset)


def window_snapshot(wh: BigQueryWarehouse) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for table in WINDOWED_TABLES:
        rows = wh.query(f"SELECT * FROM {table} WHERE window_start = ?", [WINDOW_START])
        out[table] = sorted(
            ({k: v for k, v in r.items() if k not in VOLATILE} for r in rows.to_pylist()),
            key=repr,
        )
    hot = wh.query(
        "SELECT * FROM posts_hot WHERE created_at >= ? AND created_at < ?",
        [WINDOW_START, WINDOW_START + WINDOW],
    )
    out["posts_hot"] = sorted(hot.to_pylist(), key=repr)
    return out


def test_window_assets_materialize_on_bigquery_and_reruns_are_identical(
    sample_lake: Lake, bq_lake: tuple[BigQueryWarehouse, dict[str, object]], tmp_path: Path
) -> None:
    wh, resources = bq_lake
    expected = expected_posts(sample_lake)
    wh.insert_rows("posts_hot", [hot_row(p) for p in expected.values()], list(expected))
    # WHEN the window is materialized twice on BigQuery
    first = dg.materialize(WINDOW_ASSETS, **window_run(KEY), resources=resources)
    before = window_snapshot(wh)
    second = dg.materialize(WINDOW_ASSETS, **window_run(KEY), resources=resources)
    after = window_snapshot(wh)
    # THEN every asset and check succeeds, and the tables are identical after the rerun
    assert first.success and second.success
    assert all(e.passed for e in first.get_asset_check_evaluations())
    assert len(first.get_asset_check_evaluations()) == 3
    assert after == before
    assert {r["post_id"] for r in before["posts"]} == set(expected)
    assert before["reconciliation_15m"] == [
        {
            "window_start": WINDOW_START,
            "lake_count": len(expected),
            "hot_count": len(expected),
            "missing": 0,
            "duplicates": 0,
            "repaired": 0,
        }
    ]
    # AND the aggregates equal those the embedded warehouse computes from the same lake
    embedded_root = tmp_path / "embedded"
    import shutil

    shutil.copytree(sample_lake.base_warehouse, embedded_root)
    from musicnft_dagster.resources import EmbeddedWarehouseResource

    local = dict(resources, warehouse=EmbeddedWarehouseResource(root=str(embedded_root)))
    assert dg.materialize(WINDOW_ASSETS, **window_run(KEY), resources=local).success
    embedded = EmbeddedWarehouse(embedded_root)
    for table in wp.AGGREGATE_TABLES:
        sql = f"SELECT * FROM {table} WHERE window_start = ?"

        def rows(w: Any, sql: str = sql) -> list[dict[str, Any]]:
            got = w.query(sql, [WINDOW_START]).to_pylist()
            return sorted(
                ({k: v for k, v in r.items() if k not in VOLATILE} for r in got), key=repr
            )

        assert rows(wh) == rows(embedded), table


def test_reconciliation_on_bigquery_repairs_gaps_and_duplicates(
    sample_lake: Lake, bq_lake: tuple[BigQueryWarehouse, dict[str, object]]
) -> None:
    wh, resources = bq_lake
    expected = expected_posts(sample_lake)
    ids = sorted(expected)
    gaps = ids[::9]
    present = [pid for pid in ids if pid not in gaps]
    twice = present[1::5]
    hot_only = extra_post(1, WINDOW_START + timedelta(minutes=7))
    # GIVEN a hot path that missed some posts, wrote some twice, and one the lake never saw
    rows = [hot_row(expected[pid]) for pid in present] + [hot_only]
    assert wh.insert_rows("posts_hot", rows, [r["post_id"] for r in rows]).inserted == len(rows)
    wh.append(
        "posts_hot",
        pa.Table.from_pylist([hot_row(expected[pid]) for pid in twice], schema=POSTS_HOT_SCHEMA),
    )
    # WHEN the window is materialized
    result = dg.materialize(WINDOW_ASSETS, **window_run(KEY), resources=resources)
    assert result.success
    check = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert check["lake_matches_warehouse"].passed
    # THEN the reconciliation row reports what was wrong and what was repaired
    [row] = wh.query(
        "SELECT * FROM reconciliation_15m WHERE window_start = ?", [WINDOW_START]
    ).to_pylist()
    n = len(expected)
    assert {k: v for k, v in row.items() if k not in VOLATILE} == {
        "window_start": WINDOW_START,
        "lake_count": n,
        "hot_count": n - len(gaps) + 1 + len(twice),
        "missing": len(gaps),
        "duplicates": len(twice),
        "repaired": len(gaps) + len(twice),
    }
    # AND posts_hot holds every lake post once, the repaired rows equal to the lake's
    counts = hot_ids(wh)
    assert counts == Counter({**dict.fromkeys(expected, 1), hot_only["post_id"]: 1})
    repaired = wh.query("SELECT * FROM posts_hot WHERE post_id IN UNNEST(?)", [gaps]).to_pylist()
    assert {r["post_id"]: _comparable(r) for r in repaired} == {
        pid: _comparable(hot_row(expected[pid])) for pid in gaps
    }


def test_duplicates_still_in_the_streaming_buffer_warn_and_are_kept_for_later(
    sample_lake: Lake, bq_lake: tuple[BigQueryWarehouse, dict[str, object]]
) -> None:
    wh, _ = bq_lake
    expected = expected_posts(sample_lake)
    rows = [hot_row(p) for p in expected.values()]
    wh.insert_rows("posts_hot", rows, list(expected))
    dup = rows[0]
    wh.append("posts_hot", pa.Table.from_pylist([dup], schema=POSTS_HOT_SCHEMA))
    dg_result = dg.materialize(WINDOW_ASSETS[:1], **window_run(KEY), resources=bq_lake[1])
    assert dg_result.success

    # GIVEN BigQuery refuses DML on rows still in its streaming buffer (the emulator has none,
    # so the refusal is BigQuery's own error, raised where the client would raise it)
    from google.api_core.exceptions import BadRequest

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise BadRequest(
            "UPDATE or DELETE statement over table posts_hot would affect rows in the "
            "streaming buffer, which is not supported"
        )

    real_run = wh._run
    wh._run = lambda sql, params=None: (
        refuse() if sql.startswith("MERGE `posts_hot`") else real_run(sql, params)
    )  # type: ignore[method-assign]
    with pytest.raises(StreamingBufferError):
        wh.remove_duplicates("posts_hot", "post_id", [dup["post_id"]])
    # WHEN the window reconciles, THEN the duplicate is deferred (posts stays unique), not an error
    result = wp.reconcile(wh, WINDOW_START)
    assert (result.after_missing, result.after_duplicates, result.deferred_duplicates) == (0, 1, 1)
    assert not result.reconciled
    assert wp.check_posts_unique(wh, WINDOW_START) == (True, 0)
    # AND once the buffer has flushed, the next run removes it
    wh._run = real_run  # type: ignore[method-assign]
    again = wp.reconcile(wh, WINDOW_START)
    assert again.reconciled and again.repaired == 1


def test_the_cloud_profile_wires_the_bigquery_resource() -> None:
    settings = Settings.from_env(
        {
            "MUSICNFT_PROFILE": "cloud",
            "MUSICNFT_S3_BUCKET": "lake",
            "MUSICNFT_BIGQUERY_PROJECT": "p",
            "MUSICNFT_BIGQUERY_DATASET": "ds",
            "MUSICNFT_BIGQUERY_LOCATION": "EU",
        }
    )
    resource = resources_for(settings)["warehouse"]
    assert isinstance(resource, BigQueryWarehouseResource)
    assert (resource.dataset, resource.location) == ("ds", "EU")
    embedded = resources_for(Settings.from_env({"MUSICNFT_PROFILE": "local"}))["warehouse"]
    assert not isinstance(embedded, BigQueryWarehouseResource)


def test_the_resource_reads_credentials_and_project_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MUSICNFT_BIGQUERY_PROJECT", "from-env")
    resource = BigQueryWarehouseResource(
        project=dg.EnvVar("MUSICNFT_BIGQUERY_PROJECT"), dataset="d", endpoint="http://127.0.0.1:9"
    )

    @dg.asset
    def probe(warehouse: BigQueryWarehouseResource) -> str:
        return warehouse.warehouse().dataset_id

    result = dg.materialize([probe], resources={"warehouse": resource})
    assert result.output_for_node("probe") == "from-env.d"


# ---------------------------------------------------------------------------------------------
# Port details
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM posts WHERE true",
        "SELECT 1; DROP TABLE posts",
        "INSERT INTO posts_hot SELECT * FROM posts_hot",
        "CREATE TABLE x AS SELECT 1",
        "-- SELECT\nDROP TABLE posts",
    ],
)
def test_read_only_queries_refuse_statements_that_change_things(sql: str) -> None:
    with pytest.raises(ReadOnlyQueryError):
        check_read_only(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "  with a AS (SELECT 1) SELECT * FROM a;",
        "SELECT ';DROP TABLE x' AS s",
        "(SELECT 1)",
        "SELECT 1 -- trailing; comment",
    ],
)
def test_read_only_queries_accept_one_query(sql: str) -> None:
    check_read_only(sql)


def test_replace_partition_refuses_rows_of_another_window(bq_endpoint: str) -> None:
    wh = fresh_warehouse(bq_endpoint, "win2")
    row = {"window_start": WINDOW_START + WINDOW, "hashtag": "nft", "post_count": 1}
    with pytest.raises(ValueError, match="outside window"):
        wh.replace_partition(
            "hashtag_counts_15m",
            KEY,
            pa.Table.from_pylist([row], schema=TABLES["hashtag_counts_15m"]),
        )
    assert wh.count("hashtag_counts_15m") == 0


def test_enriched_columns_round_trip_through_bigquery(sample_lake: Lake, bq_endpoint: str) -> None:
    wh = fresh_warehouse(bq_endpoint, "rt")
    expected = expected_posts(sample_lake)
    rows = [hot_row(p) for p in expected.values()]
    wh.insert_rows("posts_hot", rows, list(expected))
    got = {r["post_id"]: r for r in wh.query("SELECT * FROM posts_hot").to_pylist()}
    assert list(next(iter(got.values()))) == list(HOT_COLUMNS)
    assert all(r["inserted_at"] is not None for r in got.values())  # stamped on insert

    # BigQuery stores a NULL array as an empty one; everything else round-trips exactly
    def norm(r: dict[str, Any]) -> dict[str, Any]:
        return {
            k: ([] if v is None and isinstance(got_any[k], list) else v)
            for k, v in r.items()
            if k != "inserted_at"
        }

    got_any = next(iter(got.values()))
    assert {pid: norm(r) for pid, r in got.items()} == {r["post_id"]: norm(r) for r in rows}


def test_sql_and_status_commands_read_bigquery(bq_endpoint: str, cli_env: dict[str, str]) -> None:
    wh = fresh_warehouse(bq_endpoint, "cli")
    assert handle_kinesis_event(kinesis_event(), wh) == {"batchItemFailures": []}
    n = len(event_posts(kinesis_event()))
    env = dict(
        cli_env,
        MUSICNFT_WAREHOUSE="bigquery",
        MUSICNFT_BIGQUERY_PROJECT=PROJECT,
        MUSICNFT_BIGQUERY_DATASET=wh.dataset,
        MUSICNFT_BIGQUERY_ENDPOINT=bq_endpoint,
    )
    sql = subprocess.run(
        cli("sql", "--json", "SELECT count(*) AS n FROM posts_hot"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sql.returncode == 0, sql.stderr[-2000:]
    assert json.loads(sql.stdout) == [{"n": n}]
    refused = subprocess.run(
        cli("sql", "DELETE FROM posts_hot WHERE true"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "only a single SELECT" in refused.stderr
    assert wh.count("posts_hot") == n
    status = subprocess.run(
        cli("status", "--json"), env=env, capture_output=True, text=True, timeout=120
    )
    assert status.returncode == 0, status.stderr[-2000:]
    assert json.loads(status.stdout)["posts_hot"] == n


def test_bigquery_settings_are_checked_where_a_warehouse_is_opened() -> None:
    from musicnft import wiring
    from musicnft.settings import ConfigError

    # The producer runs in the cloud profile without any BigQuery setting...
    cloud = Settings.from_env({"MUSICNFT_PROFILE": "cloud", "MUSICNFT_S3_BUCKET": "lake"})
    assert cloud.warehouse_backend == "bigquery"
    # ...and whatever opens the warehouse gets an error naming the variable
    with pytest.raises(ConfigError, match="MUSICNFT_BIGQUERY_PROJECT"):
        wiring.open_warehouse(cloud)
    with pytest.raises(ConfigError, match="MUSICNFT_WAREHOUSE"):
        Settings.from_env({"MUSICNFT_WAREHOUSE": "snowflake"})
    with pytest.raises(ConfigError, match="MUSICNFT_BIGQUERY_DATASET"):
        Settings.from_env({"MUSICNFT_BIGQUERY_DATASET": "a.b; DROP"})
    with pytest.raises(ConfigError, match="MUSICNFT_BIGQUERY_ENDPOINT"):
        Settings.from_env({"MUSICNFT_BIGQUERY_ENDPOINT": "ftp://x"})


def test_credentials_are_never_shown_and_bad_ones_are_named() -> None:
    from musicnft.adapters.bigquery.warehouse import _credentials_info

    secret = base64.b64encode(b'{"client_email": "a@b", "private_key": "SECRET"}').decode()
    settings = Settings.from_env(
        {"MUSICNFT_WAREHOUSE": "bigquery", "MUSICNFT_BIGQUERY_CREDENTIALS": secret}
    )
    assert settings.bigquery_credentials == secret
    assert secret not in repr(settings) and "SECRET" not in repr(settings)
    assert _credentials_info(secret)["client_email"] == "a@b"
    assert _credentials_info('{"client_email": "c@d"}')["client_email"] == "c@d"
    for bad in ("not base64!", base64.b64encode(b"[1]").decode(), '{"type": "x"}'):
        with pytest.raises(ValueError, match="credentials") as info:
            _credentials_info(bad)
        assert bad not in str(info.value)


def test_the_resource_builds_its_client_from_an_envvar_service_account_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "musicnft-prod",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "consumer@musicnft-prod.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    monkeypatch.setenv(
        "MUSICNFT_BIGQUERY_CREDENTIALS", base64.b64encode(json.dumps(info).encode()).decode()
    )
    resource = BigQueryWarehouseResource(
        project="musicnft-prod",
        dataset="musicnft",
        gcp_credentials=dg.EnvVar("MUSICNFT_BIGQUERY_CREDENTIALS"),
    )

    @dg.asset
    def probe(warehouse: BigQueryWarehouseResource) -> str:
        with warehouse.get_client() as client:
            return str(client._credentials.service_account_email)

    result = dg.materialize([probe], resources={"warehouse": resource})
    assert result.output_for_node("probe") == info["client_email"]
    # the resource holds the variable's name, not the key
    encoded = base64.b64encode(json.dumps(info).encode()).decode()
    assert encoded not in repr(resource) and "MUSICNFT_BIGQUERY_CREDENTIALS" in repr(resource)
