"""The scoring job's options on a command line, shared by `musicnft spark score` and the
spark-submit entry point (`entrypoint.py`, also what EMR Serverless runs), so both spell and check
them alike. argparse only: the CLI imports it at start-up, before anything of Spark's."""

from __future__ import annotations

import argparse

DEFAULT_MAX_FILES_PER_TRIGGER = 50  # raw/ files per micro-batch
DEFAULT_TRIGGER_SECONDS = 30.0  # the processing-time trigger without --available-now


def positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {raw!r}")
    return value


def positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {raw!r}")
    return value


def add_job_arguments(p: argparse.ArgumentParser) -> None:
    """--available-now, --rescore, --model, --trigger-seconds, --max-files-per-trigger."""
    p.add_argument(
        "--available-now",
        action="store_true",
        help="process what is in raw/ now (in several batches), then stop (default: keep running)",
    )
    p.add_argument(
        "--rescore",
        action="store_true",
        help="re-score all history into a new output version, scored/_versions/V/",
    )
    p.add_argument("--model", metavar="VERSION", help="model version (default: the promoted one)")
    p.add_argument(
        "--trigger-seconds",
        type=positive_float,
        default=DEFAULT_TRIGGER_SECONDS,
        metavar="N",
        help=f"micro-batch interval without --available-now (default {DEFAULT_TRIGGER_SECONDS:g})",
    )
    p.add_argument(
        "--max-files-per-trigger",
        type=positive_int,
        default=DEFAULT_MAX_FILES_PER_TRIGGER,
        metavar="N",
        help=f"raw files per micro-batch (default {DEFAULT_MAX_FILES_PER_TRIGGER})",
    )
