"""The warehouse port: what the hot path, the window pipeline and the dashboard ask of a warehouse.

Two adapters implement it, chosen by `wiring.open_warehouse`: the embedded one (Parquet + DuckDB)
and BigQuery. Business code is written against this Protocol and never learns which it has; the
few SQL spellings that differ come from the adapter's `dialect`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa


# The tables' names (their schemas, which need pyarrow, are in musicnft.tables; a test keeps the
# two in step). Here so code that only writes rows can name tables without importing pyarrow.
TABLE_NAMES = (
    "posts_hot",
    "posts",
    "window_metrics_15m",
    "hashtag_counts_15m",
    "location_counts_15m",
    "reconciliation_15m",
    "lake_files",
)
WINDOWED_TABLE_NAMES = (
    "posts",
    "window_metrics_15m",
    "hashtag_counts_15m",
    "location_counts_15m",
    "reconciliation_15m",
)


class ReadOnlyQueryError(ValueError):
    """`query(..., read_only=True)` was given a statement that is not a query."""


class StreamingBufferError(RuntimeError):
    """BigQuery refused to change rows still in its streaming buffer (about 30 minutes after a
    streaming insert); the change can be made by a later run."""


@dataclass(frozen=True)
class InsertResult:
    """What a streaming insert did. `failed` names the row ids the warehouse would not take after
    its retries: the caller must report them as failed records (never drop them)."""

    inserted: int
    skipped_duplicates: int
    failed: tuple[str, ...] = ()


class Dialect(Protocol):
    def hour(self, column: str) -> str: ...

    def list_contains_param(self, column: str) -> str: ...

    def in_list_param(self, column: str) -> str: ...


class Warehouse(Protocol):
    dialect: Dialect

    def insert_rows(
        self, table: str, rows: Sequence[dict[str, Any]], row_ids: Sequence[str]
    ) -> InsertResult: ...

    def append(self, table: str, data: pa.Table) -> Any: ...

    def replace_partition(self, table: str, partition: str, data: pa.Table) -> Any: ...

    def remove_duplicates(self, table: str, key: str, ids: Iterable[str]) -> int: ...

    def partition_schema(self, table: str, partition: str) -> pa.Schema | None: ...

    def compact(self, table: str, min_files: int = 32, max_rows: int = 2_000_000) -> int: ...

    def compact_windows(self, table: str, min_files: int = 96) -> int: ...

    def query(
        self, sql: str, params: Sequence[Any] | None = None, read_only: bool = True
    ) -> pa.Table: ...

    def count(self, table: str, distinct: str | None = None) -> int: ...
