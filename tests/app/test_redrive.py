"""`musicnft redrive` replays the consumer Lambda's on-failure queue (issue #12 item 10): after
an outage longer than the event source's retries, posts_hot gets the given-up batches back from
the stream, each message deleted only once all its records are stored; malformed messages are
dead-lettered; batches past the stream's retention are reported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.app.cli import main
from musicnft.app.redrive import parse_failure_record, redrive
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import format_timestamp, to_json_record
from musicnft.hotpath.consumer import handle_kinesis_event
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.settings import DEFAULT_KEYWORDS
from tests.support.aws import client, moto_server
from tests.support.records import x_message

STREAM = "musicnft-posts"
MATCHER = KeywordMatcher(DEFAULT_KEYWORDS)


@pytest.fixture
def aws() -> Iterator[str]:
    with moto_server() as url:
        yield url


def _post_bytes(i: int) -> bytes:
    from datetime import UTC, datetime, timedelta

    created = datetime(2024, 5, 1, 12, tzinfo=UTC) + timedelta(seconds=i)
    post = normalize_x_message(x_message(i, created=format_timestamp(created)), MATCHER, created)
    return json.dumps(to_json_record(post)).encode()


def _failure_record(shard: str, start: str, end: str, size: int) -> str:
    """What Lambda sends to an on-failure destination for a Kinesis batch (metadata only)."""
    return json.dumps(
        {
            "requestContext": {
                "requestId": "c9b8fa9f-5a7f-4e4d-9a1d-0a1b2c3d4e5f",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:consumer",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": 4,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
            "version": "1.0",
            "timestamp": "2024-05-01T12:30:00.000Z",
            "KinesisBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": start,
                "endSequenceNumber": end,
                "approximateArrivalOfFirstRecord": "2024-05-01T12:00:00.000Z",
                "approximateArrivalOfLastRecord": "2024-05-01T12:00:09.000Z",
                "batchSize": size,
                "streamArn": f"arn:aws:kinesis:us-east-1:123456789012:stream/{STREAM}",
            },
        }
    )


def _setup(aws: str) -> tuple[Any, Any, str, list[dict[str, Any]]]:
    kinesis, sqs = client("kinesis", aws), client("sqs", aws)
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    queue = sqs.create_queue(QueueName="consumer-on-failure")["QueueUrl"]
    puts = [
        kinesis.put_record(StreamName=STREAM, Data=_post_bytes(i), PartitionKey=f"p{i}")
        for i in range(10)
    ]
    return kinesis, sqs, queue, puts


def test_parse_failure_record_names_what_is_wrong() -> None:
    good = parse_failure_record(_failure_record("shardId-000000000000", "5", "9", 5))
    assert (good.shard_id, good.start, good.end, good.stream_name) == (
        "shardId-000000000000",
        5,
        9,
        STREAM,
    )
    for body, reason in [
        ("{", "not JSON"),
        ('{"Records": []}', "no KinesisBatchInfo"),
        (_failure_record("", "1", "2", 1), "shardId missing"),
        (_failure_record("s", "x", "2", 1), "not integers"),
        (_failure_record("s", "9", "2", 1), "is after"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_failure_record(body)


def test_redrive_replays_given_up_batches_once_and_dead_letters_garbage(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, sqs, queue, puts = _setup(aws)
    shard = puts[0]["ShardId"]
    # GIVEN two batches Lambda gave up on (records 0-3 and 6-9) and one garbage message
    sqs.send_message(
        QueueUrl=queue,
        MessageBody=_failure_record(shard, puts[0]["SequenceNumber"], puts[3]["SequenceNumber"], 4),
    )
    sqs.send_message(
        QueueUrl=queue,
        MessageBody=_failure_record(shard, puts[6]["SequenceNumber"], puts[9]["SequenceNumber"], 4),
    )
    sqs.send_message(QueueUrl=queue, MessageBody="hello, not an on-failure record")
    data = tmp_path / "data"
    monkeypatch.setenv("MUSICNFT_DATA_DIR", str(data))
    monkeypatch.setenv("MUSICNFT_AWS_ENDPOINT_URL", aws)
    monkeypatch.setenv("MUSICNFT_REDRIVE_QUEUE_URL", queue)
    # WHEN a dry run looks first, THEN nothing changes
    assert main(["redrive", "--dry-run"]) == 0
    assert "would replay 4 record(s)" in capsys.readouterr().out
    wh = EmbeddedWarehouse(data / "warehouse")
    assert wh.count("posts_hot") == 0
    # WHEN redrive runs
    assert main(["redrive"]) == 0
    err = capsys.readouterr().err
    # THEN exactly the given-up records are in posts_hot, the queue is empty, garbage kept aside
    ids = set(wh.query("SELECT post_id FROM posts_hot").column(0).to_pylist())
    sent = {json.loads(_post_bytes(i))["post_id"] for i in (0, 1, 2, 3, 6, 7, 8, 9)}
    assert ids == sent
    assert "8 record(s) replayed, 2 done, 0 kept" in err and "1 malformed" in err
    dead = (data / "dead_letter" / "redrive.jsonl").read_text().splitlines()
    assert len(dead) == 1 and json.loads(dead[0])["body"] == "hello, not an on-failure record"
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    # AND running it again does nothing
    assert main(["redrive"]) == 0
    assert wh.count("posts_hot") == 8


def test_a_batch_that_still_fails_keeps_its_message(aws: str, tmp_path: Path) -> None:
    kinesis, sqs, queue, puts = _setup(aws)
    shard = puts[0]["ShardId"]
    sqs.send_message(
        QueueUrl=queue,
        MessageBody=_failure_record(shard, puts[0]["SequenceNumber"], puts[1]["SequenceNumber"], 2),
    )
    wh = EmbeddedWarehouse(tmp_path / "wh")

    def still_down(event: dict[str, Any]) -> dict[str, Any]:
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in event["Records"]
            ]
        }

    # WHEN the warehouse still refuses the records
    report = redrive(sqs, queue, kinesis, STREAM, still_down, tmp_path / "dl", max_messages=5)
    # THEN the message is kept for the next redrive and the report says so
    assert (report.kept, report.done, report.ok) == (1, 0, False)
    # AND once the warehouse is back the same message is replayed
    report = redrive(
        sqs, queue, kinesis, STREAM, lambda e: handle_kinesis_event(e, wh), tmp_path / "dl"
    )
    assert (report.done, report.replayed, report.ok) == (1, 2, True)
    assert wh.count("posts_hot") == 2
