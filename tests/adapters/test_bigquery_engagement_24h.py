"""Engagement at 24 h in `window_metrics_15m` on the BigQuery emulator (issue 18 item 4): a dataset
made before the columns existed gets them from `musicnft bigquery migrate` (added NULLABLE, old
rows kept, a second migrate adds nothing), and the window pipeline and the re-read's update fill
them through the BigQuery adapter, as on the embedded warehouse; the Looker view carries them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from musicnft.adapters.bigquery.ddl import add_column_ddl, table_ddl
from musicnft.adapters.bigquery.migrate import migrate, table_differences
from musicnft.batch import window_pipeline as wp
from musicnft.batch.engagement import recent_24h_windows, refresh_window_metrics
from musicnft.contract.tables import TABLES, WINDOW_METRICS_SCHEMA
from musicnft.contract.windows import window_key
from musicnft.devtools.bq_emulator import PROJECT
from tests.support.bq import client_for, fresh_warehouse, new_dataset

pytestmark = pytest.mark.slow

WINDOW = datetime(2021, 12, 1, 10, 0, tzinfo=UTC)
BUILT = WINDOW + timedelta(minutes=20)
NEW = ("engagement_24h_posts", "avg_engagement_24h")


def test_migrate_adds_the_engagement_columns_to_an_existing_table(bq_endpoint: str) -> None:
    client = client_for(bq_endpoint)
    dataset = new_dataset("eng")
    client.create_dataset(f"{PROJECT}.{dataset}")
    # GIVEN window_metrics_15m as it was before engagement at 24 h, with a row in it
    old = table_ddl("window_metrics_15m", dataset)
    for line in (",\n  engagement_24h_posts INT64", ",\n  avg_engagement_24h FLOAT64"):
        assert line in old
        old = old.replace(line, "")
    client.query(old).result()
    table = f"{PROJECT}.{dataset}.window_metrics_15m"
    assert [f.name for f in client.get_table(table).schema] == WINDOW_METRICS_SCHEMA.names[:-2]
    errors = client.insert_rows_json(
        table,
        [{"window_start": WINDOW.isoformat(), "keyword": "all", "post_count": 3}],
    )
    assert not errors
    # WHEN migrating, THEN exactly the two columns are added, nullable, and the row is kept
    report = migrate(client, dataset)
    assert sorted(report.columns_added) == sorted(f"window_metrics_15m.{c}" for c in NEW)
    assert any(
        "ADD COLUMN IF NOT EXISTS engagement_24h_posts INT64" in s for s in report.statements
    )
    live = list(client.get_table(table).schema)
    assert table_differences("window_metrics_15m", live) == ([], [], [])
    assert {f.name: (f.field_type, f.mode) for f in live if f.name in NEW} == {
        "engagement_24h_posts": ("INTEGER", "NULLABLE"),
        "avg_engagement_24h": ("FLOAT", "NULLABLE"),
    }
    (row,) = client.query(f"SELECT * FROM `{table}`").result()
    assert row["post_count"] == 3 and row["engagement_24h_posts"] is None
    # WHEN migrating again, THEN nothing is added (idempotent)
    again = migrate(client, dataset)
    assert not again.columns_added and "window_metrics_15m" in again.tables_current
    # the printed statement is the idempotent form
    assert add_column_ddl("window_metrics_15m", WINDOW_METRICS_SCHEMA.field(NEW[1]), dataset) == (
        f"ALTER TABLE `{dataset}.window_metrics_15m` ADD COLUMN IF NOT EXISTS "
        "avg_engagement_24h FLOAT64"
    )


def test_the_columns_fill_on_bigquery_before_and_after_the_snapshots(bq_endpoint: str) -> None:
    wh = fresh_warehouse(bq_endpoint, "eng")
    ids = [f"bsky:at://did:plc:a/app.bsky.feed.post/{i}" for i in range(3)]
    posts = [
        {
            "post_id": pid,
            "platform": "bluesky",
            "created_at": WINDOW + timedelta(minutes=1),
            "ingested_at": WINDOW + timedelta(minutes=1),
            "text": "t",
            "matched_keywords": ["music"],
            "schema_version": 1,
            "window_start": WINDOW,
        }
        for pid in ids
    ]
    wh.replace_partition(
        "posts", window_key(WINDOW), pa.Table.from_pylist(posts, schema=TABLES["posts"])
    )
    # GIVEN the window materialized before any +24 h snapshot
    wp.build_aggregate(wh, "window_metrics_15m", WINDOW, ["music", "nft"], now=BUILT)
    assert refresh_window_metrics(wh, WINDOW) is False
    # WHEN two of its posts are read at +24 h (the third is gone at the source)
    read_at = WINDOW + timedelta(hours=24, minutes=5)
    snaps = [
        {"post_id": ids[0], "platform": "bluesky", "age": "24h", "window_start": WINDOW,
         "read_at": read_at, "status": "ok", "engagement": 5},
        {"post_id": ids[1], "platform": "bluesky", "age": "24h", "window_start": WINDOW,
         "read_at": read_at, "status": "ok", "engagement": 8},
        {"post_id": ids[2], "platform": "bluesky", "age": "24h", "window_start": WINDOW,
         "read_at": read_at, "status": "missing", "engagement": None},
        {"post_id": ids[2], "platform": "bluesky", "age": "1h", "window_start": WINDOW,
         "read_at": WINDOW, "status": "ok", "engagement": 100},
    ]  # fmt: skip
    wh.append(
        "engagement_snapshots", pa.Table.from_pylist(snaps, schema=TABLES["engagement_snapshots"])
    )
    # THEN the next re-read run finds the window (its +24 h reads are recent) and fills it, once
    assert recent_24h_windows(wh, read_at + timedelta(minutes=15)) == {WINDOW}
    assert refresh_window_metrics(wh, WINDOW) is True
    assert refresh_window_metrics(wh, WINDOW) is False

    def rows() -> dict[str, dict]:
        return {
            r["keyword"]: r
            for r in wh.query(
                "SELECT * FROM window_metrics_15m WHERE window_start = ?", [WINDOW]
            ).to_pylist()
        }

    before = rows()
    for keyword in ("all", "music"):
        assert before[keyword]["engagement_24h_posts"] == 2
        assert before[keyword]["avg_engagement_24h"] == pytest.approx(6.5)
        assert before[keyword]["updated_at"] == BUILT
    assert before["nft"]["engagement_24h_posts"] == 0
    assert before["nft"]["avg_engagement_24h"] is None
    # AND a window materialized again, after the snapshots, has the same values
    wp.build_aggregate(wh, "window_metrics_15m", WINDOW, ["music", "nft"])
    after = rows()
    for keyword in before:
        assert [after[keyword][c] for c in NEW] == [before[keyword][c] for c in NEW]
    # the Looker view exposes them with the sum Looker re-aggregates
    (view,) = wh.query(
        "SELECT engagement_24h_posts, avg_engagement_24h, engagement_24h_sum "
        "FROM looker_window_metrics WHERE keyword = ?",
        ["all"],
    ).to_pylist()
    assert view["engagement_24h_posts"] == 2 and view["engagement_24h_sum"] == pytest.approx(13.0)
