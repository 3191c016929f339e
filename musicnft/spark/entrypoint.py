"""The job's script: `spark-submit entrypoint.py --lake-root URI [...]` (EMR Serverless submits
this same file) or `python -m musicnft.spark.entrypoint ...`.

Exit codes: 0 success, 2 bad arguments, 1 the job failed. Ends with one summary line on stdout.
Imports only the job's own modules (the `musicnft` zip shipped to EMR Serverless carries no
settings, adapters or cloud SDKs for it to need).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

if __package__ in (None, ""):  # run as a file by spark-submit: the package is on sys.path (zip)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(__file__))))

from musicnft.spark.arguments import add_job_arguments
from musicnft.spark.job import (
    BatchProgress,
    ScoreJobOptions,
    ScoreJobResult,
    run_score_job,
)
from musicnft.stop_event import StopEvent

log = logging.getLogger("musicnft.spark")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own exit code for bad usage is 2
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="musicnft-spark-score",
        description="Score the lake's raw/ posts with VADER and the promoted model into scored/.",
    )
    p.add_argument(
        "--lake-root",
        required=True,
        metavar="URI",
        help="the lake root: a local directory or s3://bucket[/prefix]",
    )
    add_job_arguments(p)
    p.add_argument("--master", help="Spark master when not set by spark-submit (e.g. local[2])")
    return p


def options_from(args: argparse.Namespace) -> ScoreJobOptions:
    return ScoreJobOptions(
        lake_root=args.lake_root,
        available_now=args.available_now,
        rescore=args.rescore,
        model_version=args.model,
        trigger_seconds=args.trigger_seconds,
        max_files_per_trigger=args.max_files_per_trigger,
    )


def summary(result: ScoreJobResult) -> str:
    return (
        f"spark score: {result.rows_written} rows in {result.batches} batches "
        f"({result.input_rows} read, {result.dropped_late} dropped as late, "
        f"{len(result.quarantined)} files quarantined) -> {result.output_path} "
        f"(model {result.model_version or 'none'})"
    )


def stop_on_signals() -> threading.Event:
    """SIGINT/SIGTERM ask the query to stop cleanly (a second one exits at once). A `StopEvent`:
    a `threading.Event` set from the handler could deadlock the main thread waiting on it."""
    stop = StopEvent()

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise SystemExit(130)
        log.info("%s received: stopping the query", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
    return stop


def get_session(app_name: str = "musicnft-spark-score", master: str | None = None) -> Any:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    # py4j logs each callback from the JVM at INFO ("Received command c on object id p0"):
    # noise beside the job's own one line per batch
    logging.getLogger("py4j").setLevel(logging.WARNING)

    # one summary line per batch (the job's own) instead of Spark's console progress bar
    builder = SparkSession.builder.appName(app_name).config("spark.ui.showConsoleProgress", "false")
    if master:
        builder = builder.master(master)
    return builder.getOrCreate()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    options = options_from(args)
    stop = stop_on_signals()

    def progress(b: BatchProgress) -> None:
        print(
            f"batch {b.batch_id}: {b.input_rows} read, {b.rows_written} written, "
            f"{b.dropped_late} late, {b.duration_ms} ms",
            file=sys.stderr,
            flush=True,
        )

    try:
        spark = get_session(master=args.master)
        result = run_score_job(spark, options, stop=stop, on_batch=progress)
    except (ValueError, FileNotFoundError) as exc:
        print(f"spark score failed: {exc}", file=sys.stderr)
        print("spark score: FAILED", flush=True)
        return 1
    except Exception as exc:
        log.exception("spark score failed")
        print(f"spark score: FAILED ({type(exc).__name__})", flush=True)
        return 1
    print(summary(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
