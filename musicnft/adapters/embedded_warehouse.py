"""The embedded warehouse: DuckLake tables (a SQLite catalog + Parquet data files) under one root.

`<root>/catalog.sqlite` is the DuckLake catalog (in WAL mode), `<root>/data/main/<table>/` holds
the Parquet data files. Every change is one DuckLake transaction: a batch insert, a window
replacement (delete the window's rows + insert the new ones), a duplicate removal, a merge of
small files. Readers attach the catalog read-only and see the latest committed snapshot, or the
snapshot current at a given time (`query(..., at=...)`). The hot path, Dagster, the dashboard,
`status` and `sql` run in separate processes at once: a write that meets another one's commit
(SQLite's lock, a DuckLake conflict) is retried with backoff and jitter, and a commit whose
outcome is unknown is looked up (by the token in its commit message) before it is retried, so a
batch lands once. See docs/warehouse.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute

from musicnft.adapters.ducklake_catalog import (
    ALIAS,
    CATALOG_FILE,
    META_SCHEMA,
    RetryPolicy,
    attach_sql,
    create_s3_secret,
    extensions_for,
    is_transient,
    new_connection,
)
from musicnft.adapters.ducklake_changes import SnapshotCache
from musicnft.adapters.sql_guard import check_read_only
from musicnft.contract.tables import TABLES, WINDOWED_TABLES
from musicnft.contract.windows import parse_window_key
from musicnft.contract.windows import spans as window_spans
from musicnft.ports import InsertResult, ReadOnlyQueryError

log = logging.getLogger(__name__)

T = TypeVar("T")

# The windows ever written per windowed table (an empty window is written too), kept inline in
# the catalog: `partition_schema` tells "never written" from "written with no rows".
WINDOWS_TABLE = f"{META_SCHEMA}.windows"
_READY: set[str] = set()  # roots whose catalog this process has checked or created
# Ids kept in memory per small lookup table (deletions, repairs); past it, one query per batch.
CACHED_IDS_MAX = 500_000
# Rows per Parquet row group in files a merge writes. DuckDB's Parquet writer holds a whole row
# group per thread in memory (~1.5 KB a posts_hot row): at DuckDB's 122,880 rows, merging 100k
# posts_hot rows in 395 small files took the consumer (which compacts posts_hot when idle) from
# 140 to 474 MB resident; with this, on one thread, to 263 MB (issue #14 item 9).
MERGE_ROW_GROUP_ROWS = 16_384


def _reject_strays(data: pa.Table, windows: Sequence[datetime], partitions: Sequence[str]) -> None:
    """A replacement's rows must all belong to the windows it replaces (a stray row would
    survive the next replacement of its own window twice)."""
    if data.num_rows == 0 or "window_start" not in data.schema.names:
        return
    allowed = set(windows)
    strays = {w for w in data.column("window_start").to_pylist() if w not in allowed}
    if strays:
        shown = ", ".join(sorted(str(w) for w in strays)[:3])
        raise ValueError(f"rows outside windows {', '.join(partitions[:3])} given: {shown}")


class LegacyWarehouseError(RuntimeError):
    """The root holds tables in the pre-DuckLake layout (Parquet files under `<root>/<table>/`)."""


def legacy_tables(root: Path) -> list[str]:
    """The tables of `root` still stored the old way, as `<root>/<table>/*.parquet`."""
    found = []
    for table in TABLES:
        folder = Path(root) / table
        if folder.is_dir() and any(
            p.suffix == ".parquet" and not p.name.startswith(".") for p in folder.iterdir()
        ):
            found.append(table)
    return found


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

    @staticmethod
    def as_float(expression: str) -> str:
        """For sums of counters that may pass int64 (four counts near 2^62 each)."""
        return f"CAST({expression} AS DOUBLE)"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _broken(exc: BaseException) -> bool:
    """A connection DuckDB invalidated (after a fatal error): open a new one."""
    return isinstance(exc, duckdb.FatalException) or "invalidated" in str(exc).lower()


def _conformed(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """`data` in the table's column order and types. Nullable columns it lacks (written by code
    that predates them) are null; `inserted_at` is when the warehouse accepted the row, so rows
    without one get the time of this insert."""
    n = data.num_rows
    columns = []
    for field in schema:
        if field.name in data.column_names:
            column = data[field.name].cast(field.type)
        else:
            column = pa.nulls(n, field.type)
        if field.name == "inserted_at" and column.null_count:
            now = pa.scalar(datetime.now(UTC), field.type)
            column = pa.compute.fill_null(column, now)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


_SQL_COLUMNS: dict[str, list[tuple[str, str]]] = {}  # Arrow schema (as text) -> its columns


def _sql_columns(con: duckdb.DuckDBPyConnection, schema: pa.Schema) -> list[tuple[str, str]]:
    """DuckDB's column types for an Arrow schema, as DuckDB itself reads the schema (so a table
    created from them is the table a CREATE TABLE AS from an empty Arrow table made, at a third
    less of a fresh warehouse's cost: 70 ms for every table, was 110)."""
    key = schema.to_string()
    if (known := _SQL_COLUMNS.get(key)) is not None:
        return known
    con.register("_musicnft_empty", schema.empty_table())
    try:
        described = con.execute("DESCRIBE SELECT * FROM _musicnft_empty").fetchall()
    finally:
        con.unregister("_musicnft_empty")
    columns = [(str(row[0]), str(row[1])) for row in described]
    _SQL_COLUMNS[key] = columns
    return columns


CatalogGaps = tuple[bool, list[str], list[tuple[str, pa.Field]], bool]
_NO_GAPS: CatalogGaps = (True, [], [], False)


def _catalog_gaps(con: duckdb.DuckDBPyConnection) -> CatalogGaps:
    """What an attached catalog lacks of the contract: (whether it has any table, the tables
    missing, the (table, column) pairs missing, whether the windows' write records are missing)."""
    existing: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in con.execute(
        "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
        f"WHERE database_name = '{ALIAS}'"
    ).fetchall():
        existing.setdefault((schema, table), set()).add(column)
    missing = [t for t in TABLES if ("main", t) not in existing]
    new_columns = [
        (t, f)
        for t in TABLES
        if ("main", t) in existing
        for f in TABLES[t]
        if f.name not in existing[("main", t)]
    ]
    return bool(existing), missing, new_columns, (META_SCHEMA, "windows") not in existing


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class EmbeddedWarehouse:
    """The warehouse port over DuckLake tables in `$MUSICNFT_DATA_DIR/warehouse/`.

    `read_only=True` opens it for readers only (the dashboard, `status`, `sql`): every write
    raises. Queries always run on a read-only attachment with file access confined to the root.
    """

    dialect = DuckDBDialect()

    def __init__(
        self,
        root: Path,
        read_only: bool = False,
        recent_snapshots_for_dedup: int = 200,
        retry: RetryPolicy | None = None,
        *,
        catalog: str | None = None,
        data_path: str | None = None,
        s3_endpoint_url: str | None = None,
        legacy_ok: bool = False,
    ) -> None:
        self.root = Path(root).absolute()
        # None: `<root>/catalog.sqlite`; "postgres:<libpq string>": a PostgreSQL catalog
        # (docs/warehouse.md, Beyond one laptop); data in `data_path`, else `<root>/data/`.
        self.catalog = catalog
        self.data_path = data_path
        self.s3_endpoint_url = s3_endpoint_url  # a local S3 (moto) for an s3:// data path
        self.read_only = read_only
        self.retry = retry or RetryPolicy()
        self._recent_snapshots = recent_snapshots_for_dedup
        self._ids: InsertIdCache | None = None
        self._lock = threading.RLock()
        self._writer_con: duckdb.DuckDBPyConnection | None = None
        self._reader_con: duckdb.DuckDBPyConnection | None = None
        self._snapshot_cache = SnapshotCache(
            lambda sql, params: self._read(
                "snapshot changes", lambda con: con.execute(sql, params).fetchall()
            ),
            ALIAS,
        )
        if not legacy_ok and (legacy := legacy_tables(self.root)):
            raise LegacyWarehouseError(
                f"{self.root} holds tables in the old file-per-table layout ({', '.join(legacy)}): "
                "convert them with `python -m musicnft.adapters.ducklake_migrate "
                f"{self.root}` (see docs/warehouse.md, Migration)"
            )

    def close(self) -> None:
        with self._lock:
            for con in (self._writer_con, self._reader_con):
                if con is not None:
                    con.close()
            self._writer_con = self._reader_con = None

    # ---- catalog and connections ----------------------------------------------------------
    def _ready_key(self) -> str:
        return f"{self.root}|{self.catalog}|{self.data_path}"

    def _known_ready(self) -> bool:
        return self._ready_key() in _READY and bool(
            self.catalog or (self.root / CATALOG_FILE).exists()
        )

    def _attach_ensured(self, con: duckdb.DuckDBPyConnection) -> None:
        """Attach `con` read-write, creating the catalog and every table the first time this
        process opens the root (under a file lock: many processes may open a fresh root at once)
        and adding columns a newer contract has and the stored tables lack. The check runs on
        the connection that is kept, not on one opened for it: a process's first open of a
        warehouse was two connections (~30 ms more)."""
        if self._known_ready():
            self.retry.run("attach", lambda: con.execute(self._attach_sql()))
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.root / ".catalog.lock"):
            self.retry.run("attach", lambda: con.execute(self._attach_sql()))
            self.retry.run("create tables", lambda: self._create_tables(con))
        _READY.add(self._ready_key())

    def _ensure_catalog(self) -> None:
        """`_attach_ensured` on a connection of its own (a reader's first open of a root whose
        catalog it cannot vouch for)."""
        if self._known_ready():
            return
        con = self._connection()
        try:
            self._attach_ensured(con)
        finally:
            con.close()

    @staticmethod
    def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
        gaps = _catalog_gaps(con)
        if gaps == _NO_GAPS:
            return
        has_tables, missing, new_columns, meta_missing = gaps
        con.execute("BEGIN")
        try:
            if not has_tables:  # a new catalog: every insert writes Parquet, none is inlined
                con.execute(f"CALL ducklake_set_option('{ALIAS}', 'data_inlining_row_limit', 0)")
            for table in missing:
                columns = ", ".join(
                    f"{_ident(name)} {sql_type}"
                    for name, sql_type in _sql_columns(con, TABLES[table])
                )
                con.execute(f"CREATE TABLE IF NOT EXISTS {ALIAS}.main.{_ident(table)} ({columns})")
            for table, field in new_columns:
                [(name, sql_type)] = _sql_columns(con, pa.schema([field]))
                con.execute(
                    f"ALTER TABLE {ALIAS}.main.{_ident(table)} ADD COLUMN {_ident(name)} {sql_type}"
                )
            if meta_missing:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {ALIAS}.{META_SCHEMA}")
                con.execute(
                    f"CREATE TABLE IF NOT EXISTS {ALIAS}.{WINDOWS_TABLE} "
                    "(table_name VARCHAR, window_start TIMESTAMPTZ, written_at TIMESTAMPTZ)"
                )
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        if meta_missing:
            # A row per window write: inlined in the catalog rather than a tiny file each.
            con.execute(
                f"CALL ducklake_set_option('{ALIAS}', 'data_inlining_row_limit', 100000, "
                f"schema => '{META_SCHEMA}', table_name => 'windows')"
            )

    def _connection(self) -> duckdb.DuckDBPyConnection:
        con = new_connection(self.root, extensions_for(self.catalog, self.data_path))
        if self.data_path and self.data_path.startswith("s3://"):
            try:
                create_s3_secret(con, self.s3_endpoint_url)
            except BaseException:
                con.close()
                raise
        return con

    def _attach_sql(self, read_only: bool = False, snapshot_time: datetime | None = None) -> str:
        return attach_sql(
            self.root,
            self.catalog,
            self.data_path,
            read_only=read_only,
            snapshot_time=snapshot_time,
        )

    def _writer(self) -> duckdb.DuckDBPyConnection:
        if self.read_only:
            raise PermissionError(f"this warehouse at {self.root} was opened read-only")
        if self._writer_con is None:
            con = self._connection()
            try:
                self._attach_ensured(con)
                con.execute(f"USE {ALIAS}")
            except BaseException:
                con.close()
                raise
            self._writer_con = con
        return self._writer_con

    def _locked_down(self, snapshot_time: datetime | None = None) -> duckdb.DuckDBPyConnection:
        """A read-only attachment that may read the warehouse folder and nothing else.

        A first look at an existing catalog checks its tables on this attachment; only a
        catalog that lacks some (new, or older than the contract) is completed by a writer's
        connection first."""
        vouch = snapshot_time is None and self.catalog is None and not self._known_ready()
        if not vouch or not (self.root / CATALOG_FILE).exists():
            self._ensure_catalog()
            vouch = False
        con = self._connection()
        try:
            sql = self._attach_sql(read_only=True, snapshot_time=snapshot_time)
            if vouch:
                try:  # (a catalog another process is creating may not be one yet)
                    con.execute(sql)
                    complete = _catalog_gaps(con) == _NO_GAPS
                except duckdb.Error:
                    complete = False
                if not complete:
                    con.close()
                    self._ensure_catalog()  # waits for its creator, completes it if need be
                    return self._locked_down(snapshot_time)
                _READY.add(self._ready_key())
            else:
                self.retry.run("attach", lambda: con.execute(sql))
            con.execute(f"USE {ALIAS}")
            allowed = [str(self.root.resolve()) + "/"]
            if self.data_path:
                allowed.append(self.data_path)
            con.execute("SET allowed_directories=?", [allowed])
            con.execute("SET enable_external_access=false")
        except BaseException:
            con.close()
            raise
        return con

    def _reader(self) -> duckdb.DuckDBPyConnection:
        if self._reader_con is None:
            self._reader_con = self._locked_down()
        return self._reader_con

    def _exec(
        self, con: duckdb.DuckDBPyConnection, sql: str, params: Any = None
    ) -> duckdb.DuckDBPyConnection:
        """Every statement of a write goes through here (the crash tests stop a process at each)."""
        return con.execute(sql, params)

    def _read(self, what: str, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run a read on the reader connection; catalog-busy and vanished-file errors retry."""

        def attempt() -> T:
            with self._lock:
                try:
                    return fn(self._reader())
                except duckdb.Error as exc:
                    if _broken(exc):
                        self._reader_con = None
                    raise

        return self.retry.run(what, attempt)

    # ---- transactions -----------------------------------------------------------------------
    def _transaction(self, label: str, body: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `body` in one DuckLake transaction, retrying conflicts with backoff and jitter.

        The commit carries a fresh token in its commit message; when COMMIT itself fails (the
        outcome is unknown: the process may have lost the answer, not the write), the snapshots
        are searched for the token before anything is retried, so a change never lands twice.
        """
        token = uuid.uuid4().hex

        def attempt() -> T:
            con = self._writer()
            committing = False
            try:
                self._exec(con, "BEGIN")
                self._exec(
                    con,
                    f"CALL ducklake_set_commit_message('{ALIAS}', 'musicnft', ?, extra_info => ?)",
                    [label, token],
                )
                result = body(con)
                committing = True
                self._exec(con, "COMMIT")
                return result
            except BaseException as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                if _broken(exc):  # the next attempt opens a new connection
                    self._writer_con = None
                    con = self._writer()
                if committing and isinstance(exc, duckdb.Error) and self._committed(con, token):
                    log.info("%s: commit reported %s but it landed", label, exc)
                    return result
                raise

        with self._lock:
            return self.retry.run(label, attempt)

    def _committed(self, con: duckdb.DuckDBPyConnection, token: str) -> bool:
        def look() -> bool:
            row = con.execute(
                f"SELECT count(*) FROM ducklake_snapshots('{ALIAS}') WHERE commit_extra_info = ?",
                [token],
            ).fetchone()
            return bool(row and row[0])

        return self.retry.run("look up a commit", look)

    def _insert(self, con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> int:
        schema = TABLES[table]
        data = _conformed(data, schema)
        if data.num_rows == 0:
            return 0
        name = f"_musicnft_batch_{uuid.uuid4().hex[:8]}"
        con.register(name, data)
        try:
            cols = ", ".join(_ident(c) for c in schema.names)
            self._exec(con, f"INSERT INTO main.{_ident(table)} ({cols}) SELECT {cols} FROM {name}")
        finally:
            con.unregister(name)
        return data.num_rows

    # ---- writes --------------------------------------------------------------------------
    def append(self, table: str, data: pa.Table) -> int | None:
        """Add rows to a table in one transaction (durable when this returns)."""
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        if data.num_rows == 0:
            return None
        return self._transaction(f"append {table}", lambda con: self._insert(con, table, data))

    def _id_cache(self) -> InsertIdCache:
        """This process's recent ids, warmed from the rows inserted by the latest snapshots."""
        if self._ids is None:
            cache = InsertIdCache()

            def recent(con: duckdb.DuckDBPyConnection) -> list[str]:
                first, last = con.execute(
                    f"SELECT min(snapshot_id), max(snapshot_id) FROM ducklake_snapshots('{ALIAS}')"
                ).fetchone() or (None, None)
                if last is None:
                    return []
                start = max(int(first), int(last) - self._recent_snapshots)
                rows = con.execute(
                    f"SELECT post_id FROM ducklake_table_insertions('{ALIAS}', 'main', "
                    "'posts_hot', ?::BIGINT, ?::BIGINT)",
                    [start, int(last)],
                ).fetchall()
                return [r[0] for r in rows]

            try:
                for pid in self._read("warm the insert ids", recent):
                    cache.add(pid)
            except duckdb.Error as exc:  # best effort, as BigQuery's insertId
                log.warning("could not warm the insert-id cache: %s", exc)
            self._ids = cache
        return self._ids

    def insert_rows(
        self, table: str, rows: Sequence[dict[str, Any]], row_ids: Sequence[str]
    ) -> InsertResult:
        """Streaming insert with idempotency keys: a row whose id was inserted recently is skipped.

        Like BigQuery's insertId, this is best effort (the cache covers this process's recent
        inserts and the rows of the latest snapshots); reconciliation removes what slips through.
        The batch is one transaction, retried on conflicts; exhausted retries raise (an outage:
        the caller retries the whole batch).
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
                data = pa.Table.from_pylist(keep, schema=TABLES[table])
                self._transaction(f"insert {table}", lambda con: self._insert(con, table, data))
            for rid in seen:
                cache.add(rid)
        return InsertResult(inserted=len(keep), skipped_duplicates=len(rows) - len(keep))

    def replace_partition(self, table: str, partition: str, data: pa.Table) -> int:
        """Make `data` the whole content of one window of a windowed table, in one transaction
        (delete the window's rows, insert the new ones): readers see the old rows or the new
        ones, and running a window twice leaves the same table. Returns the rows written."""
        return self.replace_partitions(table, [partition], data)

    def replace_partitions(self, table: str, partitions: Sequence[str], data: pa.Table) -> int:
        """`replace_partition` for several windows in one transaction: a run recomputing a day's
        windows commits once per step instead of once per window (each DuckLake commit costs
        tens of milliseconds and leaves files to merge). Returns the rows written."""
        if table not in WINDOWED_TABLES:
            raise ValueError(f"{table!r} is not replaced by window")
        windows = sorted({parse_window_key(p) for p in partitions})
        if not windows:
            return 0
        _reject_strays(_conformed(data, TABLES[table]), windows, partitions)
        spans = window_spans(windows)

        def body(con: duckdb.DuckDBPyConnection) -> int:
            # ranges, not a list: a filter DuckLake prunes files with, where a list is a join
            condition = " OR ".join("(window_start >= ? AND window_start < ?)" for _ in spans)
            bounds = [bound for span in spans for bound in span]
            self._exec(con, f"DELETE FROM main.{_ident(table)} WHERE {condition}", bounds)
            n = self._insert(con, table, data)
            self._exec(
                con,
                f"DELETE FROM {WINDOWS_TABLE} WHERE table_name = ? AND ({condition})",
                [table, *bounds],
            )
            self._exec(
                con,
                f"INSERT INTO {WINDOWS_TABLE} SELECT ?, unnest(?), now()",
                [table, windows],
            )
            return n

        label = partitions[0] if len(windows) == 1 else f"{len(windows)} windows"
        return self._transaction(f"replace {table} {label}", body)

    def partition_schema(self, table: str, partition: str) -> pa.Schema | None:
        """The stored schema of one window (None when the window has never been written)."""
        return self.partition_schemas(table, [partition])[partition]

    def partition_schemas(
        self, table: str, partitions: Sequence[str]
    ) -> dict[str, pa.Schema | None]:
        """`partition_schema` for several windows of one table, in one read."""
        windows: dict[str, datetime] = {}
        for key in partitions:
            with contextlib.suppress(ValueError):  # not a window key: never written
                windows[key] = parse_window_key(key)

        def look(con: duckdb.DuckDBPyConnection) -> dict[str, pa.Schema | None]:
            written = {
                row[0]
                for row in con.execute(
                    f"SELECT DISTINCT window_start FROM {WINDOWS_TABLE} "
                    "WHERE table_name = ? AND window_start IN (SELECT unnest(?))",
                    [table, sorted(set(windows.values()))],
                ).fetchall()
            }
            schema = None
            if written:
                sql = f"SELECT * FROM main.{_ident(table)} LIMIT 0"
                schema = con.execute(sql).to_arrow_table().schema
            return {k: schema if windows.get(k) in written else None for k in partitions}

        if not windows:
            return dict.fromkeys(partitions)
        return self._read("partition schema", look)

    def remove_duplicates(self, table: str, key: str, ids: Iterable[str]) -> int:
        """Keep one row per `key` value among `ids` (one DELETE); returns how many rows went."""
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        if table not in TABLES or key not in TABLES[table].names:
            raise KeyError(f"unknown table or column {table}.{key}")

        def body(con: duckdb.DuckDBPyConnection) -> int:
            row = self._exec(
                con,
                f"DELETE FROM main.{_ident(table)} WHERE rowid IN ("
                f" SELECT rowid FROM (SELECT rowid, row_number() OVER ("
                f"  PARTITION BY {_ident(key)} ORDER BY rowid) AS n"
                f"  FROM main.{_ident(table)} WHERE {_ident(key)} IN (SELECT unnest(?))"
                ") WHERE n > 1)",
                [wanted],
            ).fetchone()
            return int(row[0]) if row else 0

        return self._transaction(f"remove duplicates {table}", body)

    # ---- maintenance ----------------------------------------------------------------------
    def _merge(self, table: str | None) -> tuple[int, int]:
        """DuckLake's own rewrites, for one table or all: files with many deleted rows are
        rewritten without them (`ducklake_rewrite_data_files`, the format's default threshold),
        then adjacent small files are merged (`ducklake_merge_adjacent_files`). One transaction;
        returns (files replaced, files written)."""
        target = "" if table is None else ", ?"
        params = None if table is None else [table]

        def body(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
            rows = []
            # Bounded memory (see MERGE_ROW_GROUP_ROWS): the option is the catalog's, kept with
            # this commit; the thread count is this connection's, restored after the merge.
            self._exec(
                con,
                f"CALL ducklake_set_option('{ALIAS}', 'parquet_row_group_size', ?)",
                [MERGE_ROW_GROUP_ROWS],
            )
            ((threads,),) = con.execute("SELECT current_setting('threads')").fetchall()
            con.execute("SET threads = 1")
            try:
                for fn in ("ducklake_rewrite_data_files", "ducklake_merge_adjacent_files"):
                    sql = f"SELECT * FROM {fn}('{ALIAS}'{target})"
                    rows += self._exec(con, sql, params).fetchall()
            finally:
                con.execute(f"SET threads = {int(threads)}")
            return sum(int(r[2]) for r in rows), sum(int(r[3]) for r in rows)

        return self._transaction(f"merge {table or 'all tables'}", body)

    def compact(self, table: str, min_files: int = 32, max_rows: int = 2_000_000) -> int:
        """Merge the table's small files (DuckLake's `ducklake_merge_adjacent_files`) once it has
        `min_files` of them; returns how many files were merged. Safe from any process at any
        time; a merge that keeps meeting other commits gives up for now (returns 0)."""
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}")
        if len(self.files(table)) < min_files:
            return 0
        try:
            return self._merge(table)[0]
        except duckdb.Error as exc:
            if not is_transient(exc):
                raise
            log.warning("merging %s's files deferred: %s", table, exc)
            return 0

    def compact_windows(self, table: str, min_files: int = 96) -> int:
        """The same merge for a windowed table (a replaced window's old rows are already gone)."""
        if table not in WINDOWED_TABLES:
            raise ValueError(f"{table!r} is not a windowed table")
        return self.compact(table, min_files=min_files)

    def maintain(
        self,
        retention: timedelta = timedelta(hours=24),
        orphan_grace: timedelta = timedelta(hours=1),
    ) -> dict[str, int]:
        """DuckLake's own maintenance, each step its own transaction (a crash anywhere leaves the
        tables as they were): rewrite files with many deleted rows and merge adjacent small
        files of every table; expire the snapshots that stopped being current more than
        `retention` ago (so `query(..., at=t)` answers for any t within the retention, and a
        reader that started within it never loses its files); delete the files only expired
        snapshots used; delete files no commit ever referenced (a writer killed mid-write)
        once they are `orphan_grace` old. Returns counts.

        The snapshots to expire are chosen here and passed by id: on DuckDB 1.5.5 with a SQLite
        catalog, `older_than` of `ducklake_expire_snapshots`/`ducklake_cleanup_old_files`
        selected snapshots and files of seconds ago too (see docs/warehouse.md)."""
        merged, written = self._merge(None)
        cutoff = datetime.now(UTC) - retention

        def expire(con: duckdb.DuckDBPyConnection) -> int:
            snaps = self._exec(
                con,
                f"SELECT snapshot_id, snapshot_time FROM ducklake_snapshots('{ALIAS}') "
                "ORDER BY snapshot_id",
            ).fetchall()
            # a snapshot is done with once its successor is older than the cutoff
            ids = [s[0] for s, nxt in itertools.pairwise(snaps) if nxt[1] < cutoff]
            if not ids:
                return 0
            sql = f"SELECT * FROM ducklake_expire_snapshots('{ALIAS}', versions => ?)"
            return len(self._exec(con, sql, [ids]).fetchall())

        expired = self._transaction("expire snapshots", expire)

        def cleanup(con: duckdb.DuckDBPyConnection) -> int:
            sql = f"SELECT * FROM ducklake_cleanup_old_files('{ALIAS}', cleanup_all => true)"
            return len(self._exec(con, sql).fetchall())

        deleted = self._transaction("clean up old files", cleanup)

        def orphans(con: duckdb.DuckDBPyConnection) -> int:
            sql = f"SELECT * FROM ducklake_delete_orphaned_files('{ALIAS}', older_than => ?)"
            return len(self._exec(con, sql, [datetime.now(UTC) - orphan_grace]).fetchall())

        orphaned = self._transaction("delete orphaned files", orphans)
        return {
            "files_merged": merged,
            "files_written": written,
            "snapshots_expired": expired,
            "files_deleted": deleted,
            "orphans_deleted": orphaned,
        }

    # ---- reads ---------------------------------------------------------------------------
    def files(self, table: str) -> list[Path]:
        """The table's live data files (those its current snapshot reads)."""
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        rows = self._read(
            "list files",
            lambda con: con.execute(
                f"SELECT data_file FROM ducklake_list_files('{ALIAS}', ?)", [table]
            ).fetchall(),
        )
        return [Path(r[0]) for r in rows]

    def table_stats(self) -> dict[str, dict[str, Any]]:
        """Per table: rows, data files and bytes, delete files, snapshots that changed it (among
        those kept) and when it last changed: for `status --json`."""

        def collect(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
            info = {
                r[0]: r
                for r in con.execute(
                    "SELECT table_name, table_id, file_count, file_size_bytes, delete_file_count "
                    f"FROM ducklake_table_info('{ALIAS}')"
                ).fetchall()
            }
            snaps = con.execute(
                f"SELECT snapshot_time, changes FROM ducklake_snapshots('{ALIAS}') "
                "ORDER BY snapshot_id"
            ).fetchall()
            out: dict[str, dict[str, Any]] = {}
            for table in TABLES:
                _, table_id, files, size, deletes = info.get(table, (table, None, 0, 0, 0))
                touched = [
                    when
                    for when, changes in snaps
                    if any(
                        str(table_id) in values or f"main.{table}" in values
                        for values in (changes or {}).values()
                    )
                ]
                rows = con.execute(f"SELECT count(*) FROM main.{_ident(table)}").fetchone()
                out[table] = {
                    "rows": int(rows[0]) if rows else 0,
                    "data_files": int(files or 0),
                    "data_bytes": int(size or 0),
                    "delete_files": int(deletes or 0),
                    "snapshots": len(touched),
                    "last_change": touched[-1].astimezone(UTC).isoformat() if touched else None,
                }
            return out

        return self._read("table stats", collect)

    def snapshots(self) -> list[dict[str, Any]]:
        """The catalog's kept snapshots, oldest first (id, time, what changed, commit message)."""
        return self._read(
            "snapshots",
            lambda con: (
                con.execute(
                    "SELECT snapshot_id, snapshot_time, changes, commit_message "
                    f"FROM ducklake_snapshots('{ALIAS}') ORDER BY snapshot_id"
                )
                .to_arrow_table()
                .to_pylist()
            ),
        )

    def query(
        self,
        sql: str,
        params: Sequence[Any] | dict[str, Any] | None = None,
        read_only: bool = True,
        at: datetime | None = None,
    ) -> pa.Table:
        """Run one SQL query over the tables (by their DESIGN.md names) → Arrow table.

        With `at`, the tables are read as they were at that time (the snapshot current then).
        `read_only=False` runs any statement in one write transaction (trusted callers only).
        """
        if read_only or at is not None:
            self._check_read_only(sql)
        if at is not None:
            return self._query_at(sql, params, at)
        if not read_only:
            return self._transaction(
                "sql", lambda con: self._exec(con, sql, params).to_arrow_table()
            )
        return self._read("query", lambda con: con.execute(sql, params).to_arrow_table())

    def _query_at(self, sql: str, params: Any, at: datetime) -> pa.Table:
        if at.tzinfo is None:
            raise ValueError("`at` must be timezone-aware (UTC)")

        def attempt() -> pa.Table:
            try:
                con = self._locked_down(snapshot_time=at.astimezone(UTC))
            except duckdb.Error as exc:
                if "snapshot" in str(exc).lower() and not is_transient(exc):
                    raise ValueError(
                        f"no snapshot of the warehouse at {at.isoformat()}: {exc}"
                    ) from None
                raise
            try:
                return con.execute(sql, params).to_arrow_table()
            finally:
                con.close()

        return self.retry.run("query at", attempt)

    def _check_read_only(self, sql: str) -> None:
        # DuckDB's parse tree first (no EXPLAIN ANALYZE COPY, no maintenance functions inside a
        # SELECT), then the statement type on this connection; the attachment is read-only too.
        check_read_only(sql)
        with self._lock:
            statements = self._reader().extract_statements(sql)
        allowed = (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN)
        if len(statements) != 1 or statements[0].type not in allowed:
            raise ReadOnlyQueryError("only a single SELECT query is allowed here")

    # Lookups per consumer batch (repaired ids, tombstones) cost a local query here: cheap.
    per_batch_lookups = True

    def cached_read(self, key: str, tables: Iterable[str], read: Callable[[], T]) -> T:
        """`read()`'s answer, kept until a snapshot changes one of `tables`
        (musicnft.adapters.ducklake_changes): the consumer's per-batch lookups of small tables."""
        return self._snapshot_cache.get(key, tables, read)

    def repaired_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of `ids` reconciliation already filled into posts_hot (the consumer skips them).
        BigQuery has no such method: a query per Lambda batch would bill 10 MB each and add
        seconds; there a later reconciliation removes what a lagging consumer doubled."""
        if not ids:
            return set()
        repaired = self.cached_read("repaired_ids", ("posts_hot_repairs",), self._all_repaired)
        if repaired is not None:
            return {i for i in ids if i in repaired}
        result = self.query(
            "SELECT DISTINCT post_id FROM posts_hot_repairs "
            f"WHERE {self.dialect.in_list_param('post_id')}",
            [list(ids)],
        )
        return {str(v) for v in result.column(0).to_pylist()}

    def _all_repaired(self) -> frozenset[str] | None:
        """Every repaired post id, or None when there are too many to keep in memory."""
        ids = self.query(
            f"SELECT DISTINCT post_id FROM posts_hot_repairs LIMIT {CACHED_IDS_MAX + 1}"
        ).column(0)
        return None if len(ids) > CACHED_IDS_MAX else frozenset(map(str, ids.to_pylist()))

    def count(self, table: str, distinct: str | None = None) -> int:
        expr = f"count(DISTINCT {_ident(distinct)})" if distinct else "count(*)"
        return int(self.query(f"SELECT {expr} AS n FROM {_ident(table)}").column(0)[0].as_py())
