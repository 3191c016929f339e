"""Reconciliation racing a lagging consumer (issue #12 item 11).

When the consumer is behind (its records still on the stream), reconciliation finds the window's
posts "missing" from posts_hot and inserts them from the lake. The consumer then gets to the same
records: it must skip the ids reconciliation filled instead of inserting them a second time.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.batch import window_pipeline as wp
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import ENRICHED_FIELDS, conform, format_timestamp, to_json_record
from musicnft.contract.tables import POSTS_SCHEMA
from musicnft.contract.windows import window_key
from musicnft.hotpath.consumer import handle_kinesis_event
from musicnft.hotpath.enrich import enrich
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.settings import DEFAULT_KEYWORDS
from tests.support.records import x_message

WINDOW = datetime(2021, 12, 1, 1, 30, tzinfo=UTC)


def _post(i: int) -> dict:
    msg = x_message(i, created=format_timestamp(WINDOW + timedelta(minutes=i % 15)))
    return normalize_x_message(msg, KeywordMatcher(DEFAULT_KEYWORDS), WINDOW + timedelta(hours=1))


def _event(posts: list[dict]) -> dict:
    return {
        "Records": [
            {
                "kinesis": {
                    "sequenceNumber": f"{n:021d}",
                    "partitionKey": p["post_id"],
                    "data": base64.b64encode(json.dumps(to_json_record(p)).encode()).decode(),
                }
            }
            for n, p in enumerate(posts, start=1)
        ]
    }


def test_a_lagging_consumer_does_not_double_what_reconciliation_filled(tmp_path: Path) -> None:
    # GIVEN a window of 5 posts in the lake (its `posts`), of which the consumer has written 2
    posts = [_post(i) for i in range(5)]
    warehouse = EmbeddedWarehouse(tmp_path / "warehouse")
    rows = [conform(enrich(p), ENRICHED_FIELDS) for p in posts]
    warehouse.replace_partition(
        "posts",
        window_key(WINDOW),
        pa.Table.from_pylist([r | {"window_start": WINDOW} for r in rows], schema=POSTS_SCHEMA),
    )
    consumer = EmbeddedWarehouse(tmp_path / "warehouse")  # the consumer's own process
    assert handle_kinesis_event(_event(posts[:2]), consumer) == {"batchItemFailures": []}
    # WHEN reconciliation (Dagster's process) runs while the consumer is behind: it inserts the
    # 3 posts it cannot find
    result = wp.reconcile(warehouse, WINDOW)
    assert (result.missing, result.after_missing) == (3, 0)
    # AND the consumer then processes the rest of the stream, those 3 and a new post included
    late = [*posts[2:], _post(99)]
    assert handle_kinesis_event(_event(late), consumer) == {"batchItemFailures": []}
    # THEN every post is in posts_hot exactly once
    counts = warehouse.query(
        "SELECT post_id, count(*) AS n FROM posts_hot GROUP BY post_id"
    ).to_pylist()
    assert {r["post_id"]: r["n"] for r in counts} == {p["post_id"]: 1 for p in [*posts, _post(99)]}
    # AND a second reconciliation finds nothing to repair
    again = wp.reconcile(warehouse, WINDOW)
    assert (again.missing, again.duplicates) == (0, 0)
