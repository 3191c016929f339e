"""The producer's sink port and the profile's choice of sink live in the core: `musicnft.ports.StreamSink`
and `musicnft.wiring.open_sink` (the one composition root)."""

from __future__ import annotations

from musicnft.adapters.local_stream import LocalStreamSink
from musicnft.ports import StreamSink
from musicnft.wiring import open_sink

__all__ = ["LocalStreamSink", "StreamSink", "open_sink"]
