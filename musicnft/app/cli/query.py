"""Looking inside: `status` (counts at every stage) and `sql` (a read-only query)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from typing import Any

from musicnft import wiring
from musicnft.app.cli.common import Subparsers, data_dir_option, settings_from
from musicnft.settings import ConfigError


def cmd_status(args: argparse.Namespace) -> int:
    from musicnft.app.status import collect_status, format_status

    settings = settings_from(args)
    status = collect_status(settings, wiring.open_lake(settings), wiring.open_warehouse(settings))
    print(json.dumps(status, sort_keys=True) if args.json else format_status(status))
    return 0


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat().replace("+00:00", "Z")
    return value


def cmd_sql(args: argparse.Namespace) -> int:
    from musicnft.ports import ReadOnlyQueryError

    warehouse = wiring.open_warehouse(settings_from(args))
    try:
        table = warehouse.query(args.query)
    except ReadOnlyQueryError as exc:
        raise ConfigError(str(exc)) from None
    rows = table.to_pylist()
    if args.json:
        print(
            json.dumps(
                [{k: _json_value(v) for k, v in r.items()} for r in rows], ensure_ascii=False
            )
        )
        return 0
    names = table.column_names
    cells = [[str(_json_value(r[n])) for n in names] for r in rows]
    widths = [max([len(n)] + [min(len(c[i]), 60) for c in cells]) for i, n in enumerate(names)]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for c in cells:
        print("  ".join(v[:60].ljust(w) for v, w in zip(c, widths, strict=True)))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})", file=sys.stderr)
    return 0


def register(sub: Subparsers) -> None:
    common = data_dir_option()
    p = sub.add_parser("status", parents=[common], help="counts at every stage")
    p.add_argument(
        "--json", action="store_true", help="one JSON object (integer counts) for machines"
    )
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "sql", parents=[common], help="run a read-only SQL query on the warehouse tables"
    )
    p.add_argument("query", help="one SELECT over posts_hot, posts, window_metrics_15m, ...")
    p.add_argument("--json", action="store_true", help="print a JSON array of objects")
    p.set_defaults(func=cmd_sql)
