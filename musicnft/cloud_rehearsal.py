"""`make demo-cloud`: the cloud profile end to end on this machine, against moto server.

Starts moto server on 127.0.0.1 (Kinesis and S3 over real HTTP), creates the stream and the lake
bucket, and runs the same supervised pipeline as `make demo` with MUSICNFT_PROFILE=cloud: the
producer puts on Kinesis (spooling if it cannot), the consumer reads Kinesis as Lambda's event
source would, and the delivery loop stands in for Firehose (moto's Firehose delivers nothing),
writing Parquet to the bucket in Firehose's key layout for the Dagster sensor.
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
    from musicnft.cli import main as cli_main

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
    try:
        return cli_main(run)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
