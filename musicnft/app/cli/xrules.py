"""`x-rules sync`: make the X filtered-stream rules match the tracked keywords."""

from __future__ import annotations

import argparse

from musicnft.app.cli.common import Subparsers, data_dir_option, settings_from, x_token
from musicnft.settings import ConfigError


def cmd_x_rules(args: argparse.Namespace) -> int:
    from producer.x_stream import XApi, XError, sync_rules

    settings = settings_from(args)
    try:
        diff = sync_rules(
            XApi(settings.x_api_base, x_token(settings, args.bearer_token_file)),
            list(settings.keywords),
            args.dry_run,
        )
    except XError as exc:
        raise ConfigError(str(exc)) from None
    verb = "would" if args.dry_run else "did"
    for rule in diff.add:
        print(f"{verb} add    {rule['tag']}: {rule['value']}")
    for rule in diff.delete:
        print(f"{verb} delete {rule.get('tag')}: {rule.get('value')} (id {rule.get('id')})")
    if not diff.add and not diff.delete:
        print("rules already in sync")
    return 0


def register(sub: Subparsers) -> None:
    common = data_dir_option()
    p = sub.add_parser("x-rules", parents=[common], help="manage the X filtered-stream rules")
    x_sub = p.add_subparsers(dest="x_rules_command", required=True, metavar="ACTION")
    q = x_sub.add_parser(
        "sync",
        parents=[common],
        help="make the rules match the tracked keywords (add missing, delete stale ones we own)",
    )
    q.add_argument("--dry-run", action="store_true", help="show the changes without making them")
    q.add_argument("--x-api-base", metavar="URL", help="API host (default $MUSICNFT_X_API_BASE)")
    q.add_argument("--bearer-token-file", metavar="PATH", help="read the bearer token from a file")
    q.set_defaults(func=cmd_x_rules)
