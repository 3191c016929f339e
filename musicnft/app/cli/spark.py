"""`musicnft spark score`: the Spark scoring job (issue 16) on this machine.

Runs `musicnft.spark.job.run_score_job` in process on `MUSICNFT_SPARK_MASTER` (default
`local[*]`) over the configured lake (the data directory's `lake/`, or the S3 bucket), one line
per micro-batch on stderr and a summary line at the end. Exit codes (the README's): 0 done, 1 the
job failed, 2 bad arguments or configuration, 130 a second Ctrl-C/SIGTERM. The first Ctrl-C or
SIGTERM stops the query cleanly (the batch in flight is redone, exactly once, on the next start).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from musicnft.app.cli.common import Subparsers, data_dir_option, settings_from, stop_on_signals
from musicnft.settings import Settings
from musicnft.spark.arguments import add_job_arguments

log = logging.getLogger("musicnft.cli")


def lake_root(settings: Settings) -> str:
    """The lake root the job reads and writes: `s3://<bucket>` or the local lake directory."""
    if settings.lake_backend == "s3":
        return f"s3://{settings.s3_bucket}"
    return str(settings.lake_dir.resolve())


def cmd_score(args: argparse.Namespace) -> int:
    from musicnft.spark.entrypoint import get_session, summary
    from musicnft.spark.job import (
        BatchProgress,
        ScoreJobOptions,
        run_score_job,
    )

    settings = settings_from(args)
    options = ScoreJobOptions(
        lake_root=lake_root(settings),
        available_now=args.available_now,
        rescore=args.rescore,
        model_version=args.model,
        trigger_seconds=args.trigger_seconds,
        max_files_per_trigger=args.max_files_per_trigger,
    )
    os.environ["PYSPARK_PYTHON"] = sys.executable  # executors run this venv's Python
    stop = stop_on_signals()

    def progress(b: BatchProgress) -> None:
        print(
            f"batch {b.batch_id}: {b.input_rows} posts read, {b.rows_written} scored, "
            f"{b.dropped_late} dropped as late ({b.duration_ms / 1000:.1f} s)",
            file=sys.stderr,
            flush=True,
        )

    print(
        f"musicnft spark score: {options.lake_root} on {settings.spark_master}"
        + (" (re-score)" if args.rescore else ""),
        file=sys.stderr,
        flush=True,
    )
    try:
        spark = get_session(master=settings.spark_master)
    except Exception as exc:  # no Java, a bad master URL
        print(
            f"musicnft spark score: Spark did not start ({exc}); is Java 17 installed "
            "(`make java`)?",
            file=sys.stderr,
        )
        return 1
    try:
        result = run_score_job(spark, options, stop=stop, on_batch=progress)
    except (ValueError, FileNotFoundError) as exc:
        print(f"musicnft spark score: {exc}", file=sys.stderr)
        return 1
    except Exception:
        log.exception("the Spark scoring job failed")
        return 1
    print(summary(result), flush=True)
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("spark", help="the Spark scoring job over the lake (scored/)")
    ssub = p.add_subparsers(dest="spark_command", required=True, metavar="SUBCOMMAND")
    s = ssub.add_parser(
        "score",
        parents=[data_dir_option()],
        help="score raw/ posts with VADER and the promoted model into scored/ (Structured "
        "Streaming; docs/spark.md)",
    )
    add_job_arguments(s)
    s.set_defaults(func=cmd_score)
