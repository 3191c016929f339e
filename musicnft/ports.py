"""The ports: what business code asks of a lake, a stream and a warehouse.

Adapters implement them (`musicnft.adapters`); the composition root (`musicnft.wiring`) picks one
of each from the settings. Core code is annotated with these Protocols and never learns which
adapter it has; the few SQL spellings that differ come from the warehouse's `dialect`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa


# ---- lake


@dataclass(frozen=True)
class LakeObject:
    key: str
    size: int
    last_modified: datetime


class Lake(Protocol):
    """Object storage with keys, as both a directory and an S3 bucket can provide."""

    def put(self, key: str, data: bytes) -> None: ...

    def list_objects(self, prefix: str, from_hour: datetime | None = None) -> list[LakeObject]:
        """Objects under `prefix` (`raw/` or `errors/...`) with size and last-modified time;
        with `from_hour`, only hour folders at or after it are listed."""
        ...

    def get(self, key: str) -> bytes: ...

    def list(self, prefix: str = "") -> Iterator[str]: ...

    def local_path(self, key: str) -> Path | None: ...


# ---- stream


@dataclass(frozen=True)
class StreamRecord:
    """One record as a reader sees it (Kinesis' fields, with our sequence as an integer)."""

    seq: int
    shard: int
    partition_key: str
    data: bytes
    arrival: float  # epoch seconds, the moment the stream accepted it

    @property
    def sequence_number(self) -> str:
        return f"{self.seq:021d}"

    @property
    def shard_id(self) -> str:
        return f"shardId-{self.shard:012d}"


class StreamReader(Protocol):
    """A stream as a reader sees it: the local log, or one Kinesis shard."""

    def read(self, after: int, limit: int) -> list[StreamRecord]:
        """Records with a sequence after `after`, oldest first, at most `limit`."""
        ...

    def checkpoint(self, reader: str) -> int:
        """The last sequence `reader` committed (0 before the first commit)."""
        ...

    def commit(self, reader: str, seq: int) -> None: ...

    def trim(self, retention_seconds: float, now: float | None = None) -> int: ...


class StreamSink(Protocol):
    """Where the producer puts posts: the local stream, or Kinesis with its spool."""

    def put_records(self, entries: Sequence[tuple[str, bytes]]) -> None:
        """Put (partition_key, data) pairs; raises if they could not all be stored."""
        ...

    def close(self) -> None: ...


# ---- warehouse


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

    def as_float(self, expression: str) -> str: ...


class Warehouse(Protocol):
    @property
    def dialect(self) -> Dialect:
        """The few SQL spellings that differ between warehouses."""
        ...

    def insert_rows(
        self, table: str, rows: Sequence[dict[str, Any]], row_ids: Sequence[str]
    ) -> InsertResult: ...

    def append(self, table: str, data: pa.Table) -> Any: ...

    def replace_partition(self, table: str, partition: str, data: pa.Table) -> Any: ...

    def replace_partitions(self, table: str, partitions: Sequence[str], data: pa.Table) -> Any:
        """Several windows replaced at once, atomically: a run's step writes once."""
        ...

    def remove_duplicates(self, table: str, key: str, ids: Iterable[str]) -> int: ...

    def partition_schema(self, table: str, partition: str) -> pa.Schema | None: ...

    def partition_schemas(
        self, table: str, partitions: Sequence[str]
    ) -> dict[str, pa.Schema | None]: ...

    def compact(self, table: str, min_files: int = 32, max_rows: int = 2_000_000) -> int: ...

    def compact_windows(self, table: str, min_files: int = 96) -> int: ...

    def query(
        self,
        sql: str,
        params: Sequence[Any] | None = None,
        read_only: bool = True,
        at: datetime | None = None,
    ) -> pa.Table:
        """One read; `at` answers as the tables were then (where the warehouse keeps history)."""
        ...

    def count(self, table: str, distinct: str | None = None) -> int: ...
