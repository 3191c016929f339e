"""The local event-source loop applies Lambda's Kinesis rules to the handler's answers."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from musicnft.adapters.local_stream import LocalStream
from musicnft.hotpath.deadletter import DeadLetter, read_entries
from musicnft.local.consumer_loop import (
    ConsumerLoop,
    kinesis_event,
    load_handler,
    load_handler_module,
)
from tests.support.records import post_record


class RecordingHandler:
    """Fails the records whose data is in `poison`; raises for the first `outages` calls."""

    def __init__(self, poison: set[bytes] = frozenset(), outages: int = 0) -> None:  # type: ignore[assignment]
        self.poison = poison
        self.outages = outages
        self.calls: list[list[bytes]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        datas = [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]]
        self.calls.append(datas)
        if self.outages:
            self.outages -= 1
            raise ConnectionError("warehouse unavailable")
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["kinesis"]["sequenceNumber"]}
                for r, d in zip(event["Records"], datas, strict=True)
                if d in self.poison
            ]
        }


def _loop(tmp_path: Path, handler: Any, **kw: Any) -> tuple[LocalStream, ConsumerLoop, DeadLetter]:
    stream = LocalStream(tmp_path / "s.sqlite")
    dl = DeadLetter(tmp_path / "dl", "consumer")
    loop = ConsumerLoop(stream, handler, dl, "musicnft-posts", sleep=lambda s: None, **kw)
    return stream, loop, dl


def test_event_is_shaped_exactly_like_lambdas_kinesis_event(tmp_path: Path) -> None:
    with LocalStream(tmp_path / "s.sqlite") as s:
        s.put_records([("x:1", b"hello")])
        event = kinesis_event(s.read(0, 10), "musicnft-posts", "eu-west-1")
    (record,) = event["Records"]
    assert set(record) == {
        "kinesis", "eventSource", "eventVersion", "eventID", "eventName",
        "invokeIdentityArn", "awsRegion", "eventSourceARN",
    }  # fmt: skip
    assert record["eventSource"] == "aws:kinesis" and record["eventName"] == "aws:kinesis:record"
    assert base64.b64decode(record["kinesis"]["data"]) == b"hello"
    assert record["kinesis"]["partitionKey"] == "x:1"
    assert record["eventID"].endswith(":" + record["kinesis"]["sequenceNumber"])
    assert (
        record["eventSourceARN"] == "arn:aws:kinesis:eu-west-1:000000000000:stream/musicnft-posts"
    )


def test_poison_record_is_redelivered_then_dead_lettered_and_the_rest_processed(
    tmp_path: Path,
) -> None:
    poison = b"poison"
    handler = RecordingHandler(poison={poison})
    stream, loop, dl = _loop(tmp_path, handler, batch_size=10, max_retries=2)
    stream.put_records([("a", b"1"), ("b", b"2"), ("p", poison), ("c", b"3"), ("d", b"4")])
    loop.run_once()
    # Lambda's rule: checkpoint before the lowest failure, redeliver from it; after the retries
    # the record goes to the on-failure destination and the batch continues after it.
    assert handler.calls[0] == [b"1", b"2", poison, b"3", b"4"]
    assert handler.calls[1] == [poison, b"3", b"4"]
    assert handler.calls[2] == [poison, b"3", b"4"]
    assert handler.calls[3] == [b"3", b"4"]
    assert len(handler.calls) == 4
    assert stream.checkpoint("consumer") == 5
    dl.flush()
    (entry,) = read_entries(dl.path)
    assert entry["raw"] == "poison" and "3 times" in entry["reason"]


def test_function_errors_are_retried_and_never_dead_letter(tmp_path: Path) -> None:
    handler = RecordingHandler(outages=5)
    stream, loop, dl = _loop(tmp_path, handler, batch_size=10, max_retries=0)
    stream.put_records([("a", b"1"), ("b", b"2")])
    loop.run_once()
    assert len(handler.calls) == 6
    assert stream.checkpoint("consumer") == 2
    assert not dl.path.exists()


def test_real_handler_by_path_writes_posts_hot(tmp_path: Path, data_dir: Path) -> None:
    module = load_handler_module()
    module._warehouse.cache_clear()
    try:
        stream, loop, _ = _loop(tmp_path, module.kinesis_handler, batch_size=7)
        stream.put_records([(f"x:{i}", post_record(i)) for i in range(20)])
        assert loop.run_once() == 20
        assert loop.invocations == 3
        from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse

        assert EmbeddedWarehouse(data_dir / "warehouse").count("posts_hot", "post_id") == 20
    finally:
        module._warehouse.cache_clear()


def test_real_handler_over_a_given_warehouse_needs_no_environment(
    tmp_path: Path, data_dir: Path
) -> None:
    # GIVEN a warehouse somewhere else than the environment's data directory (`--data-dir`)
    from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse

    elsewhere = EmbeddedWarehouse(tmp_path / "elsewhere" / "warehouse")
    # WHEN the loop runs the Lambda handler file's code over it
    stream, loop, _ = _loop(tmp_path, load_handler(elsewhere), batch_size=7)
    stream.put_records([(f"x:{i}", post_record(i)) for i in range(20)])
    assert loop.run_once() == 20
    # THEN the posts are in that warehouse, and nothing was built from the environment
    assert elsewhere.count("posts_hot", "post_id") == 20
    assert not (data_dir / "warehouse").exists()
