"""Deletions on BigQuery (the emulator on 127.0.0.1): the same SQL as the embedded warehouse, in
BigQuery's dialect: tombstones recorded, posts_hot purged by the consumer and the purge pass,
status counts, and the visibility check's queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicnft.adapters.local_lake import LocalLake
from musicnft.batch import deletions
from musicnft.hotpath.consumer import handle_kinesis_event
from tests.batch.test_deletions import event, post, post_bytes, tomb
from tests.support.bq import fresh_warehouse

pytestmark = pytest.mark.slow  # the emulator


def test_tombstones_on_bigquery(bq_endpoint: str, tmp_path: Path) -> None:
    wh = fresh_warehouse(bq_endpoint, "del")
    lake = LocalLake(tmp_path / "lake")
    posts = [post(1), post(2, author="7"), post(3, author="7"), post(4)]
    pid = [p["post_id"] for p in posts]
    assert handle_kinesis_event(event([post_bytes(p) for p in posts]), wh) == {
        "batchItemFailures": []
    }
    # the consumer records the tombstone and removes the post at once
    handle_kinesis_event(event([tomb(pid[0]).to_stream_record()], 10), wh)
    hot = sorted(wh.query("SELECT post_id FROM posts_hot").column(0).to_pylist())
    assert hot == pid[1:]
    # an author-level tombstone and a geo scrub, applied by the purge pass
    assert (
        deletions.record_tombstones(
            wh, lake, [tomb(author_id="7"), tomb(pid[3], action="scrub_geo")]
        )
        == 2
    )
    assert deletions.counts(wh) == (3, 3)
    assert set(deletions.visible(wh)) == {"posts_hot"}
    result = deletions.apply_deletions(lake, wh)
    assert (result.applied, result.pending) == (3, 0)
    rows = wh.query("SELECT post_id, author_location FROM posts_hot").to_pylist()
    assert rows == [{"post_id": pid[3], "author_location": None}]
    assert deletions.counts(wh) == (3, 0)
    assert deletions.visible(wh) == {}
    assert deletions.stale_windows(wh) == []
