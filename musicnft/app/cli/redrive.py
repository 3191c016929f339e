"""`redrive`: replay the consumer Lambda's on-failure destination (SQS) into the warehouse
(`musicnft.app.redrive`)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from musicnft.app.cli.common import Subparsers, data_dir_option, settings_from
from musicnft.settings import ConfigError

_HELP = """\
After an outage longer than the Kinesis event source's retries (3, or one hour), Lambda sends the
metadata of each batch it gave up on (shard, first and last sequence number) to its on-failure SQS
queue. This command reads those messages, fetches each batch's records from the stream while it
still holds them (24 h by default), runs them through the consumer's handler into the configured
warehouse, and deletes a message only once every record of it is stored or dead-lettered.

Messages that are not on-failure records are copied to <data dir>/dead_letter/redrive.jsonl and
deleted. Batches the stream no longer holds are reported and deleted: the window reconciliation
repairs posts_hot from the lake for those posts.

Exit codes: 0 every message replayed (or nothing to do); 1 some records still failed (their
messages stay on the queue; run again once the warehouse is back); 2 bad configuration.
"""


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "redrive",
        parents=[data_dir_option()],
        help="replay the consumer Lambda's on-failure queue (SQS) into the warehouse",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--queue-url",
        help="the on-failure queue (default: $MUSICNFT_REDRIVE_QUEUE_URL; the stack's "
        "DeadLetterQueue output)",
    )
    p.add_argument(
        "--max-messages",
        type=int,
        default=1000,
        metavar="N",
        help="stop after N messages (default 1000)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be replayed; change nothing",
    )
    p.set_defaults(func=cmd_redrive)


def cmd_redrive(args: argparse.Namespace) -> int:
    from musicnft import wiring
    from musicnft.adapters.kinesis_stream import kinesis_client
    from musicnft.app.redrive import redrive
    from musicnft.hotpath.consumer import handle_kinesis_event

    settings = settings_from(args)
    if args.queue_url:
        settings = dataclasses.replace(settings, redrive_queue_url=args.queue_url)
    if not settings.redrive_queue_url:
        raise ConfigError("no queue: pass --queue-url or set MUSICNFT_REDRIVE_QUEUE_URL")
    if args.max_messages < 1:
        raise ConfigError(f"--max-messages must be at least 1, got {args.max_messages}")
    import boto3

    sqs = boto3.client("sqs", endpoint_url=settings.aws_endpoint_url)
    warehouse = wiring.open_warehouse(settings)
    report = redrive(
        sqs,
        settings.redrive_queue_url,
        kinesis_client(settings.aws_endpoint_url),
        settings.stream_name,
        lambda event: handle_kinesis_event(event, warehouse),
        settings.dead_letter_dir,
        max_messages=args.max_messages,
        dry_run=args.dry_run,
    )
    for line in report.details:
        print(line)
    print(
        f"redrive{' (dry run)' if args.dry_run else ''}: {report.messages} message(s), "
        f"{report.replayed} record(s) replayed, {report.done} done, {report.kept} kept "
        f"(records still failing), {report.expired} past the stream's retention, "
        f"{report.malformed} malformed (dead-lettered)",
        file=sys.stderr,
    )
    return 0 if report.ok else 1
