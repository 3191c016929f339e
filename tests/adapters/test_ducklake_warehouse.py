"""The embedded warehouse on DuckLake: layout, idempotent commits, concurrent writers, maintenance,
time travel, table stats, read-only opening and the migration from the old file layout."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicnft.adapters.ducklake_migrate import migrate_legacy
from musicnft.adapters.embedded_warehouse import (
    EmbeddedWarehouse,
    LegacyWarehouseError,
    ReadOnlyQueryError,
)
from musicnft.contract.schema import ENRICHED_FIELDS, conform
from musicnft.contract.tables import TABLES, WINDOW_METRICS_SCHEMA
from musicnft.contract.windows import window_key
from musicnft.hotpath.enrich import enrich

T0 = datetime(2021, 12, 1, tzinfo=UTC)


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


def _insert(wh: EmbeddedWarehouse, ids: range) -> int:
    rows = [_row(i) for i in ids]
    return wh.insert_rows("posts_hot", rows, [r["post_id"] for r in rows]).inserted


def _metrics(window: datetime, posts: int) -> pa.Table:
    row = dict.fromkeys(WINDOW_METRICS_SCHEMA.names)
    row.update(window_start=window, keyword="all", post_count=posts)
    return pa.Table.from_pylist([row], schema=WINDOW_METRICS_SCHEMA)


def _parquet_on_disk(root: Path) -> set[Path]:
    return set((root / "data").rglob("*.parquet"))


# ---- layout ------------------------------------------------------------------------------------


def test_catalog_and_data_live_under_the_root_and_nothing_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    root = tmp_path / "wh"
    wh = EmbeddedWarehouse(root)
    assert _insert(wh, range(10)) == 10
    assert (root / "catalog.sqlite").exists()
    files = wh.files("posts_hot")
    assert len(files) == 1 and files[0].is_relative_to(root / "data")
    assert list(home.iterdir()) == []  # no ~/.duckdb: extensions load from the venv
    assert not (root / "duckdb-extensions").exists()


def test_a_new_warehouse_has_every_contract_table_with_the_types_duckdb_reads_from_arrow(
    tmp_path: Path,
) -> None:
    # GIVEN a new warehouse (its tables made by CREATE TABLE from the contract's column types)
    wh = EmbeddedWarehouse(tmp_path / "warehouse")
    wh.count("posts_hot")
    reader = duckdb.connect()
    for table, schema in TABLES.items():
        # THEN each table reads back with exactly the Arrow schema's columns and types
        assert wh.query(f"SELECT * FROM {table} LIMIT 0").schema.names == schema.names, table
        reader.register("empty", schema.empty_table())
        want = reader.execute("DESCRIBE SELECT * FROM empty").fetchall()
        reader.unregister("empty")
        got = wh.query(f"DESCRIBE {table}").to_pylist()
        assert [(r["column_name"], r["column_type"]) for r in got] == [w[:2] for w in want], table
    wh.close()


def test_a_reader_first_at_a_catalog_still_being_created_waits_for_it(tmp_path: Path) -> None:
    # GIVEN a catalog file another process has just made and not yet filled (empty)
    root = tmp_path / "warehouse"
    root.mkdir()
    (root / "catalog.sqlite").touch()
    # WHEN a reader opens the warehouse first (it cannot vouch for that file)
    reader = EmbeddedWarehouse(root, read_only=True)
    # THEN it completes the catalog under the creation lock and reads the empty tables
    assert reader.count("posts_hot") == 0
    assert reader.partition_schema("window_metrics_15m", "2021-12-01-00:00") is None
    reader.close()


def test_a_warehouse_folder_can_be_moved_whole(tmp_path: Path) -> None:
    wh = EmbeddedWarehouse(tmp_path / "a")
    _insert(wh, range(5))
    wh.close()
    shutil.move(tmp_path / "a", tmp_path / "b")
    moved = EmbeddedWarehouse(tmp_path / "b")
    assert moved.count("posts_hot") == 5
    assert _insert(moved, range(5, 8)) == 3
    assert moved.count("posts_hot", distinct="post_id") == 8


# ---- commits -----------------------------------------------------------------------------------


def test_a_commit_whose_answer_was_lost_is_not_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a COMMIT that lands but reports an error (the answer lost on the way back)
    wh = EmbeddedWarehouse(tmp_path)
    real = EmbeddedWarehouse._exec
    calls = {"commits": 0}

    def lossy(self: EmbeddedWarehouse, con: duckdb.DuckDBPyConnection, sql: str, params=None):
        result = real(self, con, sql, params)
        if sql == "COMMIT" and calls["commits"] == 0:
            calls["commits"] += 1
            raise duckdb.TransactionException("connection lost after COMMIT")
        return result

    monkeypatch.setattr(EmbeddedWarehouse, "_exec", lossy)
    # WHEN a batch is inserted and a window replaced
    assert _insert(wh, range(20)) == 20
    # THEN the transaction is found by its token, not retried: the batch is there once
    assert wh.count("posts_hot") == 20
    assert calls["commits"] == 1


def test_a_commit_that_failed_is_retried_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = EmbeddedWarehouse(tmp_path)
    real = EmbeddedWarehouse._exec
    failures = {"left": 3}

    def busy(self: EmbeddedWarehouse, con: duckdb.DuckDBPyConnection, sql: str, params=None):
        if sql == "COMMIT" and failures["left"]:
            failures["left"] -= 1
            raise duckdb.TransactionException("Failed to commit: database is locked")
        return real(self, con, sql, params)

    monkeypatch.setattr(EmbeddedWarehouse, "_exec", busy)
    wh.replace_partition("window_metrics_15m", window_key(T0), _metrics(T0, 7))
    assert failures["left"] == 0
    assert wh.query("SELECT post_count FROM window_metrics_15m").to_pylist() == [{"post_count": 7}]


def test_a_non_transient_error_is_raised_at_once(tmp_path: Path) -> None:
    wh = EmbeddedWarehouse(tmp_path)
    with pytest.raises(KeyError):
        wh.append("no_such_table", pa.table({"a": [1]}))
    with pytest.raises(ValueError, match="window key"):
        wh.replace_partition("window_metrics_15m", "yesterday", _metrics(T0, 1))


def _concurrent_inserter(root: str, worker: int, batches: int) -> None:
    wh = EmbeddedWarehouse(Path(root))
    for b in range(batches):
        start = (worker * batches + b) * 10
        _insert(wh, range(start, start + 10))


def test_concurrent_writers_land_every_batch_exactly_once(tmp_path: Path) -> None:
    # GIVEN three processes inserting into posts_hot at once (their commits collide)
    root = tmp_path / "wh"
    EmbeddedWarehouse(root).count("posts_hot")  # create the catalog first
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_concurrent_inserter, args=(str(root), w, 15)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    # THEN every batch is there, once
    wh = EmbeddedWarehouse(root)
    assert wh.count("posts_hot") == 3 * 15 * 10
    assert wh.count("posts_hot", distinct="post_id") == 3 * 15 * 10


def test_remove_duplicates_keeps_one_row_per_id(tmp_path: Path) -> None:
    wh = EmbeddedWarehouse(tmp_path)
    rows = [_row(i) for i in range(6)]
    data = pa.Table.from_pylist(rows, schema=TABLES["posts_hot"])
    for _ in range(3):
        wh.append("posts_hot", data)
    assert wh.remove_duplicates("posts_hot", "post_id", ["x:0", "x:1", "x:9"]) == 4
    counts = {
        r["post_id"]: r["n"]
        for r in wh.query(
            "SELECT post_id, count(*) AS n FROM posts_hot GROUP BY post_id"
        ).to_pylist()
    }
    assert counts == {"x:0": 1, "x:1": 1, "x:2": 3, "x:3": 3, "x:4": 3, "x:5": 3}
    assert wh.remove_duplicates("posts_hot", "post_id", ["x:0"]) == 0
    assert wh.remove_duplicates("posts_hot", "post_id", []) == 0


# ---- read-only ---------------------------------------------------------------------------------


def test_a_read_only_warehouse_reads_and_refuses_writes(tmp_path: Path) -> None:
    _insert(EmbeddedWarehouse(tmp_path), range(3))
    ro = EmbeddedWarehouse(tmp_path, read_only=True)
    assert ro.count("posts_hot") == 3
    with pytest.raises(PermissionError):
        _insert(ro, range(3, 4))
    with pytest.raises(ReadOnlyQueryError):
        ro.query("INSERT INTO posts_hot SELECT * FROM posts_hot")
    with pytest.raises(PermissionError):
        ro.query("DELETE FROM posts_hot", read_only=False)
    # a trusted writer may run a statement (one transaction)
    rw = EmbeddedWarehouse(tmp_path)
    rw.query("DELETE FROM posts_hot WHERE post_id = 'x:0'", read_only=False)
    assert ro.count("posts_hot") == 2


# ---- maintenance -------------------------------------------------------------------------------


def test_maintenance_merges_expires_and_deletes_old_files(tmp_path: Path) -> None:
    # GIVEN 30 small posts_hot inserts and ten windows each written twice
    wh = EmbeddedWarehouse(tmp_path)
    for b in range(30):
        _insert(wh, range(b * 5, b * 5 + 5))
    for i in range(10):
        w = T0 + timedelta(minutes=15 * i)
        wh.replace_partition("window_metrics_15m", window_key(w), _metrics(w, i))
        wh.replace_partition("window_metrics_15m", window_key(w), _metrics(w, i + 1))
    assert len(wh.files("posts_hot")) == 30
    before = wh.query("SELECT sum(post_count) AS n, count(*) AS c FROM window_metrics_15m")
    # WHEN maintenance runs with no retention
    result = wh.maintain(retention=timedelta(0))
    # THEN each table is one file, the old files are gone from disk, and the rows are unchanged
    assert result["files_merged"] >= 30 + 10
    assert result["snapshots_expired"] > 0
    assert result["files_deleted"] > 0
    assert len(wh.files("posts_hot")) == 1
    assert len(wh.files("window_metrics_15m")) == 1
    live = {p for t in TABLES for p in wh.files(t)}
    assert _parquet_on_disk(tmp_path) == live
    assert wh.count("posts_hot", distinct="post_id") == wh.count("posts_hot") == 150
    after = wh.query("SELECT sum(post_count) AS n, count(*) AS c FROM window_metrics_15m")
    assert after.to_pylist() == before.to_pylist() == [{"n": 55, "c": 10}]
    # AND a second run has nothing left to do
    again = wh.maintain(retention=timedelta(0))
    assert again["files_merged"] == again["files_deleted"] == 0


def test_maintenance_keeps_the_snapshots_within_retention(tmp_path: Path) -> None:
    wh = EmbeddedWarehouse(tmp_path)
    _insert(wh, range(5))
    middle = datetime.now(UTC)
    _insert(wh, range(5, 10))
    wh.maintain(retention=timedelta(hours=1))
    # time travel to before the merge still answers, from files kept for it
    assert wh.query("SELECT count(*) AS n FROM posts_hot", at=middle).to_pylist() == [{"n": 5}]
    assert wh.count("posts_hot") == 10


def test_compact_is_a_merge_and_leaves_counts_alone(tmp_path: Path) -> None:
    wh = EmbeddedWarehouse(tmp_path)
    for b in range(8):
        _insert(wh, range(b * 3, b * 3 + 3))
    assert wh.compact("posts_hot", min_files=32) == 0
    assert wh.compact("posts_hot", min_files=4) == 8
    assert len(wh.files("posts_hot")) == 1
    assert wh.count("posts_hot") == 24
    with pytest.raises(ValueError, match="not a windowed table"):
        wh.compact_windows("posts_hot")


# ---- time travel and stats ---------------------------------------------------------------------


def test_query_at_a_time_answers_as_the_tables_were(tmp_path: Path) -> None:
    wh = EmbeddedWarehouse(tmp_path)
    _insert(wh, range(5))
    wh.replace_partition("window_metrics_15m", window_key(T0), _metrics(T0, 1))
    first = datetime.now(UTC)
    _insert(wh, range(5, 12))
    wh.replace_partition("window_metrics_15m", window_key(T0), _metrics(T0, 2))
    sql = (
        "SELECT count(*) AS n, (SELECT sum(post_count) FROM window_metrics_15m) AS m FROM posts_hot"
    )
    assert wh.query(sql, at=first).to_pylist() == [{"n": 5, "m": 1}]
    assert wh.query(sql).to_pylist() == [{"n": 12, "m": 2}]
    assert wh.query("SELECT count(*) AS n FROM posts_hot WHERE post_id = ?", ["x:7"], at=first)[
        "n"
    ].to_pylist() == [0]
    with pytest.raises(ReadOnlyQueryError):
        wh.query("DELETE FROM posts_hot", read_only=False, at=first)
    with pytest.raises(ValueError, match="timezone"):
        wh.query(sql, at=datetime(2021, 1, 1))
    with pytest.raises(ValueError, match="no snapshot"):
        wh.query(sql, at=datetime(2000, 1, 1, tzinfo=UTC))


def test_table_stats_count_files_and_snapshots_per_table(tmp_path: Path) -> None:
    wh = EmbeddedWarehouse(tmp_path)
    _insert(wh, range(5))
    _insert(wh, range(5, 9))
    wh.replace_partition("window_metrics_15m", window_key(T0), _metrics(T0, 1))
    stats = wh.table_stats()
    assert set(stats) == set(TABLES)
    hot = stats["posts_hot"]
    assert (hot["rows"], hot["data_files"], hot["delete_files"]) == (9, 2, 0)
    assert hot["snapshots"] == 3  # created, two inserts
    assert hot["data_bytes"] > 0 and hot["last_change"] is not None
    assert stats["window_metrics_15m"]["rows"] == 1
    assert stats["lake_files"]["rows"] == stats["lake_files"]["data_files"] == 0
    json.dumps(stats)  # status --json can print it as it is


# ---- migration from the old layout ---------------------------------------------------------------


def _legacy_file(folder: Path, name: str, data: pa.Table, supersedes: list[str] | None = None):
    """The old writer, reduced to what its readers looked at: file names and one metadata key."""
    folder.mkdir(parents=True, exist_ok=True)
    if supersedes is not None:
        meta = {**(data.schema.metadata or {}), b"musicnft.supersedes": json.dumps(supersedes)}
        data = data.replace_schema_metadata(meta)
    pq.write_table(data, folder / name)


def _hot(ids: range) -> pa.Table:
    return pa.Table.from_pylist([_row(i) for i in ids], schema=TABLES["posts_hot"])


def _legacy_root(root: Path) -> None:
    hot = root / "posts_hot"
    _legacy_file(hot, "part-20211201T000000000000-a.parquet", _hot(range(0, 5)))
    _legacy_file(hot, "part-20211201T000001000000-b.parquet", _hot(range(5, 10)))
    # compacted from a and b, whose files a crash left behind: they must not count again
    _legacy_file(
        hot,
        "compact-20211201T000002000000-c.parquet",
        _hot(range(0, 10)),
        supersedes=[
            "part-20211201T000000000000-a.parquet",
            "part-20211201T000001000000-b.parquet",
        ],
    )
    _legacy_file(hot, "part-20211201T000003000000-d.parquet", _hot(range(10, 13)))
    metrics = root / "window_metrics_15m"
    w = [T0 + timedelta(minutes=15 * i) for i in range(3)]
    # windows 0-2 compacted with 1 post each; window 1 rewritten twice since (newest wins)
    compacted = pa.concat_tables([_metrics(x, 1) for x in w])
    _legacy_file(metrics, "compact-20211201T010000000000-e.parquet", compacted, supersedes=[])
    _legacy_file(metrics, "w-2021-12-01-0015~20211201T020000000000.parquet", _metrics(w[1], 5))
    _legacy_file(metrics, "w-2021-12-01-0015~20211201T030000000000.parquet", _metrics(w[1], 7))
    # an empty window written once (a zero-row file): it exists, with no rows
    empty = WINDOW_METRICS_SCHEMA.empty_table()
    _legacy_file(metrics, "w-2021-12-01-0100~20211201T040000000000.parquet", empty)


def test_an_old_layout_is_refused_on_open_then_migrated(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    _legacy_root(root)
    # WHEN the old layout is opened: a clear error, not an empty warehouse
    with pytest.raises(LegacyWarehouseError, match="ducklake_migrate"):
        EmbeddedWarehouse(root)
    # WHEN it is migrated
    counts = migrate_legacy(root)
    # THEN the counts are those the old readers saw (no superseded file, newest window wins)
    assert counts == {"posts_hot": 13, "window_metrics_15m": 3}
    wh = EmbeddedWarehouse(root)
    assert wh.count("posts_hot") == wh.count("posts_hot", distinct="post_id") == 13
    rows = wh.query(
        "SELECT window_start, post_count FROM window_metrics_15m ORDER BY window_start"
    ).to_pylist()
    assert [r["post_count"] for r in rows] == [1, 7, 1]
    assert wh.partition_schema("window_metrics_15m", "2021-12-01-01:00") is not None
    assert wh.partition_schema("window_metrics_15m", "2021-12-01-00:30") is not None
    assert wh.partition_schema("window_metrics_15m", "2021-12-01-01:15") is None
    # AND the old files are moved aside, not deleted; a second run finds nothing to do
    [aside] = root.glob("legacy-*")
    assert sorted(p.name for p in aside.iterdir()) == ["posts_hot", "window_metrics_15m"]
    assert not (root / "posts_hot").exists()
    assert migrate_legacy(root) == {}
    assert wh.count("posts_hot") == 13


def test_a_migration_interrupted_before_moving_the_files_never_doubles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "warehouse"
    _legacy_root(root)
    # GIVEN a migration that committed and then died before moving the old folders
    monkeypatch.setattr(Path, "rename", lambda self, target: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(OSError):
        migrate_legacy(root)
    monkeypatch.undo()
    # WHEN it runs again, THEN the rows are not inserted a second time
    assert migrate_legacy(root) == {"posts_hot": 13, "window_metrics_15m": 3}
    assert EmbeddedWarehouse(root).count("posts_hot") == 13


def test_queries_cannot_write_files_or_run_maintenance(tmp_path: Path) -> None:
    wh = EmbeddedWarehouse(tmp_path)
    _insert(wh, range(3))
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file() and "catalog" not in p.name)
    for sql in (
        f"EXPLAIN ANALYZE COPY (SELECT 1 AS a) TO '{tmp_path}/x.parquet'",
        "SELECT * FROM ducklake_expire_snapshots('wh', older_than => now())",
        "SELECT * FROM ducklake_merge_adjacent_files('wh')",
    ):
        with pytest.raises(ReadOnlyQueryError):
            wh.query(sql)
    after = sorted(p for p in tmp_path.rglob("*") if p.is_file() and "catalog" not in p.name)
    assert after == before
    assert wh.query("SELECT count(*) AS n FROM posts_hot AT (VERSION => 2)").num_rows == 1
