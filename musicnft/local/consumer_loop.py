"""The local event-source loop: what AWS Lambda's Kinesis event source mapping does, on one machine.

It reads the stream with its own checkpoint, builds events shaped exactly as Lambda sends them,
calls the handler loaded from `lambda/handler.py` by path, and applies Lambda's rules to the answer:
with `batchItemFailures` it checkpoints up to the lowest failed record and redelivers from there;
after `max_retries` redeliveries the failed record goes to the on-failure destination (a dead-letter
file) and the loop moves on. A handler exception (a function error, e.g. the warehouse is down) is
retried with capped exponential backoff and never drops a record: the stream holds them meanwhile.
"""

from __future__ import annotations

import binascii
import importlib.util
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from musicnft.hotpath.deadletter import DeadLetter
from musicnft.ports import StreamReader, StreamRecord, Warehouse

log = logging.getLogger("musicnft.consume")

HANDLER_PATH = Path(__file__).resolve().parents[2] / "lambda" / "handler.py"
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def load_handler_module(path: Path = HANDLER_PATH) -> ModuleType:
    """Import the Lambda handler file by path, the way the Lambda runtime does."""
    spec = importlib.util.spec_from_file_location("musicnft_lambda_handler", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the Lambda handler from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_handler(warehouse: Warehouse, path: Path = HANDLER_PATH) -> Handler:
    """The Lambda handler file's Kinesis handler, over `warehouse`.

    In Lambda, the handler builds its warehouse from the function's environment. Run locally, the
    caller already has its settings (with `--data-dir` and the rest applied) and opens the
    warehouse itself (`musicnft.wiring`); the handler file's documented hook
    `kinesis_handler_for(warehouse)` runs the same handler code over it, so nothing is passed
    through the environment.
    """
    handler: Handler = load_handler_module(path).kinesis_handler_for(warehouse)
    return handler


def kinesis_event(
    records: list[StreamRecord], stream_name: str, region: str = "local"
) -> dict[str, Any]:
    """The exact event Lambda builds for a Kinesis event source mapping."""
    arn = f"arn:aws:kinesis:{region}:000000000000:stream/{stream_name}"
    role = f"arn:aws:iam::000000000000:role/{stream_name}-consumer"
    encode = binascii.b2a_base64  # base64.b64encode without its per-call checks
    out = []
    for r in records:
        sequence_number = r.sequence_number
        out.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": sequence_number,
                    "data": encode(r.data, newline=False).decode("ascii"),
                    "approximateArrivalTimestamp": round(r.arrival, 3),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{r.shard_id}:{sequence_number}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": role,
                "awsRegion": region,
                "eventSourceARN": arn,
            }
        )
    return {"Records": out}


class LambdaContext:
    """The few attributes handlers commonly read from Lambda's context object."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.aws_request_id = ""
        self.memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class ConsumerLoop:
    def __init__(
        self,
        stream: StreamReader,
        handler: Handler,
        dead_letter: DeadLetter,
        stream_name: str,
        batch_size: int = 100,
        max_retries: int = 2,
        batch_window_seconds: float = 1.0,
        reader: str = "consumer",
        sleep: Callable[[float], None] = time.sleep,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self.stream = stream
        self.handler = handler
        self.dead_letter = dead_letter
        self.stream_name = stream_name
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.batch_window = batch_window_seconds
        self.reader = reader
        self.sleep = sleep
        self.on_idle = on_idle
        self.context = LambdaContext(f"{stream_name}-consumer")
        # After a step that held a short batch back for its window: how long the window has left
        # (the loop sleeps that, not a whole idle poll, so the window is all a record waits).
        self.held_for: float | None = None
        self.processed = 0
        self.invocations = 0
        self.dead_lettered = 0
        self._attempts: dict[int, int] = {}
        self._function_errors = 0

    def step(self, wait_for_batch: bool = False) -> int:
        """One invocation over the next batch; returns how many records it got past (0 = idle)."""
        self.held_for = None
        after = self.stream.checkpoint(self.reader)
        records = self.stream.read(after, self.batch_size)
        if not records:
            return 0
        waited = time.time() - records[0].arrival
        if wait_for_batch and len(records) < self.batch_size and waited < self.batch_window:
            self.held_for = self.batch_window - waited  # the batching window's rest
            return 0
        self.invocations += 1
        try:
            response = self.handler(kinesis_event(records, self.stream_name), self.context)
        except Exception as exc:  # a function error: retry the batch, never drop it
            self._function_errors += 1
            delay = min(30.0, 0.5 * 2 ** min(self._function_errors, 6))
            log.error(
                "handler failed on records %s..%s (%s); retrying in %.1fs",
                records[0].sequence_number,
                records[-1].sequence_number,
                exc,
                delay,
            )
            self.sleep(delay)
            return 0
        self._function_errors = 0
        failed = self._failed_sequences(response, records)
        if not failed:
            self.stream.commit(self.reader, records[-1].seq)
            self.processed += len(records)
            return len(records)
        lowest = min(failed)
        done = [r for r in records if r.seq < lowest]
        if done:
            self.stream.commit(self.reader, done[-1].seq)
            self.processed += len(done)
        attempts = self._attempts.get(lowest, 0) + 1
        self._attempts[lowest] = attempts
        if attempts <= self.max_retries:
            log.warning("record %021d failed (attempt %d); redelivering from it", lowest, attempts)
            return len(done)
        record = next(r for r in records if r.seq == lowest)
        self.dead_letter.write(
            record.data,
            f"handler reported the record failed {attempts} times",
            ref=f"{self.stream_name}:{record.sequence_number}",
            partition_key=record.partition_key,
        )
        self.dead_letter.flush()
        self.dead_lettered += 1
        self._attempts.pop(lowest, None)
        self.stream.commit(self.reader, lowest)
        log.error("record %s sent to the consumer dead-letter", record.sequence_number)
        return len(done) + 1

    @staticmethod
    def _failed_sequences(response: Any, records: list[StreamRecord]) -> set[int]:
        known = {r.sequence_number: r.seq for r in records}
        failures = response.get("batchItemFailures") if isinstance(response, dict) else None
        if not failures:
            return set()
        out: set[int] = set()
        for item in failures:
            ident = item.get("itemIdentifier") if isinstance(item, dict) else None
            if ident not in known:
                # Lambda treats an unknown identifier as the whole batch failing.
                return {records[0].seq}
            out.add(known[ident])
        return out

    def run_once(self, max_seconds: float | None = None) -> int:
        """Process everything in the stream now; returns records got past.

        With `max_seconds`, gives up when the time is spent (records stay in the stream).
        """
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        total = 0
        while True:
            n = self.step()
            if n == 0 and not self.stream.read(self.stream.checkpoint(self.reader), 1):
                return total
            total += n
            if deadline is not None and time.monotonic() > deadline:
                log.warning("drain stopped after %.0fs; the rest stays in the stream", max_seconds)
                return total

    def run(
        self, stop: threading.Event, idle_seconds: float = 0.5, drain_seconds: float = 300.0
    ) -> None:
        """Poll until `stop` is set, then drain what is in the stream and return."""
        while not stop.is_set():
            n = self.step(wait_for_batch=True)
            if n == 0:
                if self.on_idle:
                    self.on_idle()
                stop.wait(_pause([self], idle_seconds))
        self.run_once(max_seconds=drain_seconds)


def _pause(loops: list[ConsumerLoop], idle_seconds: float) -> float:
    """How long idle loops sleep: a held batch's remaining window, else the stream's own poll
    interval (a local stream is cheap to poll; Kinesis allows 5 reads a second per shard)."""
    held = [loop.held_for for loop in loops if loop.held_for is not None]
    if held:
        return max(0.01, min(held))
    polls = [getattr(loop.stream, "poll_seconds", idle_seconds) for loop in loops]
    return min([idle_seconds, *polls]) if polls else idle_seconds


def run_many(
    loops: list[ConsumerLoop],
    stop: threading.Event,
    idle_seconds: float = 0.5,
    drain_seconds: float = 300.0,
) -> None:
    """Several consumer loops (one per shard, as Lambda runs one batch per shard at a time)."""
    while not stop.is_set():
        busy = False
        for loop in loops:
            busy = loop.step(wait_for_batch=True) > 0 or busy
        if not busy:
            if loops and loops[0].on_idle:
                loops[0].on_idle()
            stop.wait(_pause(loops, idle_seconds))
    for loop in loops:
        loop.run_once(max_seconds=drain_seconds)
