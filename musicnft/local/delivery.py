"""Local delivery: what Kinesis Data Firehose does, on one machine.

Reads the stream with its own checkpoint, buffers by size and interval, converts to Parquet with
the post schema (Firehose's record format conversion), writes one file per flush under Firehose's
key layout, and writes records that fail conversion to `errors/`. The checkpoint moves only after
the files are durable, so a crash redelivers (at-least-once) and never loses a record.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO

import pyarrow.parquet as pq

from musicnft.contract.lake_layout import deletions_key, error_key, raw_key
from musicnft.contract.schema import POST_SCHEMA, to_table
from musicnft.contract.tombstone import is_tombstone_record
from musicnft.hotpath.consumer import decode_post
from musicnft.hotpath.decode import RejectedRecord
from musicnft.ports import Lake, StreamReader, StreamRecord

log = logging.getLogger("musicnft.deliver")


@dataclass
class FlushResult:
    records: int = 0
    rows: int = 0
    errors: int = 0
    keys: list[str] = field(default_factory=list)


def _error_line(record: StreamRecord, message: str, stream: str) -> bytes:
    """One error record in the shape Firehose writes to its error output prefix."""
    now_ms = int(time.time() * 1000)
    entry = {
        "attemptsMade": 1,
        "arrivalTimestamp": int(record.arrival * 1000),
        "errorCode": "DataFormatConversion.MalformedData",
        "errorMessage": message,
        "attemptEndingTimestamp": now_ms,
        "rawData": base64.b64encode(record.data).decode("ascii"),
        "sequenceNumber": record.sequence_number,
        "subsequenceNumber": 0,
        "dataCatalogTable": {"databaseName": "musicnft", "tableName": "posts"},
        "deliveryStream": stream,
    }
    return json.dumps(entry).encode() + b"\n"


class DeliveryLoop:
    def __init__(
        self,
        stream: StreamReader,
        lake: Lake,
        stream_name: str,
        buffer_bytes: int = 4 * 1024 * 1024,
        buffer_seconds: float = 60.0,
        retention_seconds: float = 24 * 3600,
        reader: str = "delivery",
        clock: Callable[[], float] = time.time,
        int96_timestamps: bool = False,
    ) -> None:
        self.stream = stream
        self.lake = lake
        self.stream_name = stream_name
        self.buffer_bytes = buffer_bytes
        self.buffer_seconds = buffer_seconds
        self.retention_seconds = retention_seconds
        self.reader = reader
        self.clock = clock
        self.int96_timestamps = int96_timestamps
        self._buffer: list[StreamRecord] = []
        self._buffered_bytes = 0
        self._buffer_started = 0.0
        self._position = stream.checkpoint(reader)
        self._last_trim = 0.0
        self.files_written = 0
        self.rows_written = 0
        self.errors_written = 0

    def poll(self, limit: int = 500) -> int:
        """Move up to `limit` new records from the stream into the buffer."""
        records = self.stream.read(self._position, limit)
        if records:
            if not self._buffer:
                self._buffer_started = self.clock()
            self._buffer.extend(records)
            self._buffered_bytes += sum(len(r.data) for r in records)
            self._position = records[-1].seq
        return len(records)

    def due(self) -> bool:
        if not self._buffer:
            return False
        if self._buffered_bytes >= self.buffer_bytes:
            return True
        return self.clock() - self._buffer_started >= self.buffer_seconds

    def flush(self) -> FlushResult:
        """Write the buffer to the lake (Parquet + errors), then checkpoint. Idempotent when empty."""
        result = FlushResult()
        if not self._buffer:
            return result
        records = self._buffer
        oldest = datetime.fromtimestamp(min(r.arrival for r in records), UTC)
        rows = []
        error_lines = []
        tombstone_lines = []  # deletions at the source: kept under deletions/, never in raw/
        for record in records:
            if is_tombstone_record(record.data):
                tombstone_lines.append(record.data.strip() + b"\n")
                continue
            try:
                rows.append(decode_post(record.data))
            except RejectedRecord as exc:
                log.error(
                    "record %s cannot be converted to Parquet: %s", record.sequence_number, exc
                )
                error_lines.append(_error_line(record, exc.reason, self.stream_name))
        if rows:
            buf = BytesIO()
            pq.write_table(
                to_table(rows, POST_SCHEMA),
                buf,
                compression="snappy",
                # Firehose's record format conversion (Hive's writer) stores timestamps as INT96
                use_deprecated_int96_timestamps=self.int96_timestamps,
            )
            key = raw_key(self.stream_name, oldest)
            self.lake.put(key, buf.getvalue())
            result.keys.append(key)
        if error_lines:
            key = error_key(self.stream_name, oldest)
            self.lake.put(key, b"".join(error_lines))
            result.keys.append(key)
        if tombstone_lines:
            key = deletions_key(oldest)
            self.lake.put(key, b"".join(tombstone_lines))
            result.keys.append(key)
        # Only now, with both files durable, may the stream forget these records for us.
        self.stream.commit(self.reader, records[-1].seq)
        result.records, result.rows, result.errors = len(records), len(rows), len(error_lines)
        self.files_written += 1 if rows else 0
        self.rows_written += len(rows)
        self.errors_written += len(error_lines)
        log.info(
            "delivered %d records: %d rows → %s%s",
            len(records),
            len(rows),
            result.keys[0] if rows else "(no file)",
            f", {len(error_lines)} to errors/" if error_lines else "",
        )
        self._buffer = []
        self._buffered_bytes = 0
        return result

    def maybe_trim(self, every_seconds: float = 300.0) -> None:
        now = self.clock()
        if now - self._last_trim >= every_seconds:
            self._last_trim = now
            removed = self.stream.trim(self.retention_seconds, now)
            if removed:
                log.info("stream retention: trimmed %d records everyone has read", removed)

    def run_once(self) -> FlushResult:
        """Deliver everything in the stream now, in files no larger than the buffer size."""
        total = FlushResult()
        while True:
            n = self.poll()
            if self._buffered_bytes >= self.buffer_bytes or (n == 0 and self._buffer):
                part = self.flush()
                total.records += part.records
                total.rows += part.rows
                total.errors += part.errors
                total.keys += part.keys
            if n == 0:
                return total

    def run(self, stop: threading.Event, idle_seconds: float = 0.5) -> None:
        """Deliver until `stop` is set, then drain the stream, flush and return."""
        while not stop.is_set():
            n = self.poll()
            if self.due():
                self.flush()
            self.maybe_trim()
            if n == 0:
                stop.wait(idle_seconds)
        self.run_once()


def run_many(loops: list[DeliveryLoop], stop: threading.Event, idle_seconds: float = 0.5) -> None:
    """Several delivery loops (one per shard) in one process, then drain them all."""
    while not stop.is_set():
        busy = False
        for loop in loops:
            busy = loop.poll() > 0 or busy
            if loop.due():
                loop.flush()
            loop.maybe_trim()
        if not busy:
            stop.wait(idle_seconds)
    for loop in loops:
        loop.run_once()
