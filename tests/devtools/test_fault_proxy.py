"""The chaos run's fault proxy in front of moto server: Kinesis throttling is record by record
inside a 200 (the refused records are never written), an outage refuses Kinesis calls only, and
S3 on the same endpoint passes untouched."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from musicnft.devtools.fault_proxy import (
    FaultProxy,
    kinesis_request,
    kinesis_throttled,
    kinesis_unavailable,
)
from tests.support.aws import client, moto_server, read_stream

STREAM = "chaos-proxy"


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with moto_server() as url:
        client("kinesis", url).create_stream(StreamName=STREAM, ShardCount=1)
        client("s3", url).create_bucket(Bucket="lake")
        p = FaultProxy(url, kinesis_request, kinesis_unavailable, kinesis_throttled, seed=1)
        try:
            yield p
        finally:
            p.close()


def test_throttled_put_records_are_refused_one_by_one_and_never_written(proxy: FaultProxy) -> None:
    kinesis = client("kinesis", proxy.endpoint)
    # GIVEN half of the records throttled
    proxy.throttle(0.5)
    records = [{"Data": f"r{i}".encode(), "PartitionKey": f"k{i}"} for i in range(40)]
    # WHEN 40 records are put in one call
    answer = kinesis.put_records(StreamName=STREAM, Records=records)
    # THEN the call succeeds, naming each refused record as Kinesis does, in order
    failed = [i for i, r in enumerate(answer["Records"]) if "ErrorCode" in r]
    assert answer["FailedRecordCount"] == len(failed) == proxy.throttled
    assert 0 < len(failed) < 40
    assert {answer["Records"][i]["ErrorCode"] for i in failed} == {
        "ProvisionedThroughputExceededException"
    }
    # AND exactly the accepted ones are on the stream
    proxy.throttle(0.0)
    on_stream = [data for shard in read_stream(kinesis, STREAM).values() for _, data in shard]
    assert sorted(on_stream) == sorted(r["Data"] for i, r in enumerate(records) if i not in failed)


def test_an_outage_refuses_kinesis_calls_and_lets_s3_through(proxy: FaultProxy) -> None:
    no_retries = Config(retries={"max_attempts": 1, "mode": "standard"})
    kinesis = boto3.client(
        "kinesis", endpoint_url=proxy.endpoint, region_name="us-east-1", config=no_retries
    )
    s3 = client("s3", proxy.endpoint)
    # WHEN Kinesis is down
    proxy.down()
    # THEN its calls get a 503 and S3 on the same endpoint still works
    with pytest.raises(ClientError) as failure:
        kinesis.put_record(StreamName=STREAM, Data=b"x", PartitionKey="k")
    assert failure.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    refused = proxy.refused
    assert refused >= 1
    s3.put_object(Bucket="lake", Key="raw/a.parquet", Body=b"data")
    assert s3.get_object(Bucket="lake", Key="raw/a.parquet")["Body"].read() == b"data"
    assert proxy.refused == refused  # S3 calls were not refused
    # AND once up again, Kinesis answers
    proxy.up()
    kinesis.put_record(StreamName=STREAM, Data=b"x", PartitionKey="k")
