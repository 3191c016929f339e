"""`musicnft`: run each part of the embedded hot path alone or all together, and look inside.

Every command reads its configuration from the environment (see the README) and accepts
`--data-dir` to override `MUSICNFT_DATA_DIR`. Long-running commands stop cleanly on Ctrl-C or
SIGTERM: they flush what they hold, and `deliver`/`consume` first drain what is in the stream.

One module per command group, each adding its own subcommands (`register`): `pipeline` (produce,
deliver, consume, run), `query` (status, sql), `backfill`, `dashboard`, `xrules`, `bigquery`,
`schema`, `sample`, `cost`, `sales`, `spark`; `common` holds what they share.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from musicnft.app.cli import (
    backfill,
    bigquery,
    cost,
    dashboard,
    deletions,
    model,
    pipeline,
    query,
    redrive,
    sales,
    sample,
    schema,
    spark,
    xrules,
)
from musicnft.devtools.sample import SAMPLE_PATH  # re-exported: tests import it from here
from musicnft.local.lean_imports import keep_out
from musicnft.logs import setup_logging
from musicnft.settings import ConfigError, Settings

__all__ = ["SAMPLE_PATH", "build_parser", "main"]

# Commands whose process never makes a DataFrame: pandas, which pyarrow and DuckDB import by
# themselves when it is installed (~30-55 MB resident, ~0.3 s of CPU to import: pyarrow on its
# first `pa.array` of Python values, DuckDB on its first query with parameters), is kept out of
# them when they run as a program (musicnft.local.lean_imports; issue #14 item 9). Only the
# dashboard (Streamlit), the Spark job (pandas UDFs) and the model (scikit-learn) keep it; the
# suite starts these others some 250 times.
WITHOUT_PANDAS = frozenset(
    {
        "produce", "deliver", "consume", "run", "status", "sql", "backfill", "x-rules",
        "bigquery", "schema", "sample", "cost", "redrive", "sales", "forget", "compliance",
        "deletions",
    }
)  # fmt: skip

# In `musicnft --help` order.
GROUPS = (
    pipeline,
    query,
    backfill,
    dashboard,
    xrules,
    bigquery,
    schema,
    sample,
    cost,
    redrive,
    sales,
    model,
    deletions,
    spark,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musicnft",
        description="musicnft: the music-NFT social stream pipeline (embedded profile).",
        epilog="Run 'musicnft COMMAND --help' for each command's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def _log_level() -> str:
    """MUSICNFT_LOG_LEVEL via the settings; INFO when the settings are invalid (the command that
    reads them reports the error)."""
    try:
        return Settings.from_env().log_level
    except ConfigError:
        return "INFO"


def _third_party_log_level() -> str | None:
    """MUSICNFT_THIRD_PARTY_LOG_LEVEL via the settings: None (= WARNING) unless opted in."""
    try:
        return Settings.from_env().third_party_log_level or None
    except ConfigError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging(_log_level(), _third_party_log_level())
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None and args.command in WITHOUT_PANDAS:  # this process's own command line
        keep_out("pandas")
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # (a reader gone away shows here, not in Python's flush at exit)
        return code
    except ConfigError as exc:
        print(f"musicnft {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_went_away()


def _reader_went_away() -> int:
    """Our stdout's reader closed the pipe (`musicnft cost | head`): stop quietly, as `cat`
    would, instead of a traceback. What is left buffered goes nowhere (so that Python's own flush
    at exit cannot fail again), and the status is the shell's for a SIGPIPE death: 128 + 13."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + signal.SIGPIPE
