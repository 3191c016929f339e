"""Stream sinks: where the producer puts posts. A port, so the profile picks Kinesis or local."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from musicnft.adapters.local_stream import LocalStream
from musicnft.settings import Settings


class StreamSink(Protocol):
    def put_records(self, entries: Sequence[tuple[str, bytes]]) -> None:
        """Put (partition_key, data) pairs; raises if they could not all be stored."""

    def close(self) -> None: ...


class LocalStreamSink:
    """The embedded profile's sink: one atomic append per batch to the local stream."""

    def __init__(self, stream: LocalStream) -> None:
        self.stream = stream

    def put_records(self, entries: Sequence[tuple[str, bytes]]) -> None:
        self.stream.put_records(entries)

    def close(self) -> None:
        self.stream.close()


def open_sink(settings: Settings) -> StreamSink:
    """The profile's sink: the local stream, or Kinesis with its on-disk spool."""
    if settings.stream_backend == "kinesis":
        from producer.kinesis_sink import KinesisSink, kinesis_client
        from producer.spool import Spool

        return KinesisSink(
            kinesis_client(settings.aws_endpoint_url),
            settings.stream_name,
            Spool(settings.spool_path),
            give_up_after=settings.spool_max_seconds,
        )
    from musicnft.wiring import open_stream

    return LocalStreamSink(open_stream(settings))
