"""`bigquery ddl|migrate`: the BigQuery warehouse's tables and views."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from musicnft import wiring
from musicnft.app.cli.common import Subparsers, settings_from
from musicnft.settings import ConfigError, Settings


def _bigquery_settings(args: argparse.Namespace) -> Settings:
    settings = settings_from(args)
    for flag, name in (
        ("project", "bigquery_project"),
        ("dataset", "bigquery_dataset"),
        ("location", "bigquery_location"),
        ("endpoint", "bigquery_endpoint"),
    ):
        value = getattr(args, flag, None)
        if value:
            settings = dataclasses.replace(settings, **{name: value})
    if not settings.bigquery_dataset.replace("_", "").isalnum():
        raise ConfigError(
            f"--dataset must be letters, digits or '_', got {settings.bigquery_dataset!r}"
        )
    return settings


def cmd_bigquery_ddl(args: argparse.Namespace) -> int:
    from musicnft.adapters.bigquery.ddl import render_tables

    dataset = _bigquery_settings(args).bigquery_dataset
    if args.views:
        from musicnft.adapters.bigquery.looker_views import render_views

        print(render_views(dataset), end="")
    else:
        print(render_tables(dataset), end="")
    return 0


def cmd_bigquery_migrate(args: argparse.Namespace) -> int:
    from musicnft.adapters.bigquery.migrate import MigrationError, migrate

    settings = _bigquery_settings(args)
    if not settings.bigquery_project:
        raise ConfigError("set MUSICNFT_BIGQUERY_PROJECT or pass --project")
    client = wiring.bigquery_client_for(settings)
    target = f"{settings.bigquery_project}.{settings.bigquery_dataset}"
    where = settings.bigquery_endpoint or "BigQuery"
    print(f"migrating {target} ({settings.bigquery_location}) on {where}", file=sys.stderr)
    try:
        report = migrate(
            client, settings.bigquery_dataset, settings.bigquery_location, dry_run=args.dry_run
        )
    except MigrationError as exc:
        print(f"musicnft bigquery migrate: error: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        for statement in report.statements:
            print(statement.rstrip(";") + ";\n")
    for line in report.lines():
        print(("would: " if args.dry_run else "") + line, file=sys.stderr)
    return 0


def _bigquery_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("--project", help="Google Cloud project (default $MUSICNFT_BIGQUERY_PROJECT)")
    q.add_argument("--dataset", help="dataset (default $MUSICNFT_BIGQUERY_DATASET or musicnft)")
    q.add_argument(
        "--location", help="dataset location (default $MUSICNFT_BIGQUERY_LOCATION or US)"
    )
    q.add_argument(
        "--endpoint",
        metavar="URL",
        help="API endpoint, e.g. a local emulator (default $MUSICNFT_BIGQUERY_ENDPOINT or Google)",
    )


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "bigquery",
        help="the BigQuery warehouse: print its DDL, create or migrate its tables and views",
    )
    bq_sub = p.add_subparsers(dest="bigquery_command", required=True, metavar="ACTION")
    q = bq_sub.add_parser(
        "migrate",
        help="create the dataset, tables and Looker Studio views, or add what the contract gained "
        "(idempotent; never drops anything)",
    )
    _bigquery_options(q)
    q.add_argument("--dry-run", action="store_true", help="print the statements, change nothing")
    q.set_defaults(func=cmd_bigquery_migrate)
    q = bq_sub.add_parser("ddl", help="print the tables' DDL (infra/bigquery/tables.sql)")
    _bigquery_options(q)
    q.add_argument("--views", action="store_true", help="print the Looker Studio views instead")
    q.set_defaults(func=cmd_bigquery_ddl)
