"""Reading a Kinesis stream shard by shard, with the same reader interface as the local stream.

The delivery and consumer loops (standing in for Firehose and for Lambda's event source mapping
in the cloud rehearsal) read through this: `read(after, limit)`, `checkpoint(reader)`,
`commit(reader, seq)`. Kinesis keeps no consumer positions for GetRecords readers, so checkpoints
live in a small SQLite file, one row per (reader, shard), as the KCL keeps them in DynamoDB.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from musicnft.ports import StreamRecord

log = logging.getLogger("musicnft.kinesis")
T = TypeVar("T")

# Errors that say Kinesis is unreachable or busy for now, not that the request is wrong: a reader
# waits them out (with backoff) instead of crashing its stage and using up its restarts.
_TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "InternalFailure",
        "InternalFailureException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSThrottlingException",
        "ThrottlingException",
        "RequestTimeout",
    }
)


def is_transient(exc: BaseException) -> bool:
    """Whether a boto3 error is an outage or throttling (retry later) rather than a fault."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(
        exc,
        EndpointConnectionError | ConnectionClosedError | ReadTimeoutError | ConnectTimeoutError,
    ):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return error.get("Code") in _TRANSIENT_CODES or status >= 500
    return False


def with_outage_retries(
    what: str,
    call: Callable[[], T],
    give_up_after: float = 600.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()` retried through an outage with backoff (1, 2, 4 … 30 s), logged once per wait;
    raises the last error after `give_up_after` seconds, or at once for a non-transient one."""
    start = time.monotonic()
    delay = 1.0
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() - start + delay > give_up_after:
                raise
            log.warning("%s: Kinesis unavailable (%s); retrying in %.0f s", what, exc, delay)
            sleep(delay)
            delay = min(30.0, delay * 2)


class CheckpointStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path), timeout=60, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS checkpoints (reader TEXT, shard TEXT, seq TEXT NOT NULL, "
            "PRIMARY KEY (reader, shard))"
        )

    def get(self, reader: str, shard: str) -> int:
        row = self._db.execute(
            "SELECT seq FROM checkpoints WHERE reader = ? AND shard = ?", (reader, shard)
        ).fetchone()
        return int(row[0]) if row else 0

    def set(self, reader: str, shard: str, seq: int) -> None:
        if seq <= self.get(reader, shard):
            return  # never backwards
        self._db.execute(
            "INSERT INTO checkpoints(reader, shard, seq) VALUES (?, ?, ?) "
            "ON CONFLICT(reader, shard) DO UPDATE SET seq = excluded.seq",
            (reader, shard, str(seq)),
        )

    def close(self) -> None:
        self._db.close()


def list_shards(client: Any, stream_name: str) -> list[str]:
    """Every shard of the stream; waits out an outage (a stage started during one would
    otherwise die at once and use up its restarts)."""
    shards: list[str] = []
    kwargs: dict[str, Any] = {"StreamName": stream_name}
    while True:

        def call(k: dict[str, Any] = kwargs) -> Any:
            return client.list_shards(**k)

        page = with_outage_retries("ListShards", call)
        shards += [s["ShardId"] for s in page["Shards"]]
        token = page.get("NextToken")
        if not token:
            return shards
        kwargs = {"NextToken": token}


class KinesisShardReader:
    """One shard of a Kinesis stream, read with GetRecords (iterators reused between calls)."""

    def __init__(
        self, client: Any, stream_name: str, shard_id: str, checkpoints: CheckpointStore
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.shard_id = shard_id
        self.shard = int(shard_id.rsplit("-", 1)[-1])
        self.checkpoints = checkpoints
        self._iterator: str | None = None
        self._iterator_after: int | None = None
        self._outage_delay = 0.0  # the current backoff while Kinesis is unavailable
        self._quiet_until = 0.0

    def _outage(self, exc: BaseException) -> list[StreamRecord]:
        """Back off (1, 2, 4 … 30 s) and report nothing read; logged once per backoff step."""
        self._iterator = None
        self._outage_delay = min(30.0, max(1.0, self._outage_delay * 2))
        self._quiet_until = time.monotonic() + self._outage_delay
        log.warning(
            "shard %s: Kinesis unavailable (%s); reading again in %.0f s",
            self.shard_id,
            exc,
            self._outage_delay,
        )
        return []

    def _iterator_for(self, after: int) -> str:
        if self._iterator is not None and self._iterator_after == after:
            return self._iterator
        kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": self.shard_id}
        if after:
            kwargs.update(
                ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=str(after)
            )
        else:
            kwargs.update(ShardIteratorType="TRIM_HORIZON")
        return self.client.get_shard_iterator(**kwargs)["ShardIterator"]

    def read(self, after: int, limit: int) -> list[StreamRecord]:
        """The next records after `after`; none while Kinesis is unreachable or throttling (the
        loop calls again after its idle pause), so an outage costs time, never the stage."""
        from botocore.exceptions import ClientError

        if time.monotonic() < self._quiet_until:
            return []
        try:
            response = self.client.get_records(
                ShardIterator=self._iterator_for(after), Limit=min(limit, 10_000)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExpiredIteratorException":
                self._iterator = None  # a fresh one from the checkpoint next time
                return []
            if not is_transient(exc):
                raise
            return self._outage(exc)
        except Exception as exc:
            if not is_transient(exc):
                raise
            return self._outage(exc)
        self._outage_delay = 0.0
        records = [
            StreamRecord(
                seq=int(r["SequenceNumber"]),
                shard=self.shard,
                partition_key=r["PartitionKey"],
                data=bytes(r["Data"]),
                arrival=r["ApproximateArrivalTimestamp"].timestamp(),
            )
            for r in response.get("Records", [])
        ]
        self._iterator = response.get("NextShardIterator")
        self._iterator_after = records[-1].seq if records else after
        return records

    def checkpoint(self, reader: str) -> int:
        return self.checkpoints.get(reader, self.shard_id)

    def commit(self, reader: str, seq: int) -> None:
        self.checkpoints.set(reader, self.shard_id, seq)

    def trim(self, retention_seconds: float, now: float | None = None) -> int:
        return 0  # Kinesis expires records itself (retention period)


def kinesis_client(endpoint_url: str | None = None) -> Any:
    """boto3 Kinesis client that notices an outage in seconds, not minutes."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"}
    )
    return boto3.client("kinesis", endpoint_url=endpoint_url, config=config)
