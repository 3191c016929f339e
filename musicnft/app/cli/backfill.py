"""`backfill`: materialize every window in a range from the lake, as a Dagster backfill.

It indexes lake files the drop sensor has not seen, then launches a Dagster backfill of the day
partitions holding the range (narrowed to its windows by a run tag) through a webserver's GraphQL
API, follows it (a progress bar on a terminal, log lines otherwise) and exits with its outcome:
1 when a run or a check failed. The webserver is `--dagster-url`, or the one a running `dagster
dev` serves on this instance (http://127.0.0.1:3000), or a `dagster dev` this command starts on
the instance at DAGSTER_HOME (default `$MUSICNFT_DATA_DIR/dagster`) for the backfill's duration.
`--no-dagster` materializes the windows in this process instead, recording nothing in Dagster.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from musicnft import wiring
from musicnft.app.cli.common import Subparsers, data_dir_option, settings_from
from musicnft.settings import ConfigError, Settings

if TYPE_CHECKING:
    from musicnft_dagster.backfill import BackfillState

log = logging.getLogger("musicnft.backfill")
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # both stop their children (code servers) on SIGINT
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def _dagster(settings: Settings, url: str | None) -> Iterator[tuple[str, Callable[[], None]]]:
    """(URL of a webserver serving the instance at settings.dagster_home, a function to call once
    the backfill is launched). The webserver is the one given, the running `dagster dev`'s, or
    one started here with its daemon and stopped afterwards; then the daemon starts only once the
    backfill exists, so the drop sensor's first tick waits for it instead of running the same
    windows."""
    from musicnft.app.processes import REPO_ROOT, dagster_env
    from musicnft.app.processes import WORKSPACE as workspace
    from musicnft_dagster.backfill import WebserverClient, live_daemon
    from musicnft_dagster.recording import open_instance

    assert settings.dagster_home is not None
    if (
        url is None
        and live_daemon(open_instance(settings.dagster_home))
        # a daemon that just stopped (a previous backfill's) leaves a fresh heartbeat behind
        and WebserverClient(DEFAULT_DAGSTER_URL).is_up()
    ):
        url = DEFAULT_DAGSTER_URL
        log.info("a Dagster daemon serves this instance: using %s (--dagster-url to change)", url)
    if url is not None:
        yield url, lambda: None
        return
    bin_dir = Path(sys.executable).parent
    port = _free_port()
    logfile = settings.dagster_home / "backfill-dagster.log"
    procs: list[subprocess.Popen[bytes]] = []

    def start(*cmd: str) -> subprocess.Popen[bytes]:
        with open(logfile, "ab") as out:
            proc = subprocess.Popen(
                list(cmd),
                cwd=REPO_ROOT,
                env=dagster_env(settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append(proc)
        return proc

    def start_daemon() -> None:
        start(str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace))

    web = start(
        str(bin_dir / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)
    )
    log.info("started dagster-webserver on 127.0.0.1:%d for the backfill (log: %s)", port, logfile)
    try:
        here = f"http://127.0.0.1:{port}"
        WebserverClient(here).wait_until_up(180, alive=lambda: web.poll() is None)
        yield here, start_daemon
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _windows(settings: Settings, start: datetime | None, end: datetime | None) -> list[datetime]:
    """Index the lake, then: every window of [start, end), or every window holding posts."""
    from musicnft.batch.backfill import index_lake, windows_with_posts
    from musicnft.contract.windows import window_start, windows_between

    lake, warehouse = wiring.open_lake(settings), wiring.open_warehouse(settings)
    indexed = index_lake(lake, warehouse)
    if indexed:
        log.info("indexed %d new lake file(s)", indexed)
    if start is not None and end is not None:
        return [w for w in windows_between(start, end) if w < end]
    lo = window_start(start) if start else None
    return [
        w
        for w in windows_with_posts(warehouse, lake=lake)
        if (lo is None or w >= lo) and (end is None or w < end)
    ]


def _progress_printer(total: int) -> Callable[[BackfillState], None]:
    from musicnft.batch.backfill import Progress

    bar = Progress(max(total, 1), "backfill")

    def show(state: BackfillState) -> None:
        bar.total = max(state.targeted, 1)
        note = f"{state.status.lower()}, {len(state.runs)} run(s), {state.failed} failed"
        bar.update(min(state.materialized + state.failed, bar.total), note)

    return show


def _dagster_backfill(
    settings: Settings, start: datetime | None, end: datetime | None, url: str | None
) -> int:
    from musicnft.app.supervisor import dagster_home
    from musicnft_dagster.backfill import (
        SUCCEEDED,
        BackfillError,
        WebserverClient,
        follow,
        launch,
        outcome,
        plan_backfill,
    )
    from musicnft_dagster.recording import open_instance

    settings = dataclasses.replace(settings, dagster_home=dagster_home(settings))
    assert settings.dagster_home is not None
    windows = _windows(settings, start, end)
    request = plan_backfill(windows, (start, end) if start and end else None)
    if not request.days:
        print("backfill: no window to materialize (no posts in the lake for that range)")
        return 0
    try:
        with _dagster(settings, url) as (here, launched):
            client = WebserverClient(here)
            backfill_id = launch(client, request)
            launched()
            print(f"backfill {backfill_id}: {request.title}, {here}/runs/b/{backfill_id}")
            final = follow(client, backfill_id, _progress_printer(len(request.days)))
    except BackfillError as exc:
        print(f"backfill: {exc}", file=sys.stderr)
        return 1
    result = outcome(open_instance(settings.dagster_home), final.runs)
    print(
        f"backfill {backfill_id}: {final.status}; {result.days} day(s), {result.windows} "
        f"window(s) materialized, {result.posts:,} posts, {result.sales:,} NFT sales, "
        f"{result.repaired:,} posts_hot rows "
        f"repaired, {len(final.runs)} run(s), {len(result.failed_runs)} failed, "
        f"{len(result.failed_checks)} failed check(s)"
    )
    for line in (result.failed_runs + result.failed_checks)[:20]:
        print(f"  FAILED {line}", file=sys.stderr)
    if final.error:
        print(f"  {final.error}", file=sys.stderr)
    ok = final.status in SUCCEEDED and not result.failed_runs and not result.failed_checks
    return 0 if ok else 1


def _in_process_backfill(settings: Settings, start: datetime | None, end: datetime | None) -> int:
    """--no-dagster: the same per-window code in this process, nothing recorded in Dagster."""
    from musicnft.batch.backfill import run_backfill

    report = run_backfill(
        wiring.open_lake(settings),
        wiring.open_warehouse(settings),
        [k.lower() for k in settings.keywords],
        start,
        end,
    )
    failed = report.failed
    print(
        f"backfill: {len(report.windows)} window(s) materialized, "
        f"{sum(w.posts.unique_posts for w in report.windows):,} posts, "
        f"{sum(w.sales.sales for w in report.windows if w.sales):,} NFT sales, "
        f"{sum(w.reconciliation.repaired for w in report.windows):,} posts_hot rows repaired, "
        f"{report.indexed_files} new lake file(s) indexed, {len(failed)} with failed checks"
    )
    for o in failed[:20]:
        bad = [name for name, (ok, _) in o.checks.items() if not ok]
        print(f"  FAILED {o.window.isoformat()}: {', '.join(bad)}", file=sys.stderr)
    return 1 if failed else 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from musicnft.batch.backfill import parse_when

    settings = settings_from(args)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the instance's storage migrations
    try:
        start = parse_when(args.start) if args.start else None
        end = parse_when(args.end) if args.end else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if start and end and end <= start:
        raise ConfigError("--end must be after --start")
    if args.no_dagster:
        return _in_process_backfill(settings, start, end)
    return _dagster_backfill(settings, start, end, args.dagster_url)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "backfill",
        parents=[data_dir_option()],
        help="materialize every 15-minute window in a range from the lake (posts, aggregates, "
        "reconciliation, checks) as a Dagster backfill",
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
        help="materialize in this process and do not record the results in the Dagster "
        "instance at $DAGSTER_HOME",
    )
    p.add_argument(
        "--dagster-url",
        metavar="URL",
        help="the Dagster webserver to launch the backfill on (default: the running `dagster "
        f"dev` of this instance at {DEFAULT_DAGSTER_URL}, or one started for the backfill)",
    )
    p.set_defaults(func=cmd_backfill)
