"""The producer's Kinesis sink: PutRecords within every limit, resending exactly what failed.

- Batches: ≤ 500 records and ≤ 5 MiB per call; partition key = post id, which spreads posts over
  shards and keeps each post's copies on one shard.
- A call that succeeds can still fail single records (`FailedRecordCount`, `ErrorCode`): only those
  are resent, with exponential backoff and full jitter. Throttling slows the producer down.
- When the stream cannot take records for longer than `give_up_after` seconds (outage, credentials,
  throttling past the bound), what is left goes to the durable spool, and so does everything after
  it until the spool is drained (oldest first), so posts are neither lost nor held in memory.

Ordering: each post is its own partition key, so per-key order is trivially kept; a resent record
lands after records that succeeded in the same call, as with any PutRecords client.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from musicnft.adapters.spool import Spool

log = logging.getLogger("musicnft.kinesis")

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
MAX_PARTITION_KEY_CHARS = 256


def partition_key(post_id: str) -> str:
    """The post id, or a stable digest of it when it is longer than Kinesis allows (a Bluesky
    at:// id can reach 343 characters): one such key would otherwise fail the whole PutRecords
    call, and with it every post in the batch and the spool behind it. The same id always maps to
    the same key, so a post's copies still share a shard; readers take the id from the record."""
    if len(post_id) <= MAX_PARTITION_KEY_CHARS:
        return post_id
    return "sha256:" + hashlib.sha256(post_id.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class SinkMetrics:
    sent: int = 0
    retried: int = 0
    throttled: int = 0
    spooled: int = 0
    drained: int = 0
    calls: int = 0
    started: float = field(default_factory=time.monotonic)


def batches(entries: Sequence[tuple[str, bytes]]) -> list[list[int]]:
    """Indices of `entries` grouped into PutRecords calls within the count and size limits."""
    out: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i, (key, data) in enumerate(entries):
        rec = len(data) + len(partition_key(key).encode())
        if rec > MAX_RECORD_BYTES:
            raise ValueError(f"record {key} is {rec} bytes, over Kinesis' 1 MiB limit")
        if current and (len(current) >= MAX_BATCH_RECORDS or size + rec > MAX_BATCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(i)
        size += rec
    if current:
        out.append(current)
    return out


class KinesisSink:
    def __init__(
        self,
        client: Any,
        stream_name: str,
        spool: Spool,
        give_up_after: float = 30.0,
        base_delay: float = 0.1,
        max_delay: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.spool = spool
        self.give_up_after = give_up_after
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self.metrics = SinkMetrics()
        self._next_drain = 0.0
        self._drain_delay = 1.0

    # ---- the port -------------------------------------------------------------------------
    def put_records(self, entries: Sequence[tuple[str, bytes]]) -> None:
        """Every entry ends up on the stream or in the spool before this returns."""
        if self.spool.depth():
            self.spool.append(entries)
            self.metrics.spooled += len(entries)
            self.drain(budget_seconds=1.0)
            return
        unsent = self._send(entries, self.clock() + self.give_up_after)
        if unsent:
            self.spool.append([entries[i] for i in unsent])
            self.metrics.spooled += len(unsent)
            log.warning(
                "stream %s not taking records; %d post(s) spooled to %s (depth %d)",
                self.stream_name,
                len(unsent),
                self.spool.path,
                self.spool.depth(),
            )

    def drain(self, budget_seconds: float = 1.0, force: bool = False) -> int:
        """Send spooled posts, oldest first, while the stream takes them; returns how many."""
        if not force and self.clock() < self._next_drain:
            return 0
        sent_total = 0
        deadline = self.clock() + budget_seconds
        while True:
            rows = self.spool.peek(MAX_BATCH_RECORDS)
            if not rows:
                self._drain_delay = 1.0
                if sent_total:
                    log.info("spool drained (%d posts sent)", sent_total)
                    self.spool.compact_if_empty()
                return sent_total
            entries = [(k, d) for _, k, d in rows]
            unsent = set(self._send(entries, deadline))
            done = [rows[i][0] for i in range(len(rows)) if i not in unsent]
            self.spool.remove(done)
            sent_total += len(done)
            self.metrics.drained += len(done)
            if unsent:
                self._next_drain = self.clock() + self._drain_delay
                self._drain_delay = min(self._drain_delay * 2, 30.0)
                return sent_total

    def close(self, drain_seconds: float = 30.0) -> None:
        if self.spool.depth():
            self.drain(budget_seconds=drain_seconds, force=True)
        depth = self.spool.depth()
        if depth:
            log.warning(
                "%d post(s) stay in the spool %s; the next producer start sends them first",
                depth,
                self.spool.path,
            )
        self.spool.close()

    def stats(self) -> dict[str, Any]:
        m = self.metrics
        elapsed = max(self.clock() - m.started, 1e-9)
        return {
            "sent": m.sent,
            "records_per_s": round(m.sent / elapsed, 1),
            "retried": m.retried,
            "throttled": m.throttled,
            "spool_depth": self.spool.depth(),
        }

    # ---- sending --------------------------------------------------------------------------
    def _backoff(self, attempt: int) -> None:
        cap = min(self.max_delay, self.base_delay * 2**attempt)
        self.sleep(self.rng.uniform(0, cap))  # full jitter

    def _send(self, entries: Sequence[tuple[str, bytes]], deadline: float) -> list[int]:
        """Send entries; returns the indices not sent when the deadline passed (in order)."""
        from botocore.exceptions import BotoCoreError, ClientError

        groups = batches(entries)
        for g, group in enumerate(groups):
            pending = group
            attempt = 0
            while pending:
                self.metrics.calls += 1
                try:
                    response = self.client.put_records(
                        StreamName=self.stream_name,
                        Records=[
                            {"Data": entries[i][1], "PartitionKey": partition_key(entries[i][0])}
                            for i in pending
                        ],
                    )
                except (ClientError, BotoCoreError) as exc:
                    code = (
                        (getattr(exc, "response", None) or {})
                        .get("Error", {})
                        .get("Code", type(exc).__name__)
                    )
                    if "Throughput" in code or "Throttl" in code or "LimitExceeded" in code:
                        self.metrics.throttled += 1
                    log.warning("PutRecords failed (%s); backing off", code)
                    if self.clock() >= deadline:
                        return pending + [i for rest in groups[g + 1 :] for i in rest]
                    self._backoff(attempt)
                    attempt += 1
                    continue
                results = response.get("Records", [])
                failed = [i for i, r in zip(pending, results, strict=True) if r.get("ErrorCode")]
                self.metrics.sent += len(pending) - len(failed)
                if failed:
                    codes = {r["ErrorCode"] for r in results if r.get("ErrorCode")}
                    if any("Throughput" in c for c in codes):
                        self.metrics.throttled += 1
                    self.metrics.retried += len(failed)
                    log.info(
                        "%d of %d records failed (%s); resending those",
                        len(failed),
                        len(pending),
                        ", ".join(sorted(codes)),
                    )
                    if self.clock() >= deadline:
                        return failed + [i for rest in groups[g + 1 :] for i in rest]
                    self._backoff(attempt)
                    attempt += 1
                pending = failed
        return []
