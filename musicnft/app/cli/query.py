"""Looking inside: `status` (counts at every stage; `--check`: healthy or not) and `sql` (one
read-only query)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from musicnft import wiring
from musicnft.app.cli.common import Subparsers, data_dir_option, settings_from
from musicnft.settings import ConfigError, Settings

CHECK_EPILOG = """\
--check prints one line and exits 0 when healthy, 1 when not (each reason named) or when the
status cannot be read, 2 on a configuration error. It is the probe for a systemd watchdog or
timer, a cron job or a CloudWatch alarm. Thresholds (each "more than N" is unhealthy):
  --max-lag N                  records not yet delivered to the lake or not yet consumed
                               (each stage; local stream only: Kinesis lag is CloudWatch's
                               IteratorAge) (default 10000)
  --max-dead-letter-growth N   new dead-letter entries (producer, consumer, lake errors/) in the
                               last --dead-letter-window seconds (default 100 in 3600)
  --max-spool N                records waiting in the producer's spool, i.e. the stream has been
                               unreachable (default 1000)
  --max-quarantined N          lake files set aside as unreadable, status key lake_quarantined
                               (and, checked separately, spark_quarantined_files: raw drops the
                               Spark scoring job quarantined) (default 0)
  --max-age SECONDS            since the newest materialized 15-minute window started; no window
                               at all is unhealthy too (default 3600; 0 = not checked)
--local-only checks only what this host keeps itself (stream lags when the stream is local,
dead-letter files, spool), never reads the lake or the warehouse: the producer host's probe.
"""


def _check_status(args: argparse.Namespace, settings: Settings) -> tuple[dict[str, Any], int]:
    from musicnft.app.status import (
        Thresholds,
        collect_status,
        dead_letter_growth,
        health_line,
        health_problems,
        newest_window,
        spool_depth,
    )

    limits = Thresholds(
        max_lag=args.max_lag,
        max_dead_letter_growth=args.max_dead_letter_growth,
        dead_letter_window=args.dead_letter_window,
        max_spool=args.max_spool,
        max_quarantined=args.max_quarantined,
        max_age=0 if args.local_only else args.max_age,
    )
    try:
        status: dict[str, Any]
        if args.local_only:
            status = _local_status(settings)
            status["dead_letter_growth"] = dead_letter_growth(
                settings, None, limits.dead_letter_window
            )
        else:
            lake = wiring.open_lake(settings)
            warehouse = wiring.open_warehouse(settings)
            status = collect_status(settings, lake, warehouse)
            status["dead_letter_growth"] = dead_letter_growth(
                settings, lake, limits.dead_letter_window
            )
            if limits.max_age > 0:
                newest = newest_window(warehouse)
                status["newest_window"] = (
                    newest.isoformat().replace("+00:00", "Z") if newest else None
                )
        status["spool_depth"] = spool_depth(settings)
    except ConfigError:
        raise
    except Exception as exc:  # the probe must fail, not crash, when it cannot see
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {"healthy": False, "problems": [f"status unavailable: {reason}"]}, 1
    problems = health_problems(status, limits)
    status["healthy"] = not problems
    status["problems"] = problems
    status["check"] = health_line(status, problems)
    return status, (1 if problems else 0)


def _local_status(settings: Settings) -> dict[str, Any]:
    from musicnft.adapters.local_stream import LocalStream

    status: dict[str, Any] = {"data_dir": str(settings.data_dir.resolve())}
    if settings.stream_backend == "local" and settings.stream_path.exists():
        with LocalStream(settings.stream_path, shards=settings.stream_shards, readers=()) as s:
            status["delivery_lag"] = s.lag("delivery")
            status["consumer_lag"] = s.lag("consumer")
    return status


def cmd_status(args: argparse.Namespace) -> int:
    from musicnft.app.status import collect_status, format_status

    settings = settings_from(args)
    if args.check:
        status, code = _check_status(args, settings)
        if args.json:
            print(json.dumps(status, sort_keys=True, default=str))
        else:
            print(status.get("check") or "unhealthy: " + "; ".join(status["problems"]))
        return code
    warehouse = wiring.open_warehouse(settings, read_only=True)
    status = collect_status(settings, wiring.open_lake(settings), warehouse)
    stats = getattr(warehouse, "table_stats", None)
    if args.json and stats is not None:
        # per table: rows, data files and bytes, delete files, snapshots kept, last change
        status["tables"] = stats()
    print(json.dumps(status, sort_keys=True, default=str) if args.json else format_status(status))
    return 0


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO timestamp: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_sql(args: argparse.Namespace) -> int:
    from musicnft.adapters.sql_guard import check_read_only, check_read_only_bigquery
    from musicnft.app.json_values import json_rows
    from musicnft.ports import ReadOnlyQueryError

    settings = settings_from(args)
    try:
        # DuckDB's parser decides before anything reaches the warehouse (see sql_guard).
        if settings.warehouse_backend == "bigquery":
            check_read_only_bigquery(args.query)
        else:
            check_read_only(args.query)
        warehouse = wiring.open_warehouse(settings, read_only=True)
        if args.at is not None:
            if settings.warehouse_backend == "bigquery":
                raise ConfigError(
                    "--at needs the embedded warehouse (BigQuery: FOR SYSTEM_TIME AS OF)"
                )
            table = warehouse.query(args.query, at=args.at)
        else:
            table = warehouse.query(args.query)
    except ReadOnlyQueryError as exc:
        raise ConfigError(str(exc)) from None
    except ConfigError:
        raise
    except Exception as exc:  # the query's own error (a typo, a missing column): one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"musicnft sql: error: {first}", file=sys.stderr)
        return 1
    rows = json_rows(table)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, allow_nan=False))
        return 0
    names = table.column_names
    cells = [
        [v if isinstance(v := r.get(n), str) else json.dumps(v, ensure_ascii=False) for n in names]
        for r in rows
    ]
    widths = [max([len(n)] + [min(len(c[i]), 60) for c in cells]) for i, n in enumerate(names)]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for c in cells:
        print("  ".join(v[:60].ljust(w) for v, w in zip(c, widths, strict=True)))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})", file=sys.stderr)
    return 0


SQL_EPILOG = """\
Only one plain read runs: DuckDB's parser must classify the query as a single SELECT (WITH ...
SELECT, FROM t, VALUES, DESCRIBE, SHOW, SUMMARIZE and EXPLAIN [ANALYZE] of one of them included);
every other statement (COPY, INSERT, UPDATE, DELETE, CREATE, DROP, ATTACH, INSTALL, LOAD, SET,
PRAGMA, CALL, ...), a second statement, and calls of functions that maintain or modify a catalog
(ducklake_* other than its readers, *cleanup*, *expire*, ...), run SQL text (query) or read
secrets (duckdb_secrets, getenv) are refused with exit 2 and one line saying why.

--json types: integers (HUGEINT too) as numbers with every digit; DECIMAL with a scale as a string
of its exact digits ("12.50"); NaN and +-Infinity as null; DATE/TIME as ISO 8601; TIMESTAMP WITH
TIME ZONE in UTC with a Z; INTERVAL as an ISO-8601 duration ("P1Y2M3DT4H5M6.5S"); BLOB as
base64; UUID as its string; LIST as an array; STRUCT and MAP as objects (MAP keys as strings).
"""


def register(sub: Subparsers) -> None:
    common = data_dir_option()
    p = sub.add_parser(
        "status",
        parents=[common],
        help="counts at every stage; --check: healthy or not (exit 1), for probes",
        epilog=CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON object (integer counts) for machines"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="print one line, healthy or why not; exit 1 when a threshold is exceeded",
    )
    p.add_argument(
        "--max-lag",
        type=int,
        default=10_000,
        metavar="N",
        help="most records undelivered or unconsumed (default 10000)",
    )
    p.add_argument(
        "--max-dead-letter-growth",
        type=int,
        default=100,
        metavar="N",
        help="most new dead-letter entries within the window (default 100)",
    )
    p.add_argument(
        "--dead-letter-window",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="the window for --max-dead-letter-growth (default 3600)",
    )
    p.add_argument(
        "--max-spool",
        type=int,
        default=1_000,
        metavar="N",
        help="most records in the spool (default 1000)",
    )
    p.add_argument(
        "--max-quarantined",
        type=int,
        default=0,
        metavar="N",
        help="most quarantined lake files (default 0)",
    )
    p.add_argument(
        "--max-age",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="newest window's age (default 3600; 0 = off)",
    )
    p.add_argument(
        "--local-only",
        action="store_true",
        help="--check: only what this host keeps (lags, dead-letter files, spool)",
    )
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "sql",
        parents=[common],
        help="run a read-only SQL query on the warehouse tables",
        epilog=SQL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("query", help="one SELECT over posts_hot, posts, window_metrics_15m, ...")
    p.add_argument("--json", action="store_true", help="print a JSON array of objects")
    p.add_argument(
        "--at",
        type=_timestamp,
        default=None,
        metavar="ISO_TIMESTAMP",
        help="answer as the tables were at this time (e.g. 2026-11-30T04:00:00Z; UTC if no offset); "
        "the embedded warehouse keeps MUSICNFT_WAREHOUSE_RETENTION_HOURS of history",
    )
    p.set_defaults(func=cmd_sql)
