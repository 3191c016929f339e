"""The producer loop: normalize, dead-letter, pace, batch, put, and shut down without losing posts."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import encode_record
from musicnft.hotpath.deadletter import DeadLetter
from musicnft.hotpath.decode import ControlMessage, RejectedRecord, SkipRecord
from musicnft.hotpath.normalize_x import normalize_x_line
from musicnft.hotpath.tombstones import TombstoneForStream
from musicnft.ports import StreamSink
from producer.replay import Pacer

log = logging.getLogger("musicnft.produce")

Normalizer = Callable[[bytes, KeywordMatcher, datetime], dict]

# `on_durable(n)`: the first n lines taken from the source in this run are durable: each one is on
# the stream (its batch was put), dead-lettered (written and fsync'd) or needed nothing (skipped,
# a keep-alive, a control message). Called with growing n, from the thread that made them durable.
DurableCallback = Callable[[int], None]
# `on_dead_letter(ref, line)`: this source line was dead-lettered (durably) by the normalizer.
DeadLetterCallback = Callable[[str, bytes], None]


@dataclass
class ProducerStats:
    lines: int = 0
    produced: int = 0
    dead_letter: int = 0
    keep_alives: int = 0
    control: int = 0
    skipped: int = 0
    tombstones: int = 0
    batches: int = 0
    sink_retries: int = 0


class Producer:
    def __init__(
        self,
        sink: StreamSink,
        matcher: KeywordMatcher,
        dead_letter: DeadLetter,
        batch_records: int = 500,
        linger_seconds: float = 0.5,
        max_record_bytes: int = 1_048_576,
        progress_seconds: float = 5.0,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
        on_durable: DurableCallback | None = None,
        on_dead_letter: DeadLetterCallback | None = None,
    ) -> None:
        self.sink = sink
        self.matcher = matcher
        self.dead_letter = dead_letter
        self.batch_records = batch_records
        self.linger = linger_seconds
        self.max_record_bytes = max_record_bytes
        self.progress_seconds = progress_seconds
        self.stop = stop or threading.Event()
        self.clock = clock
        self.stats = ProducerStats()
        self._batch: list[tuple[str, bytes]] = []
        # Sources that persist a resume position (Jetstream's cursor, X's last id) must persist
        # only what is durable, or a kill -9 between "accepted" and "put" loses the batch.
        self.on_durable = on_durable
        self.on_dead_letter = on_dead_letter
        self._taken = 0  # lines taken from the source (this run)
        self._handled = 0  # of which processed to the end (in the batch, dead-lettered, ...)
        self._batch_first = 0  # the line number of the batch's first record (when there is one)
        self._acked = 0
        self._lock = threading.RLock()  # the batch is shared with the linger ticker
        self._normalize: Normalizer = normalize_x_line
        self._batch_started = 0.0
        self._started = clock()
        self._last_progress = self._started

    def run(
        self,
        lines: Iterable[tuple[str, bytes]],
        pacer: Pacer,
        normalize: Normalizer = normalize_x_line,
    ) -> ProducerStats:
        """Process lines until they end or `stop` is set; always flushes what it accepted.

        `normalize` turns one raw record of the source into a post (X lines by default)."""
        self._normalize = normalize
        self._taken = self._handled = self._acked = 0
        ticker_stop = threading.Event()
        ticker = threading.Thread(target=self._linger_loop, args=(ticker_stop,), daemon=True)
        ticker.start()
        try:
            for ref, line in lines:
                if self.stop.is_set():
                    log.info("stop requested: flushing and exiting")
                    break
                self._taken += 1
                self._process(ref, line, pacer)
                # Only now: a linger flush while this line is being normalized must not count
                # it as durable before its post is even in the batch.
                self._handled = self._taken
                self._ack()
                self._maybe_progress()
        finally:
            ticker_stop.set()
            ticker.join()
            self.flush(final=True)
            self.dead_letter.flush()
            self._ack()
            self._progress(final=True)
        return self.stats

    def _linger_loop(self, done: threading.Event) -> None:
        """Flush a batch that has waited `linger` seconds even while the source is quiet (a live
        stream can go minutes without a post): accepted posts never sit in memory for long."""
        while not done.wait(max(self.linger / 2, 0.05)):
            with self._lock:
                if self._batch and self.clock() - self._batch_started >= self.linger:
                    self.flush()
            self._maybe_progress()

    def _process(self, ref: str, line: bytes, pacer: Pacer) -> None:
        self.stats.lines += 1
        if not line.strip():
            self.stats.keep_alives += 1
            return
        now = datetime.fromtimestamp(self.clock(), UTC)
        try:
            post = self._normalize(line, self.matcher, now)
        except TombstoneForStream as deleted:  # a delete of a post we stored: tombstone it
            for tombstone in deleted.tombstones:  # several for an account's posts
                self.stats.tombstones += 1
                self._enqueue(tombstone.partition_key, tombstone.to_stream_record())
            return
        except SkipRecord:
            self.stats.skipped += 1
            return
        except ControlMessage as msg:
            self.stats.control += 1
            log.warning("%s: stream message %s", ref, msg)
            return
        except RejectedRecord as exc:
            self._reject(line, exc.reason, ref, source_line=True)
            return
        except Exception as exc:
            log.exception("%s: normalizing failed unexpectedly", ref)
            reason = f"unexpected {type(exc).__name__}: {str(exc)[:200]}"
            self._reject(line, reason, ref, source_line=True)
            return
        try:
            delay = pacer.due_in(post["created_at"])
            if delay > 0:
                self._wait(delay)
                # A replayed post is read when it is due. The stamp taken before the wait would
                # count the pacing as the pipeline's latency (X's times are whole seconds, so
                # the first post of each second waited up to a second here).
                post["ingested_at"] = datetime.fromtimestamp(self.clock(), UTC)
            post["created_at"] = pacer.stamp(post["created_at"], post["post_id"])
            data = encode_record(post)
            size = len(data) + len(post["post_id"].encode("utf-8"))  # Kinesis counts the key
        except Exception as exc:
            # The schema gate should make this impossible; if it ever is not, one line is
            # dead-lettered, not the source stopped (a restart would replay it and stop again).
            log.exception("%s: encoding the post failed unexpectedly", ref)
            reason = f"unexpected {type(exc).__name__}: {str(exc)[:200]}"
            self._reject(line, reason, ref, source_line=True)
            return
        if size > self.max_record_bytes:
            reason = f"record too large ({size} bytes > {self.max_record_bytes})"
            self._reject(line, reason, ref, source_line=True)
            return
        self._enqueue(post["post_id"], data)

    def _enqueue(self, key: str, data: bytes) -> None:
        with self._lock:
            if not self._batch:
                self._batch_started = self.clock()
                self._batch_first = self._taken
            self._batch.append((key, data))
            if len(self._batch) >= self.batch_records:
                self.flush()

    def _reject(self, line: bytes, reason: str, ref: str, source_line: bool = False) -> None:
        self.stats.dead_letter += 1
        log.warning("%s: dead-lettered: %s", ref, reason)
        self.dead_letter.write(line, reason, ref)  # durable when it returns (fsync'd)
        if source_line and self.on_dead_letter is not None:
            self.on_dead_letter(ref, line)

    def _ack(self) -> None:
        """Tell the source how many of its lines are durable: all of them up to the first one
        whose post still waits in the batch."""
        if self.on_durable is None:
            return
        with self._lock:
            durable = self._batch_first - 1 if self._batch else self._handled
            if durable <= self._acked:
                return
            self._acked = durable
            self.on_durable(durable)

    def _wait(self, seconds: float) -> None:
        """Sleep for pacing, flushing a lingering batch and waking at once on stop."""
        deadline = self.clock() + seconds
        while not self.stop.is_set():
            remaining = deadline - self.clock()
            with self._lock:
                if self._batch and self.clock() - self._batch_started >= self.linger:
                    self.flush()
            if remaining <= 0:
                return
            self.stop.wait(min(remaining, max(self.linger, 0.05)))
            self._maybe_progress()

    def flush(self, final: bool = False) -> None:
        """Put the batch on the stream, retrying with backoff while the sink is failing.

        On shutdown a batch the sink still refuses goes to the dead-letter whole (with its
        reason), so nothing accepted is ever lost.
        """
        with self._lock:
            self._flush(final)

    def _flush(self, final: bool) -> None:
        if not self._batch:
            return
        delay = 0.2
        while True:
            try:
                self.sink.put_records(self._batch)
                break
            except Exception as exc:
                self.stats.sink_retries += 1
                if final and self.stop.is_set() and self.stats.sink_retries > 3:
                    for key, data in self._batch:
                        self.dead_letter.write(data, f"stream unavailable at shutdown: {exc}", key)
                    self.stats.dead_letter += len(self._batch)
                    log.error("stream unavailable; %d posts dead-lettered", len(self._batch))
                    self._batch = []
                    self._ack()
                    return
                log.error("stream put failed (%s); retrying in %.1fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        self.stats.produced += len(self._batch)
        self.stats.batches += 1
        self._batch = []
        self._ack()

    def _maybe_progress(self) -> None:
        if self.clock() - self._last_progress >= self.progress_seconds:
            self._progress()

    def _progress(self, final: bool = False) -> None:
        now = self.clock()
        elapsed = max(now - self._started, 1e-9)
        s = self.stats
        log.info(
            "%s lines=%d produced=%d dead_letter=%d keep_alives=%d rate=%.0f posts/s",
            "done:" if final else "progress:",
            s.lines,
            s.produced,
            s.dead_letter,
            s.keep_alives,
            s.produced / elapsed,
        )
        stats = getattr(self.sink, "stats", None)
        if callable(stats):
            log.info("stream sink: %s", stats())
        self._last_progress = now
