"""The embedded warehouse (DuckLake): writers and readers in separate processes never block or fail
each other, and every window, insert and merge is one transaction."""

from __future__ import annotations

import multiprocessing as mp
import time
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse, ReadOnlyQueryError
from musicnft.contract.schema import ENRICHED_FIELDS, conform
from musicnft.contract.tables import TABLES
from musicnft.hotpath.enrich import enrich

ROWS_PER_FILE = 40
FILES = 80
# Between two reads of a reader process. Readers that never paused kept both cores busy while the
# writer (the thing under test) waited for one. A read takes longer than a write here, so pausing
# costs little coverage: measured, a reader saw 37-59 of the 80 insert states with the pause and
# 37-39 without it (40-66 reads against 80-204).
READER_PAUSE = 0.02


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
        time.sleep(READER_PAUSE)
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
    # (the merges ran between the inserts: fewer files than batches)
    assert len(wh.files("posts_hot")) < FILES


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


def _metrics(window: datetime, posts: int) -> pa.Table:
    from musicnft.contract.tables import WINDOW_METRICS_SCHEMA

    row = dict.fromkeys(WINDOW_METRICS_SCHEMA.names)
    row.update(window_start=window, keyword="all", post_count=posts)
    return pa.Table.from_pylist([row], schema=WINDOW_METRICS_SCHEMA)


def test_windowed_compaction_keeps_the_newest_version_of_every_window(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from musicnft.contract.windows import window_key

    wh = EmbeddedWarehouse(tmp_path)
    t0 = datetime(2021, 12, 1, tzinfo=UTC)
    windows = [t0 + timedelta(minutes=15 * i) for i in range(10)]
    for i, w in enumerate(windows):
        wh.replace_partition("window_metrics_15m", window_key(w), _metrics(w, i))
    # GIVEN ten one-window files merged into one by DuckLake
    assert len(wh.files("window_metrics_15m")) == 10
    assert wh.compact_windows("window_metrics_15m", min_files=5) == 10
    assert len(wh.files("window_metrics_15m")) == 1
    total = "SELECT sum(post_count) AS n, count(*) AS rows FROM window_metrics_15m"
    assert wh.query(total).to_pylist() == [{"n": 45, "rows": 10}]
    # WHEN a merged window is materialized again
    wh.replace_partition("window_metrics_15m", window_key(windows[3]), _metrics(windows[3], 100))
    # THEN the new version replaces its merged rows (no double count), for readers...
    assert wh.query(total).to_pylist() == [{"n": 45 - 3 + 100, "rows": 10}]
    assert wh.partition_schema("window_metrics_15m", window_key(windows[3])) is not None
    assert wh.partition_schema("window_metrics_15m", window_key(windows[4])) is not None
    assert wh.partition_schema("window_metrics_15m", "2030-01-01-00:00") is None
    # ...and through the next merge
    wh.replace_partition("window_metrics_15m", window_key(windows[9]), _metrics(windows[9], 0))
    assert wh.compact_windows("window_metrics_15m", min_files=1) > 0
    assert wh.query(total).to_pylist() == [{"n": 45 - 3 + 100 - 9, "rows": 10}]
    assert wh.compact_windows("window_metrics_15m", min_files=100) == 0  # too few files


def test_replacing_a_window_leaves_one_file_for_it(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    wh = EmbeddedWarehouse(tmp_path)
    w = datetime(2021, 12, 1, tzinfo=UTC)
    for n in range(3):
        wh.replace_partition("window_metrics_15m", "2021-12-01-00:00", _metrics(w, n))
    assert len(wh.files("window_metrics_15m")) == 1
    assert wh.query("SELECT post_count FROM window_metrics_15m").to_pylist() == [{"post_count": 2}]
    with pytest.raises(ValueError, match="not replaced by window"):
        wh.replace_partition("posts_hot", "2021-12-01-00:00", _metrics(w, 1))


def _window_writer(root: str) -> None:
    from datetime import UTC, timedelta

    from musicnft.contract.windows import window_key

    wh = EmbeddedWarehouse(Path(root))
    t0 = datetime(2021, 12, 1, tzinfo=UTC)
    for rnd in range(3):  # every window rewritten three times, compacted in between
        for i in range(40):
            w = t0 + timedelta(minutes=15 * i)
            wh.replace_partition("window_metrics_15m", window_key(w), _metrics(w, 1))
        wh.compact_windows("window_metrics_15m", min_files=10 + rnd)


def _window_reader(root: str, out: mp.Queue) -> None:
    wh = EmbeddedWarehouse(Path(root))
    seen, errors = [], []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            row = wh.query(
                "SELECT count(*) AS rows, count(DISTINCT window_start) AS windows "
                "FROM window_metrics_15m"
            ).to_pylist()[0]
        except Exception as exc:
            errors.append(repr(exc))
            continue
        seen.append((row["rows"], row["windows"]))
        if (tmp := Path(root) / "done").exists() and tmp.read_text() == "1":
            break
        time.sleep(READER_PAUSE)
    out.put((seen, errors))


def test_windowed_writes_and_compaction_never_show_a_window_twice(tmp_path: Path) -> None:
    root = str(tmp_path / "wh")
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    readers = [ctx.Process(target=_window_reader, args=(root, out)) for _ in range(2)]
    writer = ctx.Process(target=_window_writer, args=(root,))
    for p in [*readers, writer]:
        p.start()
    writer.join(120)
    assert writer.exitcode == 0
    (tmp_path / "wh" / "done").write_text("1")
    for _ in readers:
        seen, errors = out.get(timeout=90)
        assert errors == []
        assert seen and all(rows == windows for rows, windows in seen), "a window seen twice"
    for p in readers:
        p.join(30)
    assert EmbeddedWarehouse(Path(root)).query(
        "SELECT count(*) AS n FROM window_metrics_15m"
    ).to_pylist() == [{"n": 40}]
