"""`forget` and `compliance x-sync`: deletions at the source, honoured everywhere (docs/deletions.md)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from musicnft import wiring
from musicnft.app.cli.common import Subparsers, data_dir_option, settings_from, x_token
from musicnft.settings import ConfigError, Settings

ACTION_CHOICES = ("delete", "scrub_geo")


def _rebuilder(settings: Settings, lake: Any, warehouse: Any) -> Any:
    from musicnft.batch import window_pipeline as wp
    from musicnft.batch.backfill import materialize_windows

    def rebuild(windows: list[datetime]) -> None:
        for chunk in wp.chunked(windows):  # each chunk's steps read and write once
            materialize_windows(lake, warehouse, chunk, list(settings.keywords))
            for window in chunk:
                print(f"rebuilt window {window:%Y-%m-%d %H:%M}")

    return rebuild


def _print_report(report: Any, dry_run: bool, as_json: bool) -> None:
    purge = report.purge
    summary = {
        "tombstones": len(report.tombstones),
        "recorded": report.recorded,
        "applied": purge.applied if purge else 0,
        "pending": purge.pending if purge else 0,
        "rows_removed": purge.rows_removed if purge else {},
        "rows_scrubbed": purge.rows_scrubbed if purge else {},
        "files_rewritten": len(purge.files_rewritten) if purge else 0,
        "windows": [w.isoformat() for w in purge.windows] if purge else [],
        "bad_lines": len(report.bad_lines),
        "unknown_actions": len(report.unknown_actions),
        "jobs": report.jobs,
        "ids": report.sources,  # x-sync: ids found per source (posts_hot, posts, lake), sent
        "dry_run": dry_run,
    }
    if as_json:
        print(json.dumps(summary))
        return
    for kind, found in report.sources.items():
        print(
            f"X {kind} ids: posts_hot {found.get('posts_hot', 0)}, posts {found.get('posts', 0)}, "
            f"lake {found.get('lake', 0)} ({found.get('lake_only', 0)} only there, "
            f"{found.get('lake_unreadable', 0)} lake file(s) unreadable); "
            f"{found.get('total', 0)} distinct sent"
        )
    verb = "would forget" if dry_run else "forget"
    for t in report.tombstones[:50] if dry_run else []:
        print(f"{verb} {t.action}: {t.post_id or 'author ' + str(t.author_id)}")
    if dry_run and len(report.tombstones) > 50:
        print(f"… and {len(report.tombstones) - 50} more")
    print(
        f"{summary['tombstones']} tombstone(s), {summary['recorded']} new; applied "
        f"{summary['applied']}, pending {summary['pending']}; removed {summary['rows_removed']}, "
        f"scrubbed {summary['rows_scrubbed']}; {summary['files_rewritten']} lake file(s) "
        f"rewritten; {len(summary['windows'])} window(s) to re-materialize"
    )
    for n, reason in report.bad_lines:
        print(f"line {n}: {reason}", file=sys.stderr)


def cmd_forget(args: argparse.Namespace) -> int:
    from musicnft.app.deletions import forget

    settings = settings_from(args)
    path = Path(args.ids_file)
    if not path.is_file():
        raise ConfigError(f"--ids-file {path}: no such file")
    lake, warehouse = wiring.open_lake(settings), wiring.open_warehouse(settings)
    rebuild = _rebuilder(settings, lake, warehouse) if args.rebuild else None
    report = forget(path, args.action, lake, warehouse, args.dry_run, rebuild)
    _print_report(report, args.dry_run, args.json)
    return 1 if report.bad_lines else 0


def cmd_x_sync(args: argparse.Namespace) -> int:
    from musicnft.adapters.x_compliance import ComplianceApi, ComplianceError
    from musicnft.app.deletions import x_sync

    settings = settings_from(args)
    api = ComplianceApi(settings.x_api_base, x_token(settings, args.bearer_token_file))
    lake, warehouse = wiring.open_lake(settings), wiring.open_warehouse(settings)
    rebuild = _rebuilder(settings, lake, warehouse) if args.rebuild else None
    try:
        report = x_sync(
            api,
            lake,
            warehouse,
            dry_run=args.dry_run,
            poll_seconds=args.poll_seconds,
            timeout_seconds=args.timeout,
            rebuild=rebuild,
        )
    except ComplianceError as exc:
        print(f"musicnft compliance x-sync: {exc}", file=sys.stderr)
        return 1
    _print_report(report, args.dry_run, args.json)
    return 0


def cmd_deletions_blocked(args: argparse.Namespace) -> int:
    from musicnft.batch.deletions import blocked

    settings = settings_from(args)
    lake, warehouse = wiring.open_lake(settings), wiring.open_warehouse(settings)
    found = blocked(lake, warehouse)
    if args.json:
        print(json.dumps({k: {"reason": r, "tombstones": len(t)} for k, (r, t) in found.items()}))
    else:
        for key, (reason, keys) in found.items():
            print(f"{key}: {len(keys)} tombstone(s) wait: {reason}")
        print(f"{len(found)} quarantined lake file(s) block a deletion")
    return 1 if found else 0


def cmd_deletions_redrive(args: argparse.Namespace) -> int:
    from musicnft.app.deletions import redrive_quarantined

    settings = settings_from(args)
    lake, warehouse = wiring.open_lake(settings), wiring.open_warehouse(settings)
    rebuild = _rebuilder(settings, lake, warehouse) if args.rebuild else None
    report = redrive_quarantined(lake, warehouse, args.key or (), rebuild)
    purge = report.purge
    summary = {
        "released": report.released,
        "still_quarantined": sorted(report.still_quarantined),
        "blocked": report.blocked,
        "unknown": report.unknown,
        "files_rewritten": len(purge.files_rewritten) if purge else 0,
        "rows_removed": purge.rows_removed if purge else {},
        "windows": [w.isoformat() for w in report.windows],
    }
    if args.json:
        print(json.dumps(summary))
    else:
        for key in report.released:
            print(f"released from quarantine: {key}")
        for key, reason in report.blocked.items():
            print(f"still blocks a deletion: {key}: {reason}", file=sys.stderr)
        for key in report.unknown:
            print(f"not a quarantined raw/ or scored/ file: {key}", file=sys.stderr)
        print(
            f"{len(report.released)} released, {len(report.still_quarantined)} still "
            f"quarantined, {len(report.blocked)} blocking a deletion; "
            f"{summary['files_rewritten']} lake file(s) rewritten, removed "
            f"{summary['rows_removed']}; {len(report.windows)} window(s) to re-materialize"
        )
    return 0 if report.ok else 1


_DELETIONS_HELP = """\
Deletions that wait on quarantined lake files (docs/deletions.md).

A raw/ or scored/ file the windows set aside as unreadable (`lake_quarantine`) is rewritten by
every purge pass the lenient way (whole file, no column checks). One that cannot even be read
blocks the deletions of the posts it holds (or may hold): `musicnft status --json` counts them in
`deleted_pending` and names the files in `deleted_blocked`. Repair or replace the file (e.g. from
a backup or the stream's copy), then `redrive`: files the windows can read again leave
quarantine and are indexed, one purge pass removes the deleted posts from them, and what still
blocks is reported (exit 1).
"""


def register(sub: Subparsers) -> None:
    common = data_dir_option()
    f = sub.add_parser(
        "forget",
        parents=[common],
        help="delete posts everywhere (lake, warehouse, aggregates) by id; idempotent",
    )
    f.add_argument(
        "--ids-file",
        required=True,
        metavar="PATH",
        help="one post id a line as X or Bluesky write them (x:/bsky: prefix optional)",
    )
    f.add_argument("--action", choices=ACTION_CHOICES, default="delete", help="default delete")
    f.add_argument("--dry-run", action="store_true", help="list what would be forgotten")
    f.add_argument(
        "--rebuild",
        action="store_true",
        help="re-materialize the affected windows here (default: Dagster's deletions sensor)",
    )
    f.add_argument("--json", action="store_true", help="one JSON summary line")
    f.set_defaults(func=cmd_forget)

    c = sub.add_parser("compliance", parents=[common], help="X batch compliance")
    c_sub = c.add_subparsers(dest="compliance_command", required=True, metavar="ACTION")
    x = c_sub.add_parser(
        "x-sync",
        parents=[common],
        help="run X batch compliance jobs over the X posts and users stored anywhere "
        "(posts_hot, posts, the lake's raw/ files); apply the results",
    )
    x.add_argument("--dry-run", action="store_true", help="run the jobs, list, change nothing")
    x.add_argument("--x-api-base", metavar="URL", help="API host (default $MUSICNFT_X_API_BASE)")
    x.add_argument("--bearer-token-file", metavar="PATH", help="read the bearer token from a file")
    x.add_argument("--poll-seconds", type=float, default=10.0, help="job polling interval")
    x.add_argument("--timeout", type=float, default=3600.0, help="give up on a job after this")
    x.add_argument("--rebuild", action="store_true", help="re-materialize affected windows here")
    x.add_argument("--json", action="store_true", help="one JSON summary line")
    x.set_defaults(func=cmd_x_sync)

    d = sub.add_parser(
        "deletions",
        parents=[common],
        help="deletions that wait on quarantined lake files: list them, redrive repaired files",
        description=_DELETIONS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d_sub = d.add_subparsers(dest="deletions_command", required=True, metavar="ACTION")
    b = d_sub.add_parser(
        "blocked", parents=[common], help="quarantined files that block a deletion (exit 1 if any)"
    )
    b.add_argument("--json", action="store_true", help="one JSON object")
    b.set_defaults(func=cmd_deletions_blocked)
    r = d_sub.add_parser(
        "redrive",
        parents=[common],
        help="put repaired quarantined files back in play and purge them; report what blocks",
    )
    r.add_argument("--key", action="append", metavar="KEY", help="only this lake key (repeatable)")
    r.add_argument("--rebuild", action="store_true", help="re-materialize affected windows here")
    r.add_argument("--json", action="store_true", help="one JSON summary line")
    r.set_defaults(func=cmd_deletions_redrive)
