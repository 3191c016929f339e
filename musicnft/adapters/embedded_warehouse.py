"""The embedded warehouse: immutable Parquet files per table, queried by an in-process DuckDB.

Why files and not one DuckDB database: the hot path, Dagster and the dashboard run in separate
processes at once, and a DuckDB file admits one writer process and blocks readers meanwhile. Here a
write is "write a new file, then rename it into the table's folder", which never takes a lock, and a
reader sees every file whose rename happened before it listed the folder. Compaction writes one
file that names the files it supersedes (in its Parquet metadata) before those are removed, so a
reader never counts a row twice; a file removed between a reader's listing and its read makes the
read retry.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from musicnft.adapters.local_lake import write_atomic
from musicnft.contract.tables import TABLES, WINDOWED_TABLES
from musicnft.ports import InsertResult, ReadOnlyQueryError

log = logging.getLogger(__name__)

SUPERSEDES_KEY = b"musicnft.supersedes"
_READ_RETRIES = 5


class InsertIdCache:
    """Recently inserted ids, to skip a redelivered row as BigQuery's insertId does (best effort)."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._ids

    def add(self, key: str) -> None:
        self._ids[key] = None
        self._ids.move_to_end(key)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)


def _safe_window(partition: str) -> str:
    return "".join(c for c in partition if c.isalnum() or c == "-")


def _part_name(prefix: str = "part") -> str:
    return f"{prefix}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:12]}.parquet"


class DuckDBDialect:
    """The few SQL spellings that differ between warehouses; each adapter brings its own
    (BigQuery: `TIMESTAMP_TRUNC(x, HOUR)`, `? IN UNNEST(list)`), so shared queries stay shared."""

    @staticmethod
    def hour(column: str) -> str:
        return f"date_trunc('hour', {column})"

    @staticmethod
    def list_contains_param(column: str) -> str:
        return f"list_contains({column}, ?)"

    @staticmethod
    def in_list_param(column: str) -> str:
        return f"{column} IN (SELECT unnest(?))"


class EmbeddedWarehouse:
    """The warehouse port over `$MUSICNFT_DATA_DIR/warehouse/<table>/*.parquet`."""

    dialect = DuckDBDialect()

    def __init__(self, root: Path, recent_files_for_dedup: int = 50) -> None:
        self.root = Path(root)
        self._ids: InsertIdCache | None = None
        self._recent_files = recent_files_for_dedup
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None

    # ---- files ---------------------------------------------------------------------------
    def table_dir(self, table: str) -> Path:
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        return self.root / table

    def files(self, table: str) -> list[Path]:
        """The table's live files: renamed in, not superseded by a compacted file, and for a
        windowed table only the newest version of each window's file."""
        folder = self.table_dir(table)
        if not folder.exists():
            return []
        names = sorted(p.name for p in folder.iterdir() if p.suffix == ".parquet")
        names = [n for n in names if not n.startswith(".")]
        superseded: set[str] = set()
        for name in names:
            if name.startswith("compact-"):
                try:
                    meta = pq.read_schema(folder / name).metadata or {}
                except FileNotFoundError:
                    continue
                superseded.update(json.loads(meta.get(SUPERSEDES_KEY, b"[]")))
        live = [n for n in names if n not in superseded]
        newest: dict[str, str] = {}
        for name in live:
            if name.startswith("w-"):
                window = name.split("~", 1)[0]
                newest[window] = max(newest.get(window, name), name)
        keep = set(newest.values())
        live = [n for n in live if not n.startswith("w-") or n in keep]
        return [folder / n for n in live if (folder / n).exists()]

    @staticmethod
    def _window_of(path: Path) -> datetime:
        """The window of a `w-<YYYY-MM-DD-HHMM>~<version>.parquet` file, from its name."""
        return datetime.strptime(path.name[2:].split("~", 1)[0], "%Y-%m-%d-%H%M").replace(
            tzinfo=UTC
        )

    def _write_file(
        self, table: str, data: pa.Table, name: str, metadata: dict | None = None
    ) -> Path:
        schema = TABLES[table]
        data = data.select(schema.names).cast(schema)
        if metadata:
            data = data.replace_schema_metadata({**(schema.metadata or {}), **metadata})
        buf = BytesIO()
        pq.write_table(data, buf, compression="zstd")
        path = self.table_dir(table) / name
        write_atomic(path, buf.getvalue())
        return path

    # ---- writes --------------------------------------------------------------------------
    def append(self, table: str, data: pa.Table) -> Path | None:
        """Add rows to a table as one new file (atomic, durable when this returns)."""
        if data.num_rows == 0:
            return None
        return self._write_file(table, data, _part_name())

    def _id_cache(self) -> InsertIdCache:
        if self._ids is None:
            cache = InsertIdCache()
            for path in self.files("posts_hot")[-self._recent_files :]:
                try:
                    for pid in pq.read_table(path, columns=["post_id"]).column(0).to_pylist():
                        cache.add(pid)
                except (FileNotFoundError, OSError):
                    continue
            self._ids = cache
        return self._ids

    def insert_rows(
        self, table: str, rows: Sequence[dict[str, Any]], row_ids: Sequence[str]
    ) -> InsertResult:
        """Streaming insert with idempotency keys: a row whose id was inserted recently is skipped.

        Like BigQuery's insertId, this is best effort (the cache covers this process's recent
        inserts and the table's newest files); reconciliation removes what slips through.
        """
        if len(rows) != len(row_ids):
            raise ValueError("rows and row_ids must have the same length")
        with self._lock:
            cache = self._id_cache()
            keep: list[dict[str, Any]] = []
            seen: set[str] = set()
            for row, rid in zip(rows, row_ids, strict=True):
                if rid in cache or rid in seen:
                    continue
                seen.add(rid)
                keep.append(row)
            if keep:
                self.append(table, pa.Table.from_pylist(keep, schema=TABLES[table]))
            for rid in seen:
                cache.add(rid)
        return InsertResult(inserted=len(keep), skipped_duplicates=len(rows) - len(keep))

    def compact(self, table: str, min_files: int = 32, max_rows: int = 2_000_000) -> int:
        """Merge the table's small files into one; returns how many files it replaced.

        The merged file lists its sources in its metadata before they are removed, so readers
        never see a row twice. Run it from the one process that appends to the table.
        """
        with self._table_lock(table):
            return self._compact(table, min_files, max_rows)

    @contextlib.contextmanager
    def _table_lock(self, table: str) -> Iterator[None]:
        """Serializes the rewriters of one table (compaction, dedup) across processes.

        Appends and reads never take it; two rewriters must not supersede the same file twice.
        """
        folder = self.table_dir(table)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".rewrite.lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _compact(self, table: str, min_files: int, max_rows: int) -> int:
        files = self.files(table)
        small = [p for p in files if not p.name.startswith(("compact-", "w-"))]
        if len(small) < min_files:
            return 0
        tables = []
        rows = 0
        chosen: list[Path] = []
        for path in small:
            part = pq.read_table(path)
            if rows + part.num_rows > max_rows and chosen:
                break
            tables.append(part)
            chosen.append(path)
            rows += part.num_rows
        merged = pa.concat_tables(tables, promote_options="default")
        sources = json.dumps([p.name for p in chosen]).encode()
        self._write_file(table, merged, _part_name("compact"), {SUPERSEDES_KEY: sources})
        for path in chosen:
            path.unlink(missing_ok=True)
        return len(chosen)

    def replace_partition(self, table: str, partition: str, data: pa.Table) -> Path:
        """Make `data` the whole content of one window of a windowed table, atomically.

        Each write is a new version of the window's file (`w-<window>~<version>.parquet`);
        readers take the newest version, which also overrides that window's rows in a compacted
        file. So a reader sees the old rows or the new ones, and running a window twice leaves
        the same table (idempotent). Writers of one table take its rewrite lock (milliseconds).
        """
        if table not in WINDOWED_TABLES:
            raise ValueError(f"{table!r} is not replaced by window")
        safe = _safe_window(partition)
        with self._table_lock(table):
            version = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
            path = self._write_file(table, data, f"w-{safe}~{version}.parquet")
            for old in self.table_dir(table).glob(f"w-{safe}~*.parquet"):
                if old.name < path.name:
                    old.unlink(missing_ok=True)
        return path

    def partition_schema(self, table: str, partition: str) -> pa.Schema | None:
        """The stored schema of one window (None when the window has never been written)."""
        safe = _safe_window(partition)
        for path in self.files(table):
            if path.name.startswith(f"w-{safe}~"):
                return pq.read_schema(path)
        for path in self.files(table):
            if path.name.startswith("compact-"):
                window = datetime.strptime(safe, "%Y-%m-%d-%H%M").replace(tzinfo=UTC)
                column = pq.read_table(path, columns=["window_start"]).column(0)
                if window in set(column.to_pylist()):
                    return pq.read_schema(path)
        return None

    def compact_windows(self, table: str, min_files: int = 96) -> int:
        """Merge a windowed table's window files (and earlier compacted files) into one file.

        The newest version of each window wins over a compacted copy. Returns the number of
        files merged (0 when there are fewer than `min_files` window files).
        """
        if table not in WINDOWED_TABLES:
            raise ValueError(f"{table!r} is not a windowed table")
        with self._table_lock(table):
            files = self.files(table)
            window_files = [p for p in files if p.name.startswith("w-")]
            if len(window_files) < min_files:
                return 0
            compacted = [p for p in files if p.name.startswith("compact-")]
            fresh = [pq.read_table(p) for p in window_files]
            parts = fresh[:]
            overridden = {self._window_of(p) for p in window_files}
            for path in compacted:
                old = pq.read_table(path)
                keep = [w not in overridden for w in old.column("window_start").to_pylist()]
                parts.append(old.filter(pa.array(keep, type=pa.bool_())))
            merged = pa.concat_tables(parts, promote_options="default").sort_by("window_start")
            sources = json.dumps([p.name for p in window_files + compacted]).encode()
            self._write_file(table, merged, _part_name("compact"), {SUPERSEDES_KEY: sources})
            for path in window_files + compacted:
                path.unlink(missing_ok=True)
            return len(window_files) + len(compacted)

    def remove_duplicates(self, table: str, key: str, ids: Iterable[str]) -> int:
        """Keep one row per `key` value among `ids`; returns how many rows were removed.

        Rewrites only the files holding those ids, into one file that supersedes them.
        """
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        with self._table_lock(table):
            files = self.files(table)
            if not files:
                return 0
            con = duckdb.connect()
            try:
                hits = con.execute(
                    f'SELECT DISTINCT filename FROM read_parquet(?, filename=true, union_by_name=true) WHERE "{key}" IN (SELECT unnest(?))',
                    [[str(p) for p in files], wanted],
                ).fetchall()
            finally:
                con.close()
            affected = [Path(h[0]) for h in hits]
            if not affected:
                return 0
            merged = pa.concat_tables(
                [pq.read_table(p) for p in affected], promote_options="default"
            )
            wanted_set = set(wanted)
            seen: set[str] = set()
            keep = []
            for i, value in enumerate(merged.column(key).to_pylist()):
                if value in wanted_set and value in seen:
                    continue
                seen.add(value)
                keep.append(i)
            removed = merged.num_rows - len(keep)
            if removed == 0:
                return 0
            sources = json.dumps([p.name for p in affected]).encode()
            self._write_file(
                table, merged.take(keep), _part_name("compact"), {SUPERSEDES_KEY: sources}
            )
            for path in affected:
                path.unlink(missing_ok=True)
            return removed

    # ---- reads ---------------------------------------------------------------------------
    def connect(self, tables: Iterable[str] | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with one view per table over the files live right now."""
        con = duckdb.connect(config={"threads": 2})
        for table in TABLES if tables is None else tables:
            files = [str(p) for p in self.files(table)]
            if files:
                rel = con.read_parquet(files, union_by_name=True)
            else:
                rel = con.from_arrow(TABLES[table].empty_table())
            rel.create_view(table, replace=True)
        return con

    def query(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None, read_only: bool = True
    ) -> pa.Table:
        """Run one SQL query over the tables (by their DESIGN.md names) → Arrow table."""
        if read_only:
            self._check_read_only(sql)
        # Views only for the tables the query names: listing and opening the others is waste.
        tables = [t for t in TABLES if re.search(rf"\b{t}\b", sql)]
        last_error: Exception | None = None
        for attempt in range(_READ_RETRIES):
            with self._lock:
                try:
                    con = self._reader()
                    for table in tables:
                        self._view(con, table)
                    return con.execute(sql, params).to_arrow_table()
                except duckdb.IOException as exc:  # a file vanished under a compaction: relist
                    last_error = exc
            time.sleep(0.05 * (attempt + 1))
        raise RuntimeError(f"query failed after {_READ_RETRIES} attempts: {last_error}")

    def _reader(self) -> duckdb.DuckDBPyConnection:
        """This instance's query connection; it may read the warehouse folder and nothing else."""
        if self._con is None:
            self.root.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(config={"threads": 2})
            con.execute("SET allowed_directories=[?]", [str(self.root.resolve()) + "/"])
            con.execute("SET enable_external_access=false")
            self._con = con
        return self._con

    def _view(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        files = self.files(table)
        if not files:
            rel = con.from_arrow(TABLES[table].empty_table())
        elif table in WINDOWED_TABLES:
            rel = self._windowed_relation(con, table, files)
        else:
            rel = con.read_parquet([str(p) for p in files], union_by_name=True)
        rel.create_view(table, replace=True)

    def _windowed_relation(
        self, con: duckdb.DuckDBPyConnection, table: str, files: list[Path]
    ) -> duckdb.DuckDBPyRelation:
        """Window files, plus compacted rows of every window that has no newer window file."""
        names = TABLES[table].names
        window_files = [p for p in files if p.name.startswith("w-")]
        compacted = [str(p) for p in files if p.name.startswith("compact-")]
        rel: duckdb.DuckDBPyRelation | None = None
        if window_files:
            rel = con.read_parquet([str(p) for p in window_files], union_by_name=True).select(
                *names
            )
        if compacted:
            old = con.read_parquet(compacted, union_by_name=True).select(*names)
            if window_files:
                windows = [duckdb.ConstantExpression(self._window_of(p)) for p in window_files]
                old = old.filter(duckdb.ColumnExpression("window_start").isnotin(*windows))
            rel = old if rel is None else rel.union(old)
        assert rel is not None
        return rel

    def _check_read_only(self, sql: str) -> None:
        with self._lock:
            statements = self._reader().extract_statements(sql)
        allowed = (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN)
        if len(statements) != 1 or statements[0].type not in allowed:
            raise ReadOnlyQueryError("only a single SELECT query is allowed here")

    def count(self, table: str, distinct: str | None = None) -> int:
        expr = f'count(DISTINCT "{distinct}")' if distinct else "count(*)"
        return int(self.query(f'SELECT {expr} AS n FROM "{table}"').column(0)[0].as_py())
