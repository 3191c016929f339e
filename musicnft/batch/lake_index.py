"""Which lake files touch which windows, learned from Parquet footers (never the whole file).

A file's folder hour is when its records *arrived*, not when the posts were created, and a
replay of old captures can put 2021 posts in a 2026 folder. So each file's min/max `created_at`
(the column statistics in its footer) is recorded in the warehouse table `lake_files`, and a window
reads exactly the files whose range overlaps it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from musicnft.contract.lake_layout import RAW_PREFIX, time_column
from musicnft.contract.schema import POST_FIELDS, POST_SCHEMA
from musicnft.contract.tables import LAKE_FILES_SCHEMA, LAKE_QUARANTINE_SCHEMA
from musicnft.contract.windows import WINDOW
from musicnft.ports import Lake, LakeObject

log = logging.getLogger("musicnft.lake_index")


class UnreadableLakeFile(ValueError):
    """A lake file no retry will make readable (not Parquet, corrupt pages, a required column
    missing). `reason` says which; the file is quarantined, never read again by a window."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


# Errors that say nothing about the file itself (network, credentials, throttling, a full disk):
# the read is retried later and the file stays in play.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, MemoryError)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    module = type(exc).__module__
    # botocore/urllib3 raise their own types for the network and the service's 5xx/throttling
    return module.startswith(("botocore", "urllib3", "requests"))


def unreadable_reason(exc: BaseException) -> str | None:
    """Why a read failed if the file itself is at fault; None when the error is transient."""
    if isinstance(exc, UnreadableLakeFile):
        return exc.reason
    if isinstance(exc, FileNotFoundError) or _is_transient(exc):
        return None
    if isinstance(exc, pa.ArrowException | OSError | ValueError | KeyError | TypeError):
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    return None


REQUIRED_COLUMNS = frozenset(f.name for f in POST_FIELDS if f.required)


@dataclass(frozen=True)
class FileStats:
    key: str
    min_created_at: datetime | None
    max_created_at: datetime | None
    row_count: int
    size_bytes: int
    last_modified: datetime


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def parquet_metadata(lake: Lake, key: str) -> pq.FileMetaData:
    path = lake.local_path(key)
    if path is not None:
        return pq.read_metadata(path)
    return pq.read_metadata(BytesIO(lake.get(key)))


def read_file_stats(lake: Lake, obj: LakeObject) -> FileStats:
    """min/max created_at from the footer's row-group statistics (the column if they are absent).

    For a sales file (`sales/`) the range is its sales' `event_timestamp` (`time_column`); it is
    recorded in the same `lake_files` columns."""
    meta = parquet_metadata(lake, obj.key)
    schema = meta.schema.to_arrow_schema()
    column_name = time_column(obj.key)
    index = schema.get_field_index(column_name)
    lo: datetime | None = None
    hi: datetime | None = None
    have_stats = index >= 0 and meta.num_row_groups > 0
    for rg in range(meta.num_row_groups if index >= 0 else 0):
        stats = meta.row_group(rg).column(index).statistics
        if stats is None or not stats.has_min_max:
            have_stats = False
            break
        rmin, rmax = _as_utc(stats.min), _as_utc(stats.max)
        if rmin is None or rmax is None:
            have_stats = False
            break
        lo = rmin if lo is None else min(lo, rmin)
        hi = rmax if hi is None else max(hi, rmax)
    if index >= 0 and not have_stats and meta.num_rows:
        column = read_table(lake, obj.key, columns=[column_name]).column(0)
        lo, hi = _as_utc(pc.min(column).as_py()), _as_utc(pc.max(column).as_py())
    return FileStats(obj.key, lo, hi, meta.num_rows, obj.size, obj.last_modified)


def read_table(
    lake: Lake, key: str, columns: list[str] | None = None, filters: Any = None
) -> pa.Table:
    """A lake file as Arrow, its timestamps UTC whichever writer made it.

    Our delivery writes timestamps as UTC microseconds; real Firehose (Hive's Parquet writer, from
    the Glue table) writes INT96, which carries no time zone and reads back naive. Naive timestamps
    are UTC by the lake's contract, so they are made aware here, before any filter compares them
    with an aware window bound (which would otherwise raise and fail the window on every run).
    """
    path = lake.local_path(key)
    source: Any = path if path is not None else BytesIO(lake.get(key))
    parquet = pq.ParquetFile(source, coerce_int96_timestamp_unit="us")
    schema = parquet.schema_arrow
    present = None if columns is None else [c for c in columns if schema.get_field_index(c) >= 0]
    missing = [] if columns is None else [c for c in columns if c not in (present or [])]
    required_missing = [c for c in missing if c in REQUIRED_COLUMNS]
    if required_missing:
        raise UnreadableLakeFile(key, f"required column(s) missing: {', '.join(required_missing)}")
    wanted = schema if present is None else _select(schema, present)
    if not missing and not any(_naive_timestamp(f.type) for f in wanted):
        if isinstance(source, BytesIO):
            source.seek(0)
        return pq.read_table(source, columns=columns, filters=filters)
    table = _utc_timestamps(parquet.read(columns=present))
    for name in missing:  # optional columns an older or foreign writer left out: nulls
        table = table.append_column(name, pa.nulls(table.num_rows, _post_type(name)))
    if columns is not None:
        table = table.select(columns)
    if filters is not None:
        table = table.filter(pq.filters_to_expression(filters))
    return table


def _post_type(name: str) -> pa.DataType:
    return POST_SCHEMA.field(name).type if POST_SCHEMA.get_field_index(name) >= 0 else pa.null()


def _select(schema: pa.Schema, columns: list[str]) -> list[pa.Field]:
    return [schema.field(c) for c in columns if schema.get_field_index(c) >= 0]


def _naive_timestamp(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) and kind.tz is None


def _utc_timestamps(table: pa.Table) -> pa.Table:
    """Naive timestamp columns (INT96 from Hive's writer) → microsecond UTC, as the contract has."""
    for i, f in enumerate(table.schema):
        if _naive_timestamp(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp("us", tz="UTC")))
    return table


def stats_table(stats: Iterable[FileStats], indexed_at: datetime) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "key": s.key,
                "min_created_at": s.min_created_at,
                "max_created_at": s.max_created_at,
                "row_count": s.row_count,
                "size_bytes": s.size_bytes,
                "last_modified": s.last_modified,
                "indexed_at": indexed_at,
            }
            for s in stats
        ],
        schema=LAKE_FILES_SCHEMA,
    )


class LakeIndex:
    """The `lake_files` table: recorded by the drop sensor and backfills, read by window assets."""

    def __init__(self, warehouse: Any) -> None:
        self.warehouse = warehouse

    def record(self, stats: list[FileStats]) -> None:
        if stats:
            self.warehouse.append("lake_files", stats_table(stats, datetime.now(UTC)))
            self.warehouse.compact("lake_files", min_files=32)

    def quarantine(self, key: str, reason: str) -> None:
        """Set a file aside for good (logged with its reason); windows stop reading it."""
        log.error("lake file %s quarantined: %s", key, reason)
        self.warehouse.append(
            "lake_quarantine",
            pa.Table.from_pylist(
                [{"key": key, "reason": reason[:1000], "quarantined_at": datetime.now(UTC)}],
                schema=LAKE_QUARANTINE_SCHEMA,
            ),
        )

    def quarantined(self) -> dict[str, str]:
        """key -> reason of every quarantined file."""
        rows = self.warehouse.query(
            "SELECT key, min(reason) AS reason FROM lake_quarantine GROUP BY key"
        ).to_pylist()
        return {r["key"]: r["reason"] for r in rows}

    def known_keys(self) -> set[str]:
        return set(
            self.warehouse.query("SELECT DISTINCT key FROM lake_files").column(0).to_pylist()
        )

    def files_for_window(self, start: datetime, prefix: str = RAW_PREFIX) -> list[str]:
        """The indexed, unquarantined files under `prefix` (posts' `raw/` unless asked for
        `sales/`) whose time range overlaps the window."""
        return self.files_for_windows([start], prefix)[start]

    def files_for_windows(
        self, windows: Iterable[datetime], prefix: str = RAW_PREFIX
    ) -> dict[datetime, list[str]]:
        """`files_for_window` for several windows, in one query: window -> its files."""
        chosen = sorted(set(windows))
        if not chosen:
            return {}
        result = self.warehouse.query(
            "SELECT key, min_created_at, max_created_at FROM lake_files "
            "WHERE min_created_at < ? AND max_created_at >= ? "
            "AND key LIKE ? AND key NOT IN (SELECT key FROM lake_quarantine)",
            [chosen[-1] + WINDOW, chosen[0], prefix + "%"],
        ).to_pylist()
        found: dict[datetime, set[str]] = {w: set() for w in chosen}
        for row in result:
            for window in chosen:
                if row["min_created_at"] < window + WINDOW and row["max_created_at"] >= window:
                    found[window].add(row["key"])
        return {w: sorted(keys) for w, keys in found.items()}

    def windows_with_posts(
        self, modified_since: datetime | None = None
    ) -> list[tuple[datetime, datetime]]:
        """(min, max) created_at of every indexed file that holds rows (optionally only files
        that landed since a time)."""
        since = modified_since or datetime(1970, 1, 1, tzinfo=UTC)
        result = self.warehouse.query(
            "SELECT min_created_at, max_created_at FROM lake_files WHERE row_count > 0 "
            "AND min_created_at IS NOT NULL AND last_modified >= ?",
            [since],
        )
        return (
            list(zip(*(c.to_pylist() for c in result.columns), strict=True))
            if result.num_rows
            else []
        )

    def files_with_posts(
        self, modified_since: datetime | None = None
    ) -> list[tuple[str, datetime, datetime]]:
        """(key, min, max) created_at of every indexed file that holds rows (optionally only
        files that landed since a time)."""
        since = modified_since or datetime(1970, 1, 1, tzinfo=UTC)
        rows = self.warehouse.query(
            "SELECT DISTINCT key, min_created_at, max_created_at FROM lake_files "
            "WHERE row_count > 0 AND min_created_at IS NOT NULL AND last_modified >= ? "
            "ORDER BY key",
            [since],
        ).to_pylist()
        return [
            (r["key"], _as_utc(r["min_created_at"]), _as_utc(r["max_created_at"]))  # type: ignore[misc]
            for r in rows
        ]
