"""A merge of small files writes bounded row groups on one thread (issue #14 item 9).

DuckDB's Parquet writer holds a whole row group per thread: at its default 122,880 rows, the
consumer's idle compaction of posts_hot held hundreds of MB. The merge sets the catalog's
`parquet_row_group_size` to MERGE_ROW_GROUP_ROWS and runs on one thread, then gives the connection
its threads back; the rows are the same before and after.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from musicnft.adapters import embedded_warehouse
from musicnft.adapters.embedded_warehouse import ALIAS, EmbeddedWarehouse
from musicnft.contract.schema import ENRICHED_FIELDS, conform
from musicnft.hotpath.enrich import enrich


def _rows(ids: range) -> list[dict]:
    return [
        conform(
            enrich(
                conform(
                    {
                        "post_id": f"x:{i}",
                        "platform": "x",
                        "created_at": "2021-12-01T00:00:00Z",
                        "ingested_at": "2021-12-01T00:00:01Z",
                        "text": f"post {i} about #NFT music, great drop",
                        "author_followers": 10,
                        "like_count": i % 7,
                        "schema_version": 1,
                    }
                )
            ),
            ENRICHED_FIELDS,
        )
        for i in ids
    ]


def test_a_merge_writes_small_row_groups_on_one_thread_and_keeps_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN posts_hot in 5 files, 2,500 rows, and a row group bound of 1,000 rows (a small
    # stand-in for MERGE_ROW_GROUP_ROWS)
    monkeypatch.setattr(embedded_warehouse, "MERGE_ROW_GROUP_ROWS", 1_000)
    wh = EmbeddedWarehouse(tmp_path)
    for b in range(5):
        rows = _rows(range(b * 500, b * 500 + 500))
        wh.insert_rows("posts_hot", rows, [r["post_id"] for r in rows])
    digest = (
        "SELECT count(*), sum(hash(post_id, text, sentiment_compound, like_count)) FROM posts_hot"
    )
    before = wh.query(digest).to_pylist()
    threads = wh._writer().execute("SELECT current_setting('threads')").fetchall()

    # WHEN the files are merged
    assert wh.compact("posts_hot", min_files=2) == 5

    # THEN one file, in row groups of at most 1,000 rows, with the same rows; the catalog keeps the
    # option and the connection has its threads back
    (path,) = wh.files("posts_hot")
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [
        1_000,
        1_000,
        500,
    ]
    assert wh.query(digest).to_pylist() == before
    con = wh._writer()
    option = con.execute(
        f"SELECT value FROM ducklake_options('{ALIAS}') WHERE option_name = "
        "'parquet_row_group_size'"
    ).fetchall()
    assert option == [("1000",)]
    assert con.execute("SELECT current_setting('threads')").fetchall() == threads
