"""`make demo-cloud`: the cloud profile end to end on this machine, against moto server and the
BigQuery emulator.

Starts moto server on 127.0.0.1 (Kinesis and S3 over real HTTP) and bqemulator (BigQuery's REST
API), creates the stream, the lake bucket and the warehouse (`musicnft bigquery migrate`), and runs
the same supervised pipeline as `make demo` with MUSICNFT_PROFILE=cloud: the producer puts on
Kinesis (spooling if it cannot), the consumer reads Kinesis as Lambda's event source would and
streams into BigQuery, and the delivery loop stands in for Firehose (moto's Firehose delivers
nothing), writing Parquet to the bucket in Firehose's key layout for the Dagster sensor, whose
window assets write the aggregate tables to BigQuery. As `make demo` does, it also replays the
seeded NFT sales sample (`musicnft run --sales`: `musicnft sales --source replay`, same speed,
restamped) into the bucket's `sales/` prefix, so the cloud windows include `nft_sales_15m`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from musicnft.app.processes import child_env, stage_command
from musicnft.devtools.moto_state import reset_moto
from musicnft.logs import setup_logging
from musicnft.settings import Settings

# moto accepts any credentials; these never leave this machine.
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def rehearsal_data_dir(settings: Settings) -> Path:
    """The data directory: MUSICNFT_DATA_DIR when it names one; the default gets a `cloud/`
    folder, so the rehearsal never mixes with `make demo`'s data."""
    default = Settings().data_dir
    return default / "cloud" if settings.data_dir == default else settings.data_dir


def run_child(cmd: list[str], env: dict[str, str]) -> int:
    """Run `cmd` in its own session and forward SIGINT/SIGTERM to it (so a first Ctrl-C stops it
    in order and a second one at once, as if it were this process); returns its exit code."""
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)

    def forward(signum: int, _frame: Any) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    code = proc.wait()
    return 130 if code == -signal.SIGINT else code


def run_arguments(args: argparse.Namespace) -> list[str]:
    """The arguments of the `musicnft run` the rehearsal starts: `make demo`'s, sales included."""
    run = ["--fresh", "--speed", args.speed, "--restamp", "--sales", "--dagster"]
    run += [
        "--dagster-port",
        str(args.dagster_port),
        "--dashboard",
        "--dashboard-port",
        str(args.dashboard_port),
    ]
    if args.seconds:
        run += ["--seconds", str(args.seconds)]
    return run


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="make demo-cloud", description=__doc__)
    parser.add_argument("--seconds", type=float, help="stop by itself after N seconds")
    parser.add_argument("--speed", default="300", help="replay speed (default 300)")
    parser.add_argument("--shards", type=int, default=2, help="Kinesis shards (default 2)")
    parser.add_argument("--dagster-port", type=int, default=3000)
    parser.add_argument("--dashboard-port", type=int, default=8501)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    setup_logging(settings.log_level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto server's access log

    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    reset_moto(endpoint)  # a clean state: the process may have run moto before
    stream, bucket = "musicnft-posts", "musicnft-lake"
    credentials = {
        "region_name": AWS_TEST_ENV["AWS_DEFAULT_REGION"],
        "aws_access_key_id": AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
    }
    boto3.client("kinesis", endpoint_url=endpoint, **credentials).create_stream(
        StreamName=stream, ShardCount=args.shards
    )
    boto3.client("s3", endpoint_url=endpoint, **credentials).create_bucket(Bucket=bucket)
    # The pipeline's environment, built here and handed to `musicnft run` (never written into
    # this process's own).
    settings = dataclasses.replace(settings, data_dir=rehearsal_data_dir(settings))
    env = {
        **AWS_TEST_ENV,
        "MUSICNFT_PROFILE": "cloud",
        "MUSICNFT_AWS_ENDPOINT_URL": endpoint,
        "MUSICNFT_S3_BUCKET": bucket,
        "MUSICNFT_STREAM_NAME": stream,
    }
    print(
        f"moto server (Kinesis, S3) at {endpoint}; stream {stream}, bucket {bucket}",
        file=sys.stderr,
    )
    run = run_arguments(args)
    from musicnft.adapters.bigquery.migrate import migrate
    from musicnft.adapters.bigquery.warehouse import bigquery_client
    from musicnft.devtools.bq_emulator import PROJECT, bigquery_emulator

    try:
        with bigquery_emulator() as bq_endpoint:
            dataset = "musicnft"
            migrate(bigquery_client(PROJECT, endpoint=bq_endpoint), dataset)
            env.update(
                MUSICNFT_WAREHOUSE="bigquery",
                MUSICNFT_BIGQUERY_PROJECT=PROJECT,
                MUSICNFT_BIGQUERY_DATASET=dataset,
                MUSICNFT_BIGQUERY_ENDPOINT=bq_endpoint,
            )
            print(
                f"BigQuery emulator at {bq_endpoint}; dataset {PROJECT}.{dataset} migrated",
                file=sys.stderr,
            )
            return run_child(stage_command("run", *run), child_env(settings, **env))
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
