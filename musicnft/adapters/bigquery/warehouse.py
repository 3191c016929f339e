"""The warehouse port on Google BigQuery (cloud profile).

What BigQuery changes, and how this adapter answers it:
- Streaming inserts (`insertAll`) deduplicate by insertId only for about a minute, and the client
  invents a random insertId unless given one: rows go in with `row_ids` = post id, and whatever
  slips through is removed by reconciliation (which also finds the rows the hot path missed).
- Insert errors come back per row in a 200 response. Rows that fail are retried with backoff;
  rows that still fail are returned in `InsertResult.failed`, so the consumer reports exactly
  those records to Lambda (retry, then the failure destination): never only logged.
- A 15-minute window is not a partition (BigQuery partitions by day at the finest): replacing a
  window is one MERGE from a staging table (`ON FALSE`: delete the window's rows, insert the new
  ones), which BigQuery applies atomically; readers see the old rows or the new, never both.
- Rows still in the streaming buffer (about 30 minutes) cannot be deleted: removing duplicates
  from `posts_hot` then raises `StreamingBufferError`, and reconciliation records them as
  deferred (`posts` is unique regardless); a later run of the window removes them.
- Every query is parameterized (`?` positional parameters, typed from the Python values).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from musicnft.contract.table_names import (
    STAMPED_TABLE_NAMES,
    TABLE_NAMES,
    WINDOWED_TABLE_NAMES,
)
from musicnft.contract.windows import parse_window_key
from musicnft.ports import InsertResult, ReadOnlyQueryError, StreamingBufferError

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported where tables are read or loaded, never on the streaming-insert path: the
# deployed consumer (Lambda) inserts rows and its bundle carries no pyarrow.

log = logging.getLogger("musicnft.bigquery")

MAX_INSERT_ROWS = 500  # Google's recommended insertAll batch
MAX_INSERT_BYTES = 5 * 1024 * 1024  # half of the 10 MB request limit, for JSON overhead
STAGING_TTL = timedelta(hours=1)  # a crashed writer's staging table expires by itself


class BigQueryDialect:
    """BigQuery's spellings of the few expressions the shared queries need."""

    @staticmethod
    def hour(column: str) -> str:
        return f"TIMESTAMP_TRUNC({column}, HOUR)"

    @staticmethod
    def list_contains_param(column: str) -> str:
        return f"? IN UNNEST({column})"

    @staticmethod
    def in_list_param(column: str) -> str:
        return f"{column} IN UNNEST(?)"

    @staticmethod
    def as_float(expression: str) -> str:
        return f"CAST({expression} AS FLOAT64)"


def _credentials_info(raw: str) -> dict[str, Any]:
    """A service-account key given as base64 (dagster-gcp's convention) or as JSON."""
    text = raw.strip()
    if not text.startswith("{"):
        try:
            text = base64.b64decode(text, validate=True).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise ValueError(
                "BigQuery credentials must be a service-account key as JSON or base64 JSON"
            ) from None
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("BigQuery credentials are not valid JSON") from None
    if not isinstance(info, dict) or "client_email" not in info:
        raise ValueError("BigQuery credentials are not a service-account key")
    return info


def bigquery_client(
    project: str,
    location: str | None = None,
    endpoint: str | None = None,
    credentials: str = "",
) -> Any:
    """A `google.cloud.bigquery.Client`: an emulator endpoint gets anonymous credentials; Google
    gets the given service-account key, else Application Default Credentials."""
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery

    creds: Any = None
    if credentials:
        from google.oauth2 import service_account

        creds = service_account.Credentials.from_service_account_info(
            _credentials_info(credentials)
        )
    elif endpoint:
        from google.auth.credentials import AnonymousCredentials

        creds = AnonymousCredentials()
    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    return bigquery.Client(
        project=project, location=location, credentials=creds, client_options=options
    )


def _param_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, datetime):
        return "TIMESTAMP"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, bytes):
        return "BYTES"
    return "STRING"


def query_parameter(name: str | None, value: Any) -> Any:
    """A typed BigQuery query parameter from a Python value (lists become ARRAY parameters)."""
    from google.cloud import bigquery

    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        sample = next((v for v in items if v is not None), "")
        return bigquery.ArrayQueryParameter(name, _param_type(sample), items)
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"naive datetime parameter {value!r}: pass a UTC-aware datetime")
    return bigquery.ScalarQueryParameter(name, _param_type(value), value)


def query_parameters(params: Sequence[Any] | Mapping[str, Any] | None) -> list[Any]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        return [query_parameter(k, v) for k, v in params.items()]
    return [query_parameter(None, v) for v in params]


def _strip_literals(sql: str) -> str:
    """SQL with comments and quoted text blanked, so its structure can be inspected."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i) or c == "#":
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c in "'\"`":
            quote = sql[i : i + 3] if sql[i : i + 3] in ("'''", '"""') else c
            j = i + len(quote)
            while j < n and not sql.startswith(quote, j):
                j += 2 if sql[j] == "\\" else 1
            out.append(" ")
            i = j + len(quote)
        else:
            out.append(c)
            i += 1
    return "".join(out)


def check_read_only(sql: str) -> None:
    """One SELECT (or WITH … SELECT) statement; BigQuery has no DML inside a query, so a
    statement that starts as a query is one, and a second statement needs a `;`."""
    body = _strip_literals(sql).strip().rstrip(";").strip()
    first = body.lstrip("( \n\t").split(None, 1)[0].upper() if body else ""
    if ";" in body or first not in ("SELECT", "WITH"):
        raise ReadOnlyQueryError("only a single SELECT query is allowed here")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf; BigQuery would reject the whole row
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value if v is not None]
    return value


def _arrow_type(field_type: str, mode: str) -> pa.DataType:
    import pyarrow as pa

    base = {
        "STRING": pa.string(),
        "INTEGER": pa.int64(),
        "INT64": pa.int64(),
        "FLOAT": pa.float64(),
        "FLOAT64": pa.float64(),
        "BOOLEAN": pa.bool_(),
        "BOOL": pa.bool_(),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        "DATE": pa.date32(),
        "BYTES": pa.binary(),
    }.get(field_type.upper(), pa.string())
    return pa.list_(base) if mode == "REPEATED" else base


class BigQueryWarehouse:
    """The warehouse port over one BigQuery dataset (tables created by `musicnft bigquery
    migrate`)."""

    dialect = BigQueryDialect()

    def __init__(
        self,
        client: Any,
        dataset: str,
        insert_retries: int = 3,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        request_deadline_seconds: float = 30.0,
    ) -> None:
        self.client = client
        self.dataset = dataset
        self.insert_retries = insert_retries
        self.backoff_seconds = backoff_seconds
        # The client retries a failing request for up to 10 minutes by default; the consumer
        # runs under Lambda's 60 s timeout, so it gives up sooner and lets Lambda retry the batch.
        self.request_deadline_seconds = request_deadline_seconds
        self._sleep = sleep
        self._schemas: dict[str, list[Any]] = {}

    @property
    def dataset_id(self) -> str:
        return f"{self.client.project}.{self.dataset}"

    def table_id(self, table: str) -> str:
        if table not in TABLE_NAMES:
            raise KeyError(f"unknown table {table!r}; tables: {', '.join(TABLE_NAMES)}")
        return f"{self.dataset_id}.{table}"

    # ---- reads ---------------------------------------------------------------------------
    def _run(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            query_parameters=query_parameters(params), default_dataset=self.dataset_id
        )
        return self.client.query(sql, job_config=config).result()

    def query(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        read_only: bool = True,
        at: datetime | None = None,
    ) -> pa.Table:
        """Run one query (tables by their DESIGN.md names, in this dataset) → Arrow table."""
        if at is not None:
            raise ValueError(
                "time travel on BigQuery is per table: write FOR SYSTEM_TIME AS OF in the query"
            )
        if read_only:
            check_read_only(sql)
        return self._run(sql, params).to_arrow(create_bqstorage_client=False)

    def count(self, table: str, distinct: str | None = None) -> int:
        expr = f"count(DISTINCT `{distinct}`)" if distinct else "count(*)"
        return int(self.query(f"SELECT {expr} AS n FROM `{table}`").column(0)[0].as_py())

    def _schema(self, table: str) -> list[Any]:
        if table not in self._schemas:
            self._schemas[table] = list(self.client.get_table(self.table_id(table)).schema)
        return self._schemas[table]

    def partition_schema(self, table: str, partition: str) -> pa.Schema | None:
        """The stored schema of one window as Arrow (None when the window has no rows)."""
        return self.partition_schemas(table, [partition])[partition]

    def partition_schemas(
        self, table: str, partitions: Sequence[str]
    ) -> dict[str, pa.Schema | None]:
        """`partition_schema` for several windows of one table, in one query."""
        windows = {key: parse_window_key(key) for key in partitions}
        rows = self.query(
            f"SELECT DISTINCT window_start FROM `{table}` WHERE window_start IN UNNEST(?)",
            [sorted(set(windows.values()))],
        )
        present = set(rows.column(0).to_pylist())
        if not present:
            return dict.fromkeys(partitions)
        import pyarrow as pa

        fields = self.client.get_table(self.table_id(table)).schema
        schema = pa.schema(
            [
                pa.field(f.name, _arrow_type(f.field_type, f.mode), nullable=f.mode != "REQUIRED")
                for f in fields
            ]
        )
        return {k: schema if w in present else None for k, w in windows.items()}

    # ---- hot path ------------------------------------------------------------------------
    def insert_rows(
        self, table: str, rows: Sequence[dict[str, Any]], row_ids: Sequence[str]
    ) -> InsertResult:
        """Streaming insert with insertId = row id. Rows BigQuery rejects are retried with
        backoff; those still rejected come back in `failed` (by row id), with their reasons
        logged. A request that fails as a whole (outage) raises: the caller retries the batch."""
        if len(rows) != len(row_ids):
            raise ValueError("rows and row_ids must have the same length")
        table_id = self.table_id(table)
        pending: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        # When the request is made: the closest a client gets to BigQuery's acceptance time.
        stamp = datetime.now(UTC) if table in STAMPED_TABLE_NAMES else None
        for row, rid in zip(rows, row_ids, strict=True):
            if rid in seen:
                continue
            seen.add(rid)
            if stamp is not None and row.get("inserted_at") is None:
                row = {**row, "inserted_at": stamp}
            pending.append((rid, {k: _json_value(v) for k, v in row.items()}))
        skipped = len(rows) - len(pending)
        inserted = 0
        reasons: dict[str, str] = {}
        for attempt in range(self.insert_retries + 1):
            rejected: list[tuple[str, dict[str, Any]]] = []
            for chunk in self._chunks(pending):
                errors = self.client.insert_rows_json(
                    table_id,
                    [r for _, r in chunk],
                    row_ids=[i for i, _ in chunk],
                    skip_invalid_rows=True,
                    retry=self._retry(),
                    timeout=self.request_deadline_seconds,
                )
                bad = {int(e["index"]): e for e in errors}
                for index, entry in bad.items():
                    rid = chunk[index][0]
                    reasons[rid] = "; ".join(
                        f"{x.get('reason')}: {x.get('message')}" for x in entry.get("errors", [])
                    )
                    rejected.append(chunk[index])
                inserted += len(chunk) - len(bad)
            pending = rejected
            if not pending:
                break
            if attempt < self.insert_retries:
                delay = self.backoff_seconds * 2**attempt
                log.warning(
                    "%s: BigQuery rejected %d rows (%s); retry %d/%d in %.1f s",
                    table,
                    len(pending),
                    ", ".join(i for i, _ in pending[:5]),
                    attempt + 1,
                    self.insert_retries,
                    delay,
                )
                self._sleep(delay)
        failed = tuple(rid for rid, _ in pending)
        for rid in failed:
            log.error("%s: row %s failed after retries: %s", table, rid, reasons.get(rid, "?"))
        return InsertResult(inserted=inserted, skipped_duplicates=skipped, failed=failed)

    def _retry(self) -> Any:
        from google.cloud.bigquery.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_deadline(self.request_deadline_seconds)

    @staticmethod
    def _chunks(
        rows: list[tuple[str, dict[str, Any]]],
    ) -> Iterable[list[tuple[str, dict[str, Any]]]]:
        chunk: list[tuple[str, dict[str, Any]]] = []
        size = 0
        for item in rows:
            item_size = len(json.dumps(item[1], ensure_ascii=False, default=str))
            if chunk and (len(chunk) >= MAX_INSERT_ROWS or size + item_size > MAX_INSERT_BYTES):
                yield chunk
                chunk, size = [], 0
            chunk.append(item)
            size += item_size
        if chunk:
            yield chunk

    # ---- batch writes --------------------------------------------------------------------
    def _load(self, table_id: str, data: pa.Table, disposition: str) -> None:
        import pyarrow.parquet as pq
        from google.cloud import bigquery

        buf = io.BytesIO()
        pq.write_table(data, buf)
        buf.seek(0)
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET, write_disposition=disposition
        )
        options = bigquery.ParquetOptions()
        options.enable_list_inference = True  # Parquet LIST → REPEATED, not a nested record
        config.parquet_options = options
        self.client.load_table_from_file(buf, table_id, job_config=config).result()

    @staticmethod
    def _conformed(table: str, data: pa.Table) -> pa.Table:
        from musicnft.contract.tables import TABLES

        schema = TABLES[table]
        return data.select(schema.names).cast(schema)

    def append(self, table: str, data: pa.Table) -> None:
        """Add rows with a load job (no streaming buffer, so they can be changed later)."""
        if data.num_rows:
            self._load(self.table_id(table), self._conformed(table, data), "WRITE_APPEND")

    def replace_partition(self, table: str, partition: str, data: pa.Table) -> None:
        """Make `data` the whole of one window of a windowed table, in one atomic MERGE."""
        self.replace_partitions(table, [partition], data)

    def replace_partitions(self, table: str, partitions: Sequence[str], data: pa.Table) -> None:
        """`replace_partition` for several windows in one atomic MERGE: a run recomputing a
        day's windows runs one DML job per step instead of one per window (DML jobs are slow
        to start and count against the table's quota)."""
        if table not in WINDOWED_TABLE_NAMES:
            raise ValueError(f"{table!r} is not replaced by window")
        windows = sorted({parse_window_key(p) for p in partitions})
        if not windows:
            return
        data = self._conformed(table, data)
        allowed = set(windows)
        strays = {w for w in data.column("window_start").to_pylist() if w not in allowed}
        if strays:
            raise ValueError(
                f"rows outside windows {', '.join(partitions[:3])} given to replace them: "
                f"{sorted(strays)[:3]}"
            )
        if data.num_rows == 0:
            self._run(f"DELETE FROM `{table}` WHERE window_start IN UNNEST(?)", [windows])
            return
        stage = self._staging_table(table)
        try:
            self._load(stage, data, "WRITE_TRUNCATE")
            columns = ", ".join(f"`{c}`" for c in data.schema.names)
            values = ", ".join(f"s.`{c}`" for c in data.schema.names)
            self._run(
                f"MERGE `{table}` t USING `{stage}` s ON FALSE "
                "WHEN NOT MATCHED BY SOURCE AND t.window_start IN UNNEST(?) THEN DELETE "
                f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({values})",
                [windows],
            )
        finally:
            self.client.delete_table(stage, not_found_ok=True)

    def _staging_table(self, table: str) -> str:
        from google.cloud import bigquery

        stage_id = f"{self.dataset_id}._stage_{table}_{uuid.uuid4().hex[:12]}"
        staging = bigquery.Table(stage_id, schema=self._schema(table))
        staging.expires = datetime.now(UTC) + STAGING_TTL
        self.client.create_table(staging)
        return stage_id

    def remove_duplicates(self, table: str, key: str, ids: Iterable[str]) -> int:
        """Keep one row per `key` among `ids`, in one MERGE; returns how many rows went.

        Raises StreamingBufferError when BigQuery refuses because rows are still streaming.
        """
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        before = self._rows_for(table, key, wanted)
        if before <= len(wanted):
            return 0
        from musicnft.contract.tables import TABLES

        names = [f.name for f in TABLES[table]]
        columns = ", ".join(f"`{c}`" for c in names)
        values = ", ".join(f"s.`{c}`" for c in names)
        sql = (
            f"MERGE `{table}` t USING ("
            f"SELECT {columns} FROM (SELECT *, ROW_NUMBER() OVER "
            f"(PARTITION BY `{key}` ORDER BY `{key}`) AS _musicnft_rn "
            f"FROM `{table}` WHERE `{key}` IN UNNEST(?)) WHERE _musicnft_rn = 1) s ON FALSE "
            f"WHEN NOT MATCHED BY SOURCE AND t.`{key}` IN UNNEST(?) THEN DELETE "
            f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({values})"
        )
        try:
            self._run(sql, [wanted, wanted])
        except Exception as exc:
            if "streaming buffer" in str(exc).lower():
                raise StreamingBufferError(
                    f"{table}: {before - len(wanted)} duplicate rows are still in BigQuery's "
                    "streaming buffer and cannot be removed yet"
                ) from exc
            raise
        return before - self._rows_for(table, key, wanted)

    def _rows_for(self, table: str, key: str, ids: list[str]) -> int:
        result = self.query(f"SELECT count(*) FROM `{table}` WHERE `{key}` IN UNNEST(?)", [ids])
        return int(result.column(0)[0].as_py())

    def compact(self, table: str, min_files: int = 32, max_rows: int = 2_000_000) -> int:
        """Nothing to do: BigQuery manages its own storage."""
        return 0

    def compact_windows(self, table: str, min_files: int = 96) -> int:
        return 0
