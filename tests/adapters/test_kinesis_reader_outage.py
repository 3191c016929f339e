"""A Kinesis reader waits out an outage or throttling instead of crashing its stage (the chaos
run saw delivery and consumer exit 1 on every GetRecords during a 60 s outage and live on only
through restarts, which a longer outage would use up)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from musicnft.adapters.kinesis_stream import (
    CheckpointStore,
    KinesisShardReader,
    kinesis_client,
    list_shards,
    with_outage_retries,
)
from musicnft.devtools.fault_proxy import (
    FaultProxy,
    kinesis_request,
    kinesis_throttled,
    kinesis_unavailable,
)
from tests.support.aws import client, moto_server

STREAM = "outage"


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with moto_server() as url:
        kinesis = client("kinesis", url)
        kinesis.create_stream(StreamName=STREAM, ShardCount=1)
        for i in range(5):
            kinesis.put_record(StreamName=STREAM, Data=f"r{i}".encode(), PartitionKey="p")
        p = FaultProxy(url, kinesis_request, kinesis_unavailable, kinesis_throttled, seed=1)
        try:
            yield p
        finally:
            p.close()


def test_reads_during_an_outage_return_nothing_and_resume_after_it(
    proxy: FaultProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kinesis = kinesis_client(proxy.endpoint)
    [shard] = list_shards(kinesis, STREAM)
    reader = KinesisShardReader(kinesis, STREAM, shard, CheckpointStore(tmp_path / "c.sqlite"))
    # WHEN Kinesis goes down, THEN a read returns nothing (logged), no exception
    proxy.down()
    with caplog.at_level(logging.WARNING, logger="musicnft.kinesis"):
        assert reader.read(0, 100) == []
    assert "Kinesis unavailable" in caplog.text
    # AND while its backoff lasts it does not even call
    assert reader.read(0, 100) == []
    # WHEN Kinesis is back and the backoff is over, THEN every record is read, in order
    proxy.up()
    reader._quiet_until = 0.0
    assert [r.data for r in reader.read(0, 100)] == [f"r{i}".encode() for i in range(5)]


def test_list_shards_waits_for_kinesis_to_come_back(proxy: FaultProxy) -> None:
    kinesis = kinesis_client(proxy.endpoint)
    proxy.down()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            proxy.up()

    shards = with_outage_retries(
        "ListShards", lambda: kinesis.list_shards(StreamName=STREAM), sleep=sleep
    )
    assert len(shards["Shards"]) == 1 and waits == [1.0, 2.0]


def test_a_request_fault_is_raised_at_once(proxy: FaultProxy) -> None:
    kinesis = kinesis_client(proxy.endpoint)
    start = time.monotonic()
    with pytest.raises(Exception, match="ResourceNotFound"):
        with_outage_retries("ListShards", lambda: kinesis.list_shards(StreamName="missing"))
    assert time.monotonic() - start < 5
