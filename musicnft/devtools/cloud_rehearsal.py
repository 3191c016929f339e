"""`make demo-cloud`: the cloud profile end to end on this machine, against moto server and the
BigQuery emulator.

Starts moto server on 127.0.0.1 (Kinesis and S3 over real HTTP) and bqemulator (BigQuery's REST
API), creates the stream, the lake bucket and the warehouse (`musicnft bigquery migrate`), and runs
the same supervised pipeline as `make demo` with MUSICNFT_PROFILE=cloud: the producer puts on
Kinesis (spooling if it cannot), the consumer reads Kinesis as Lambda's event source would and
streams into BigQuery, and the delivery loop stands in for Firehose (moto's Firehose delivers
nothing), writing Parquet to the bucket in Firehose's key layout for the Dagster sensor, whose
window assets write the aggregate tables to BigQuery.
"""

from __future__ import annotations

import argparse
import os
import sys

from musicnft.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo-cloud", description=__doc__)
    parser.add_argument("--seconds", type=float, help="stop by itself after N seconds")
    parser.add_argument("--speed", default="300", help="replay speed (default 300)")
    parser.add_argument("--shards", type=int, default=2, help="Kinesis shards (default 2)")
    parser.add_argument("--dagster-port", type=int, default=3000)
    parser.add_argument("--dashboard-port", type=int, default=8501)
    args = parser.parse_args(argv)
    setup_logging()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto server's access log

    import boto3
    from moto.server import ThreadedMotoServer

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    stream, bucket = "musicnft-posts", "musicnft-lake"
    boto3.client("kinesis", endpoint_url=endpoint).create_stream(
        StreamName=stream, ShardCount=args.shards
    )
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    os.environ.update(
        MUSICNFT_PROFILE="cloud",
        MUSICNFT_AWS_ENDPOINT_URL=endpoint,
        MUSICNFT_S3_BUCKET=bucket,
        MUSICNFT_STREAM_NAME=stream,
        MUSICNFT_DATA_DIR=os.environ.get("MUSICNFT_DATA_DIR", "data/cloud"),
    )
    print(
        f"moto server (Kinesis, S3) at {endpoint}; stream {stream}, bucket {bucket}",
        file=sys.stderr,
    )
    from musicnft.app.cli import main as cli_main

    run = ["run", "--fresh", "--speed", args.speed, "--restamp", "--dagster"]
    run += [
        "--dagster-port",
        str(args.dagster_port),
        "--dashboard",
        "--dashboard-port",
        str(args.dashboard_port),
    ]
    if args.seconds:
        run += ["--seconds", str(args.seconds)]
    from musicnft.adapters.bigquery.migrate import migrate
    from musicnft.adapters.bigquery.warehouse import bigquery_client
    from musicnft.devtools.bq_emulator import PROJECT, bigquery_emulator

    try:
        with bigquery_emulator() as bq_endpoint:
            dataset = "musicnft"
            migrate(bigquery_client(PROJECT, endpoint=bq_endpoint), dataset)
            os.environ.update(
                MUSICNFT_WAREHOUSE="bigquery",
                MUSICNFT_BIGQUERY_PROJECT=PROJECT,
                MUSICNFT_BIGQUERY_DATASET=dataset,
                MUSICNFT_BIGQUERY_ENDPOINT=bq_endpoint,
            )
            print(
                f"BigQuery emulator at {bq_endpoint}; dataset {PROJECT}.{dataset} migrated",
                file=sys.stderr,
            )
            return cli_main(run)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
