"""Local delivery (Firehose's role): buffering, key layout, errors/, checkpoint after durability."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from musicnft.adapters.local_lake import LocalLake
from musicnft.adapters.local_stream import LocalStream
from musicnft.local.delivery import DeliveryLoop
from tests.support.records import post_record


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _setup(tmp_path: Path, **kw: float) -> tuple[LocalStream, LocalLake, DeliveryLoop, FakeClock]:
    stream = LocalStream(tmp_path / "s.sqlite")
    lake = LocalLake(tmp_path / "lake")
    clock = FakeClock()
    loop = DeliveryLoop(stream, lake, "musicnft-posts", clock=clock, **kw)  # type: ignore[arg-type]
    return stream, lake, loop, clock


def test_buffer_flushes_on_interval_and_on_size(tmp_path: Path) -> None:
    stream, _lake, loop, clock = _setup(tmp_path, buffer_bytes=10**9, buffer_seconds=60)
    stream.put_records([(f"x:{i}", post_record(i)) for i in range(10)])
    loop.poll()
    assert not loop.due()
    clock.now += 59
    assert not loop.due()
    clock.now += 1
    assert loop.due()
    result = loop.flush()
    assert result.rows == 10 and len(result.keys) == 1

    stream2, _lake2, loop2, _ = _setup(tmp_path / "b", buffer_bytes=2000, buffer_seconds=900)
    stream2.put_records([(f"x:{i}", post_record(i)) for i in range(10)])
    loop2.poll()
    assert loop2.due()  # size reached long before the interval


def test_run_once_writes_firehose_keys_and_splits_by_size(tmp_path: Path) -> None:
    stream, lake, loop, _ = _setup(tmp_path, buffer_bytes=5000, buffer_seconds=900)
    stream.put_records([(f"x:{i}", post_record(i)) for i in range(1200)])
    result = loop.run_once()
    keys = list(lake.list("raw/"))
    assert result.rows == 1200 and len(keys) > 1
    total = 0
    for key in keys:
        parts = key.split("/")
        assert parts[0] == "raw" and len(parts) == 6
        assert parts[5].startswith(f"musicnft-posts-1-{parts[1]}-{parts[2]}-{parts[3]}-{parts[4]}-")
        total += pq.read_metadata(tmp_path / "lake" / key).num_rows
    assert total == 1200
    assert stream.checkpoint("delivery") == 1200


def test_records_that_do_not_fit_the_schema_go_to_errors(tmp_path: Path) -> None:
    stream, lake, loop, _ = _setup(tmp_path)
    bad = [b"not json", json.dumps({"post_id": "x:9", "text": 5}).encode(), b'{"text": "no id"}']
    stream.put_records([("x:1", post_record(1)), ("a", bad[0]), ("b", bad[1]), ("c", bad[2])])
    result = loop.run_once()
    assert (result.rows, result.errors) == (1, 3)
    (error_key,) = list(lake.list("errors/"))
    assert error_key.startswith("errors/format-conversion-failed/")
    lines = [json.loads(x) for x in lake.get(error_key).splitlines()]
    assert len(lines) == 3
    import base64

    assert sorted(base64.b64decode(x["rawData"]) for x in lines) == sorted(bad)
    assert all(
        x["errorCode"].startswith("DataFormatConversion") and x["errorMessage"] for x in lines
    )


def test_checkpoint_moves_only_after_the_file_is_written(tmp_path: Path) -> None:
    stream, lake, loop, _ = _setup(tmp_path)
    stream.put_records([(f"x:{i}", post_record(i)) for i in range(5)])

    def broken_put(key: str, data: bytes) -> None:
        raise OSError("disk full")

    lake.put = broken_put  # type: ignore[method-assign]
    loop.poll()
    with pytest.raises(OSError):
        loop.flush()
    assert stream.checkpoint("delivery") == 0  # nothing acknowledged: a restart redelivers
    restarted = DeliveryLoop(stream, LocalLake(tmp_path / "lake"), "musicnft-posts")
    assert restarted.run_once().rows == 5
    assert stream.checkpoint("delivery") == 5
