"""The embedded warehouse: writers and readers in separate processes never block or fail each other."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pyarrow as pa
import pytest

from musicnft.embedded_warehouse import EmbeddedWarehouse, ReadOnlyQueryError
from musicnft.enrich import enrich
from musicnft.schema import ENRICHED_FIELDS, conform
from musicnft.tables import TABLES

ROWS_PER_FILE = 40
FILES = 80


def _row(i: int) -> dict:
    post = {
        "post_id": f"x:{i}",
        "platform": "x",
        "created_at": "2021-12-01T00:00:00Z",
        "ingested_at": "2021-12-01T00:00:01Z",
        "text": f"post {i} about #NFT music",
        "author_followers": 10,
        "like_count": 1,
        "schema_version": 1,
    }
    return conform(enrich(conform(post)), ENRICHED_FIELDS)


def _writer(root: str) -> None:
    wh = EmbeddedWarehouse(Path(root))
    for f in range(FILES):
        rows = [_row(f * ROWS_PER_FILE + i) for i in range(ROWS_PER_FILE)]
        wh.insert_rows("posts_hot", rows, [r["post_id"] for r in rows])
        if f % 20 == 19:
            wh.compact("posts_hot", min_files=8)


def _reader(root: str, out: mp.Queue) -> None:
    wh = EmbeddedWarehouse(Path(root))
    observations = []
    errors = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            row = wh.query(
                "SELECT count(*) AS n, count(DISTINCT post_id) AS u FROM posts_hot"
            ).to_pylist()[0]
        except Exception as exc:
            errors.append(repr(exc))
            continue
        observations.append((row["n"], row["u"]))
        if row["n"] == FILES * ROWS_PER_FILE:
            break
    out.put((observations, errors))


def test_concurrent_writer_and_readers_never_fail_or_double_count(tmp_path: Path) -> None:
    # GIVEN a writer process appending (and compacting) while three reader processes query
    root = str(tmp_path / "wh")
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    readers = [ctx.Process(target=_reader, args=(root, out)) for _ in range(3)]
    writer = ctx.Process(target=_writer, args=(root,))
    for p in readers:
        p.start()
    writer.start()
    results = [out.get(timeout=180) for _ in readers]
    for p in [writer, *readers]:
        p.join(timeout=60)
        assert p.exitcode == 0
    # THEN no reader ever failed, never saw a row twice, and counts only grew to the total
    for observations, errors in results:
        assert errors == []
        assert observations, "the reader made no observation"
        assert all(n == u for n, u in observations), "a reader saw a row twice"
        counts = [n for n, _ in observations]
        assert counts == sorted(counts)
        assert counts[-1] == FILES * ROWS_PER_FILE
    wh = EmbeddedWarehouse(Path(root))
    assert wh.count("posts_hot") == FILES * ROWS_PER_FILE
    assert any(p.name.startswith("compact-") for p in wh.files("posts_hot"))


def test_insert_ids_skip_redelivered_rows_even_after_a_restart(tmp_path: Path) -> None:
    rows = [_row(i) for i in range(5)]
    wh = EmbeddedWarehouse(tmp_path)
    first = wh.insert_rows("posts_hot", rows, [r["post_id"] for r in rows])
    again = wh.insert_rows("posts_hot", rows[2:], [r["post_id"] for r in rows[2:]])
    assert (first.inserted, again.inserted, again.skipped_duplicates) == (5, 0, 3)
    restarted = EmbeddedWarehouse(tmp_path)  # a new process: warms its ids from recent files
    assert restarted.insert_rows("posts_hot", rows[:1], ["x:0"]).inserted == 0
    assert restarted.count("posts_hot") == 5


def test_empty_tables_exist_with_their_schema(tmp_path: Path) -> None:
    wh = EmbeddedWarehouse(tmp_path)
    for table, schema in TABLES.items():
        result = wh.query(f"SELECT * FROM {table}")
        assert result.num_rows == 0
        assert result.column_names == schema.names


def test_queries_are_read_only_and_confined_to_the_warehouse(tmp_path: Path) -> None:
    wh = EmbeddedWarehouse(tmp_path)
    wh.append("posts_hot", pa.Table.from_pylist([_row(1)], schema=TABLES["posts_hot"]))
    with pytest.raises(ReadOnlyQueryError):
        wh.query("DELETE FROM posts_hot")
    with pytest.raises(ReadOnlyQueryError):
        wh.query("SELECT 1; SELECT 2")
    with pytest.raises(Exception, match=r"(?i)permission"):
        wh.query("SELECT * FROM read_csv('/etc/passwd')")
    assert wh.query("SELECT post_id FROM posts_hot WHERE post_id = ?", ["x:1"]).num_rows == 1
