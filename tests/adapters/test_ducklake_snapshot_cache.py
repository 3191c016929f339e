"""The consumer's per-batch lookups (deleted at the source? repaired already?) keep their answer
until a DuckLake snapshot changes `deletions` or `posts_hot_repairs`: the kept answer must always
be what a fresh read gives, whoever wrote (this process or another), across maintenance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from musicnft.adapters.ducklake_changes import changes_since
from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.schema import HOT_FIELDS, conform
from musicnft.contract.tombstone import Tombstone
from musicnft.hotpath.enrich import enrich
from musicnft.hotpath.tombstones import record, tombstoned_ids

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_changes_name_the_tables_of_the_snapshots_after_the_given_one() -> None:
    rows = [(5, "inserted_into_table:3"), (6, "inserted_into_table:3,deleted_from_table:9")]
    changes = changes_since(rows, 4)
    assert (changes.latest, changes.table_ids, changes.everything) == (6, {3, 9}, False)
    assert changes_since([], 7) == changes_since([], 7)
    assert changes_since([], 7).latest == 7 and not changes_since([], 7).everything


@pytest.mark.parametrize(
    "rows",
    [
        [(5, "inserted_into_table:3"), (7, "inserted_into_table:3")],  # 6 expired: unknown
        [(5, 'created_table:"main"."deletions"')],  # ids may have moved
        [(5, "altered_table:3")],  # not a plain data change
        [(5, None)],  # a snapshot without its changes row
    ],
)
def test_anything_but_plain_table_changes_means_read_again(rows: list) -> None:
    assert changes_since(rows, 4).everything


def _row(i: int, author: str = "a1") -> dict:
    post = {
        "post_id": f"x:{i}",
        "platform": "x",
        "created_at": "2021-12-01T00:00:00Z",
        "ingested_at": "2021-12-01T00:00:01Z",
        "text": f"post {i} about #NFT music",
        "author_id": author,
        "author_followers": 10,
        "schema_version": 1,
    }
    return conform(enrich(conform(post)), HOT_FIELDS)


def _insert(wh: EmbeddedWarehouse, first: int, n: int = 5) -> list[str]:
    rows = [_row(i) for i in range(first, first + n)]
    wh.insert_rows("posts_hot", rows, [r["post_id"] for r in rows])
    return [r["post_id"] for r in rows]


def _fresh(root: Path, ids: list[str], authors: list[str]) -> tuple[set[str], set[str]]:
    """What uncached reads give (a new instance, its cache switched off)."""
    wh = EmbeddedWarehouse(root, read_only=True)
    wh._snapshot_cache.disabled = True
    try:
        return tombstoned_ids(wh, ids, authors), wh.repaired_ids(ids)
    finally:
        wh.close()


def test_kept_answers_equal_fresh_reads_whoever_writes(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    consumer = EmbeddedWarehouse(root)
    other = EmbeddedWarehouse(root)  # `musicnft forget`, reconciliation: another process's writer
    ids = [f"x:{i}" for i in range(40)]
    authors = ["a1", "a2"]

    def check() -> None:
        assert (tombstoned_ids(consumer, ids, authors), consumer.repaired_ids(ids)) == _fresh(
            root, ids, authors
        )

    # GIVEN a consumer that keeps inserting into posts_hot
    check()
    reads = consumer._snapshot_cache.reads
    for first in (0, 5, 10):
        _insert(consumer, first)
        check()
    # THEN its own posts_hot inserts never make it read deletions or repairs again
    assert consumer._snapshot_cache.reads == reads

    # WHEN another writer records a post tombstone, then an author's
    record(other, [Tombstone("x:3", None, "delete", "bluesky", NOW)])
    check()
    assert "x:3" in tombstoned_ids(consumer, ids, authors)
    record(other, [Tombstone(None, "a2", "delete", "bluesky", NOW)])
    check()
    assert "author:a2" in tombstoned_ids(consumer, ids, authors)

    # WHEN reconciliation repairs posts into posts_hot
    other.insert_rows(
        "posts_hot_repairs",
        [{"post_id": "x:7", "window_start": NOW, "repaired_at": NOW}],
        ["repair:x:7"],
    )
    check()
    assert consumer.repaired_ids(ids) == {"x:7"}

    # WHEN maintenance merges files and expires every snapshot but the current one
    _insert(consumer, 20)
    record(other, [Tombstone("x:21", None, "delete", "bluesky", NOW)])
    other.maintain(retention=timedelta(0), orphan_grace=timedelta(0))
    check()
    assert "x:21" in tombstoned_ids(consumer, ids, authors)
    consumer.close()
    other.close()
