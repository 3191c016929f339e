"""The Kinesis sink against moto server: limits, per-record resends, throttling, outage + spool."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from musicnft.adapters.kinesis_sink import MAX_BATCH_RECORDS, KinesisSink, batches, partition_key
from musicnft.adapters.kinesis_stream import kinesis_client
from musicnft.adapters.spool import Spool
from tests.support.aws import Proxy, client, moto_server, read_stream

STREAM = "musicnft-posts"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def stream(endpoint: str) -> Iterator[str]:
    name = f"{STREAM}-{random.randrange(10**9)}"
    kinesis = client("kinesis", endpoint)
    kinesis.create_stream(StreamName=name, ShardCount=2)
    yield name
    kinesis.delete_stream(StreamName=name)


NOW = datetime.now(UTC).isoformat().replace("+00:00", "Z")


def entries(n: int, start: int = 0) -> list[tuple[str, bytes]]:
    """Post records as the producer puts them on the stream."""
    return [
        (
            f"x:{i}",
            json.dumps(
                {"post_id": f"x:{i}", "platform": "x", "created_at": NOW, "ingested_at": NOW,
                 "text": f"post {i} about #NFT music", "schema_version": 1}
            ).encode(),
        )
        for i in range(start, start + n)
    ]  # fmt: skip


def no_sleep(_: float) -> None:
    return None


class FlakyClient:
    """Forwards to a real (moto) client, but fails chosen records and throttles chosen calls."""

    def __init__(self, real: Any, fail_keys: set[str], throttle_calls: set[int]) -> None:
        self.real = real
        self.fail_keys = set(fail_keys)  # each fails once, then goes through
        self.throttle_calls = throttle_calls
        self.calls: list[list[str]] = []

    def put_records(self, StreamName: str, Records: list[dict]) -> dict:
        self.calls.append([r["PartitionKey"] for r in Records])
        if len(self.calls) in self.throttle_calls:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ProvisionedThroughputExceededException",
                        "Message": "slow down",
                    }
                },
                "PutRecords",
            )
        passing = [r for r in Records if r["PartitionKey"] not in self.fail_keys]
        real = (
            self.real.put_records(StreamName=StreamName, Records=passing)["Records"]
            if passing
            else []
        )
        out, it = [], iter(real)
        for r in Records:
            if r["PartitionKey"] in self.fail_keys:
                self.fail_keys.discard(r["PartitionKey"])
                out.append(
                    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "x"}
                )
            else:
                out.append(next(it))
        failed = sum(1 for r in out if "ErrorCode" in r)
        return {"FailedRecordCount": failed, "Records": out}


def test_batches_respect_count_and_size_limits() -> None:
    assert [len(b) for b in batches(entries(1200))] == [500, 500, 200]
    big = [(f"k{i}", b"x" * (1024 * 1024 - 10)) for i in range(6)]
    assert [len(b) for b in batches(big)] == [5, 1]  # 5 MiB per call
    with pytest.raises(ValueError, match="1 MiB"):
        batches([("k", b"x" * (1024 * 1024 + 1))])


def test_only_failed_records_are_resent_and_throttling_slows_down(
    endpoint: str, stream: str, tmp_path: Path
) -> None:
    # GIVEN a stream that fails 1 record in 7 once, and throttles the 2nd call outright
    posts = entries(1200)
    fail = {k for k, _ in posts[3::7]}
    flaky = FlakyClient(client("kinesis", endpoint), fail, throttle_calls={2})
    sleeps: list[float] = []
    sink = KinesisSink(
        flaky, stream, Spool(tmp_path / "spool.sqlite"), sleep=sleeps.append, rng=random.Random(1)
    )
    # WHEN the producer puts 1,200 posts
    sink.put_records(posts)
    # THEN the first call carried 500, the throttled call was retried whole, and each resend
    # carried exactly the records that had failed
    assert len(flaky.calls[0]) == MAX_BATCH_RECORDS
    assert flaky.calls[1] == flaky.calls[2]  # the throttled call, retried
    first_failed = {k for k in flaky.calls[0] if k in fail}
    assert set(flaky.calls[1]) == first_failed
    assert sleeps and all(s >= 0 for s in sleeps)  # backed off (with jitter) before resending
    assert sink.metrics.throttled >= 1 and sink.metrics.retried == len(fail)
    # AND every post is on the stream exactly once, each post's copies on one shard
    on_stream = [
        k for recs in read_stream(client("kinesis", endpoint), stream).values() for k, _ in recs
    ]
    assert sorted(on_stream) == sorted(k for k, _ in posts)
    assert sink.spool.depth() == 0
    assert sink.stats()["sent"] == 1200


def test_outage_spools_to_disk_and_drains_in_order(
    endpoint: str, stream: str, tmp_path: Path
) -> None:
    port = int(endpoint.rsplit(":", 1)[1])
    proxy = Proxy(port)
    try:
        sink = KinesisSink(
            kinesis_client(proxy.url),
            stream,
            Spool(tmp_path / "spool.sqlite"),
            give_up_after=0.5,
            sleep=no_sleep,
        )
        sink.put_records(entries(100))
        # WHEN the endpoint goes away
        proxy.down()
        sink.put_records(entries(100, start=100))
        # THEN the posts go to the on-disk spool, and so does everything after them
        assert sink.spool.depth() == 100
        sink.put_records(entries(50, start=200))
        assert sink.spool.depth() == 150
        # WHEN it comes back, the spool drains oldest first
        proxy.up()
        sink._next_drain = 0.0
        sink.put_records(entries(50, start=250))
        for _ in range(10):
            if not sink.spool.depth():
                break
            sink.drain(budget_seconds=5, force=True)
        assert sink.spool.depth() == 0
        # THEN every post arrived exactly once
        on_stream = read_stream(client("kinesis", endpoint), stream)
        keys = [k for recs in on_stream.values() for k, _ in recs]
        assert sorted(keys, key=lambda k: int(k[2:])) == [f"x:{i}" for i in range(300)]
        assert len(keys) == len(set(keys))
        # AND per shard, posts kept the order they were produced in
        for recs in on_stream.values():
            order = [int(k[2:]) for k, _ in recs]
            assert order == sorted(order)
        sink.close()
        # AND delivered to the S3 lake and reconciled, every post is there exactly once
        assert lake_and_reconcile(endpoint, stream, tmp_path) == {f"x:{i}" for i in range(300)}
    finally:
        proxy.close()


def lake_and_reconcile(endpoint: str, stream: str, tmp_path: Path) -> set[str]:
    """Kinesis → delivery (Firehose's stand-in) → S3 → backfill; returns the ids in `posts`."""
    from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
    from musicnft.adapters.kinesis_stream import CheckpointStore, KinesisShardReader, list_shards
    from musicnft.adapters.s3_lake import S3Lake
    from musicnft.batch.backfill import run_backfill
    from musicnft.local.delivery import DeliveryLoop

    bucket = f"lake-{stream}"
    s3 = client("s3", endpoint)
    s3.create_bucket(Bucket=bucket)
    kinesis = client("kinesis", endpoint)
    lake = S3Lake(bucket, client=s3)
    store = CheckpointStore(tmp_path / "checkpoints.sqlite")
    for shard in list_shards(kinesis, stream):
        DeliveryLoop(KinesisShardReader(kinesis, stream, shard, store), lake, stream).run_once()
    wh = EmbeddedWarehouse(tmp_path / "warehouse")
    report = run_backfill(lake, wh, ["music"])
    assert not report.failed
    ids = wh.query("SELECT post_id FROM posts").column(0).to_pylist()
    assert len(ids) == len(set(ids))
    return set(ids)


def test_spool_survives_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    spool.append(entries(3))
    spool.close()
    again = Spool(tmp_path / "s.sqlite")
    assert [k for _, k, _ in again.peek(10)] == ["x:0", "x:1", "x:2"]
    again.remove([again.peek(1)[0][0]])
    assert again.depth() == 2


def test_a_partition_key_longer_than_kinesis_allows_does_not_stall_the_batch(
    endpoint: str, stream: str, tmp_path: Path
) -> None:
    # GIVEN a batch whose middle post has a Bluesky-length id (343 characters)
    long_id = "bsky:at://did:plc:" + "a" * 300 + "/app.bsky.feed.post/3k"
    assert len(long_id) > 256
    batch = entries(3)
    batch.insert(1, (long_id, json.dumps({"post_id": long_id}).encode()))
    sink = KinesisSink(
        kinesis_client(endpoint), stream, Spool(tmp_path / "spool.sqlite"), sleep=no_sleep
    )
    # WHEN it is put
    sink.put_records(batch)
    # THEN every record reached the stream (nothing spooled), the long one under a stable digest
    assert sink.spool.depth() == 0
    shards = read_stream(client("kinesis", endpoint), stream)
    records = [(key, data) for shard in shards.values() for key, data in shard]
    assert sorted(json.loads(d)["post_id"] for _, d in records) == sorted(k for k, _ in batch)
    keys = {json.loads(d)["post_id"]: key for key, d in records}
    assert keys[long_id] == partition_key(long_id) != long_id
    assert len(keys[long_id]) <= 256
    assert keys["x:0"] == "x:0"


def test_a_corrupt_spool_is_quarantined_and_the_producer_starts(tmp_path: Path) -> None:
    # GIVEN a spool file that is not a database (a torn disk, a stray copy)
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    # WHEN the sink's spool opens
    spool = Spool(path)
    # THEN the bad file is set aside whole, and an empty spool works
    assert spool.quarantined is not None
    assert spool.quarantined.read_bytes() == b"this is not sqlite" * 100
    spool.append(entries(2))
    assert spool.depth() == 2


def test_an_empty_spool_gives_its_disk_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    big = [(f"x:{i}", b"z" * 10_000) for i in range(300)]
    spool.append(big)
    spool.remove([i for i, _, _ in spool.peek(1000)])
    before = spool.disk_bytes()
    assert before > 3_000_000
    assert spool.compact_if_empty(min_bytes=1)
    assert spool.disk_bytes() < before / 10
