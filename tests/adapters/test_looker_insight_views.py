"""The insight views for Looker Studio (`looker_entities`, `looker_spikes`, `looker_engagement`)
on the local BigQuery emulator, over tables made with BigQuery's own DDL and known rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from musicnft.adapters.bigquery import ddl as bigquery_ddl
from musicnft.adapters.bigquery.looker_views import view_ddl
from musicnft.devtools.bq_emulator import PROJECT, bigquery_emulator

pytestmark = pytest.mark.slow

DATASET = "insight_ds"
W1 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
W2 = datetime(2024, 5, 1, 10, 15, tzinfo=UTC)
TS = "2024-05-01T12:00:00Z"


def iso(w: datetime) -> str:
    return w.isoformat().replace("+00:00", "Z")


FIXTURE: dict[str, list[dict[str, Any]]] = {
    "window_metrics_15m": [
        {"window_start": iso(W1), "keyword": "all", "post_count": 40, "updated_at": TS},
        {"window_start": iso(W2), "keyword": "all", "post_count": 10, "updated_at": TS},
        {"window_start": iso(W1), "keyword": "nft", "post_count": 30, "updated_at": TS},
    ],
    "entity_metrics_15m": [
        {"window_start": iso(W1), "entity": "bts", "post_count": 10, "unique_authors": 8,
         "avg_sentiment": 0.5, "positive_count": 6, "neutral_count": 4, "negative_count": 0,
         "total_engagement": 12, "updated_at": TS},
        {"window_start": iso(W2), "entity": "bts", "post_count": 5, "unique_authors": 5,
         "avg_sentiment": None, "positive_count": 0, "neutral_count": 0, "negative_count": 0,
         "total_engagement": 0, "updated_at": TS},
    ],
    "spikes_15m": [
        {"window_start": iso(W2), "dimension": "entity", "key": "bts", "post_count": 5,
         "baseline": 0.0, "score": 5.0, "is_spike": True, "updated_at": TS},
        {"window_start": iso(W2), "dimension": "keyword", "key": "all", "post_count": 10,
         "baseline": 4.0, "score": 3.0, "is_spike": False, "updated_at": TS},
    ],
    "engagement_15m": [
        {"window_start": iso(W1), "keyword": "all", "post_count": 40, "read_1h": 30,
         "engagement_1h": 60, "read_24h": 20, "engagement_24h": 200, "updated_at": TS},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def client() -> Iterator[bigquery.Client]:
    with bigquery_emulator() as endpoint:
        bq = bigquery.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=endpoint),
        )
        bq.create_dataset(DATASET, exists_ok=True)
        for table, rows in FIXTURE.items():
            run(bq, bigquery_ddl.table_ddl(table, DATASET))
            assert not bq.insert_rows_json(f"{PROJECT}.{DATASET}.{table}", rows)
        for name in ("looker_entities", "looker_spikes", "looker_engagement"):
            run(bq, view_ddl(name, DATASET))
        yield bq


def run(bq: bigquery.Client, sql: str) -> None:
    config = bigquery.QueryJobConfig(default_dataset=f"{PROJECT}.{DATASET}")
    bq.query(sql, job_config=config).result()


def query(bq: bigquery.Client, sql: str) -> list[dict[str, Any]]:
    config = bigquery.QueryJobConfig(default_dataset=f"{PROJECT}.{DATASET}")
    job = bq.query(sql, job_config=config)
    return job.result().to_arrow(create_bqstorage_client=False).to_pylist()


def test_entities_share_of_voice_and_reaggregable_sentiment(client: bigquery.Client) -> None:
    rows = query(client, "SELECT * FROM looker_entities ORDER BY window_start")
    assert [(r["posts"], r["window_posts"]) for r in rows] == [(10, 40), (5, 10)]
    assert [r["share_of_voice"] for r in rows] == [0.25, 0.5]
    # sentiment over both windows re-aggregates to 0.5 (the window without sentiment weighs 0)
    (agg,) = query(
        client,
        "SELECT SUM(sentiment_sum) / SUM(sentiment_weight) AS s FROM looker_entities",
    )
    assert agg["s"] == pytest.approx(0.5)


def test_spikes_and_engagement(client: bigquery.Client) -> None:
    spikes = query(client, "SELECT * FROM looker_spikes WHERE is_spike")
    assert [(s["dimension"], s["key"], s["ratio"]) for s in spikes] == [("entity", "bts", None)]
    ratio = query(client, "SELECT ratio FROM looker_spikes WHERE key = 'all'")
    assert ratio == [{"ratio": 2.5}]
    (e,) = query(client, "SELECT * FROM looker_engagement")
    assert (e["read_24h"], e["engagement_24h"], e["posts"]) == (20, 200, 40)
