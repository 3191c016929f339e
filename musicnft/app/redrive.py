"""Replay the consumer Lambda's on-failure destination (`musicnft redrive`).

When the Kinesis event source gives up on a batch (3 retries or an hour, as the template sets it),
Lambda sends only the batch's *metadata* to the SQS queue: the shard and the first and last sequence
numbers, never the records. Until someone replays them, those posts are in the lake (Firehose reads
the stream on its own) but not in `posts_hot`. This reads each message, fetches the batch's records
from the stream (while the stream still holds them), runs them through the same handler the Lambda
runs, and deletes the message only once every record is in the warehouse or dead-lettered.

A message that is not an on-failure record is copied to the dead-letter folder and deleted (it
would otherwise come back for ever). A batch the stream no longer holds (past its retention) is
reported and its message deleted: those posts reach `posts_hot` through the window reconciliation,
which repairs it from the lake.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("musicnft.redrive")

MAX_GET_RECORDS = 10_000


@dataclass(frozen=True)
class FailedBatch:
    """What Lambda's on-failure record says about one batch (`KinesisBatchInfo`)."""

    shard_id: str
    start: int
    end: int
    stream_name: str | None  # from the stream ARN, when the record carries one
    batch_size: int | None


def parse_failure_record(body: str) -> FailedBatch:
    """An SQS message body → the failed batch; ValueError naming what is wrong."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        raise ValueError("not JSON") from None
    info = data.get("KinesisBatchInfo") if isinstance(data, dict) else None
    if not isinstance(info, dict):
        raise ValueError("no KinesisBatchInfo: not a Lambda on-failure record for Kinesis")
    shard, start, end = (
        info.get("shardId"),
        info.get("startSequenceNumber"),
        info.get("endSequenceNumber"),
    )
    if not isinstance(shard, str) or not shard:
        raise ValueError("KinesisBatchInfo.shardId missing")
    try:
        first, last = int(str(start)), int(str(end))
    except ValueError:
        raise ValueError("KinesisBatchInfo sequence numbers are not integers") from None
    if first > last:
        raise ValueError(f"startSequenceNumber {first} is after endSequenceNumber {last}")
    arn = info.get("streamArn")
    name = arn.rsplit("/", 1)[-1] if isinstance(arn, str) and "/" in arn else None
    size = info.get("batchSize")
    return FailedBatch(shard, first, last, name, size if isinstance(size, int) else None)


def batch_records(kinesis: Any, stream_name: str, batch: FailedBatch) -> list[dict[str, Any]]:
    """The stream's records from `batch.start` to `batch.end` on its shard (empty when the
    stream no longer holds them)."""
    try:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream_name,
            ShardId=batch.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=str(batch.start),
        )["ShardIterator"]
    except kinesis.exceptions.InvalidArgumentException as exc:  # trimmed past retention
        log.warning("shard %s no longer holds %d: %s", batch.shard_id, batch.start, exc)
        return []
    out: list[dict[str, Any]] = []
    while iterator:
        answer = kinesis.get_records(ShardIterator=iterator, Limit=MAX_GET_RECORDS)
        records = answer.get("Records", [])
        for r in records:
            seq = int(r["SequenceNumber"])
            if seq > batch.end:
                return out
            if seq >= batch.start:
                out.append(r)
        if not records and answer.get("MillisBehindLatest", 0) == 0:
            return out  # the shard's end: nothing more to come for this range
        iterator = answer.get("NextShardIterator")
    return out


def lambda_event(records: list[dict[str, Any]], stream_arn: str) -> dict[str, Any]:
    """Kinesis records → the event the consumer Lambda receives for them."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(bytes(r["Data"])).decode("ascii"),
                    "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventName": "aws:kinesis:record",
                "eventSourceARN": stream_arn,
                "eventID": f"redrive:{r['SequenceNumber']}",
            }
            for r in records
        ]
    }


@dataclass
class RedriveReport:
    messages: int = 0
    replayed: int = 0  # records run through the handler
    done: int = 0  # messages deleted after a complete replay
    kept: int = 0  # messages left on the queue: some record still failed
    expired: int = 0  # messages whose records the stream no longer holds
    malformed: int = 0  # messages that are not on-failure records (dead-lettered)
    details: list[str] = field(default_factory=list)
    kept_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.kept == 0


Handler = Callable[[dict[str, Any]], dict[str, Any]]


def _dead_letter(folder: Path, message: dict[str, Any], reason: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    entry = {
        "stage": "redrive",
        "reason": reason,
        "message_id": message.get("MessageId"),
        "body": message.get("Body"),
        "at": datetime.now(UTC).isoformat(),
    }
    with open(folder / "redrive.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def redrive(
    sqs: Any,
    queue_url: str,
    kinesis: Any,
    stream_name: str,
    handler: Handler,
    dead_letter_dir: Path,
    max_messages: int = 1000,
    dry_run: bool = False,
) -> RedriveReport:
    """Replay up to `max_messages` on-failure records from the queue (see the module's doc)."""
    report = RedriveReport()
    receipts: dict[str, str] = {}  # message id -> its latest receipt handle
    while report.messages < max_messages:
        answer = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, max_messages - report.messages),
            WaitTimeSeconds=0,
            # ours while we replay it (back on the queue if we die); a dry run hides nothing
            VisibilityTimeout=0 if dry_run else 300,
        )
        received = answer.get("Messages", [])
        messages = [m for m in received if m["MessageId"] not in receipts]
        receipts.update({m["MessageId"]: m["ReceiptHandle"] for m in received})
        if not messages:
            break
        for message in messages:
            report.messages += 1
            _replay_one(sqs, queue_url, kinesis, stream_name, handler, dead_letter_dir,
                        message, report, dry_run)  # fmt: skip
    for mid in report.kept_ids:
        # visible again at once: the next `redrive` (once the warehouse is back) retries it
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipts[mid], VisibilityTimeout=0
        )
    return report


def _replay_one(
    sqs: Any,
    queue_url: str,
    kinesis: Any,
    default_stream: str,
    handler: Handler,
    dead_letter_dir: Path,
    message: dict[str, Any],
    report: RedriveReport,
    dry_run: bool,
) -> None:
    mid = message["MessageId"]

    def delete() -> None:
        if not dry_run:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    try:
        batch = parse_failure_record(message.get("Body", ""))
    except ValueError as exc:
        log.error("queue message %s is not an on-failure record (%s): dead-lettered", mid, exc)
        report.malformed += 1
        report.details.append(f"{mid}: malformed ({exc})")
        if not dry_run:
            _dead_letter(dead_letter_dir, message, str(exc))
        delete()
        return
    stream = batch.stream_name or default_stream
    records = batch_records(kinesis, stream, batch)
    span = f"{stream}/{batch.shard_id} [{batch.start}..{batch.end}]"
    if not records:
        log.warning(
            "message %s: %s is no longer in the stream (past its retention); the window "
            "reconciliation repairs posts_hot from the lake",
            mid,
            span,
        )
        report.expired += 1
        report.details.append(f"{mid}: {span} expired")
        delete()
        return
    if dry_run:
        report.details.append(f"{mid}: would replay {len(records)} record(s) of {span}")
        report.replayed += len(records)
        return
    arn = f"arn:aws:kinesis:::stream/{stream}"
    result = handler(lambda_event(records, arn))
    report.replayed += len(records)
    failed = result.get("batchItemFailures") or []
    if failed:
        log.error(
            "message %s: %d of %d record(s) of %s still failed; the message stays on the queue",
            mid,
            len(failed),
            len(records),
            span,
        )
        report.kept += 1
        report.details.append(f"{mid}: {len(failed)} record(s) of {span} still failed")
        report.kept_ids.append(mid)
        return
    log.info("message %s: replayed %d record(s) of %s", mid, len(records), span)
    report.done += 1
    report.details.append(f"{mid}: replayed {len(records)} record(s) of {span}")
    delete()
