"""`backfill`: materialize every window in a range from the lake, as the Dagster assets would."""

from __future__ import annotations

import argparse
import sys

from musicnft import wiring
from musicnft.app.cli.common import Subparsers, data_dir_option, settings_from
from musicnft.batch.backfill import WindowRecorder
from musicnft.settings import ConfigError, Settings


def _recorder(settings: Settings, no_dagster: bool) -> WindowRecorder | None:
    """Records each window in the Dagster instance at DAGSTER_HOME, when there is one."""
    if no_dagster or settings.dagster_home is None:
        return None
    from musicnft_dagster.recording import dagster_recorder

    return dagster_recorder(settings.dagster_home)


def cmd_backfill(args: argparse.Namespace) -> int:
    from musicnft.batch.backfill import parse_when, run_backfill

    settings = settings_from(args)
    try:
        start = parse_when(args.start) if args.start else None
        end = parse_when(args.end) if args.end else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if start and end and end <= start:
        raise ConfigError("--end must be after --start")
    report = run_backfill(
        wiring.open_lake(settings),
        wiring.open_warehouse(settings),
        [k.lower() for k in settings.keywords],
        start,
        end,
        on_window=_recorder(settings, args.no_dagster),
    )
    failed = report.failed
    print(
        f"backfill: {len(report.windows)} window(s) materialized, "
        f"{sum(w.posts.unique_posts for w in report.windows):,} posts, "
        f"{sum(w.reconciliation.repaired for w in report.windows):,} posts_hot rows repaired, "
        f"{report.indexed_files} new lake file(s) indexed, {len(failed)} with failed checks"
    )
    for outcome in failed[:20]:
        bad = [name for name, (ok, _) in outcome.checks.items() if not ok]
        print(f"  FAILED {outcome.window.isoformat()}: {', '.join(bad)}", file=sys.stderr)
    return 1 if failed else 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "backfill",
        parents=[data_dir_option()],
        help="materialize every 15-minute window in a range from the lake (posts, aggregates, reconciliation, checks)",
    )
    p.add_argument(
        "--start",
        metavar="ISO",
        help="first window (UTC when no zone), e.g. 2021-12-01 or 2021-12-01T06:00",
    )
    p.add_argument("--end", metavar="ISO", help="end of the range (exclusive)")
    p.add_argument(
        "--no-dagster",
        action="store_true",
        help="do not record the results in the Dagster instance at $DAGSTER_HOME",
    )
    p.set_defaults(func=cmd_backfill)
