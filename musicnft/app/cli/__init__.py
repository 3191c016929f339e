"""`musicnft`: run each part of the embedded hot path alone or all together, and look inside.

Every command reads its configuration from the environment (see the README) and accepts
`--data-dir` to override `MUSICNFT_DATA_DIR`. Long-running commands stop cleanly on Ctrl-C or
SIGTERM: they flush what they hold, and `deliver`/`consume` first drain what is in the stream.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from musicnft import wiring
from musicnft.devtools.sample import SAMPLE_PATH
from musicnft.logs import setup_logging
from musicnft.settings import ConfigError, Settings

log = logging.getLogger("musicnft.cli")


def _settings(args: argparse.Namespace) -> Settings:
    import dataclasses

    settings = Settings.from_env()
    if getattr(args, "data_dir", None):
        settings = settings.with_data_dir(Path(args.data_dir))
    # Flags win over the environment for the live sources' endpoints.
    if getattr(args, "x_api_base", None):
        if not args.x_api_base.startswith(("http://", "https://")):
            raise ConfigError(f"--x-api-base must be an http(s) URL, got {args.x_api_base!r}")
        settings = dataclasses.replace(settings, x_api_base=args.x_api_base)
    if getattr(args, "jetstream_url", None):
        if not args.jetstream_url.startswith(("ws://", "wss://")):
            raise ConfigError(f"--jetstream-url must be a ws(s) URL, got {args.jetstream_url!r}")
        settings = dataclasses.replace(settings, jetstream_url=args.jetstream_url)
    return settings


def _stop_on_signals() -> threading.Event:
    """First SIGINT/SIGTERM asks for a clean stop; a second one exits at once."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            raise SystemExit(130)
        log.info(
            "%s received: finishing up (send again to exit at once)", signal.Signals(signum).name
        )
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def cmd_produce(args: argparse.Namespace) -> int:
    from musicnft import wiring
    from musicnft.hotpath.normalize_x import normalize_x_line
    from producer.replay import Pacer, iter_lines, parse_speed
    from producer.runner import Producer
    from producer.sinks import open_sink

    settings = _settings(args)
    stop = _stop_on_signals()
    sink = open_sink(settings)
    producer = Producer(
        sink,
        wiring.keyword_matcher(settings),
        wiring.dead_letter(settings, "producer"),
        batch_records=settings.producer_batch_records,
        linger_seconds=settings.producer_linger_seconds,
        max_record_bytes=settings.max_record_bytes,
        stop=stop,
    )
    source: Any
    normalize: Any = normalize_x_line
    closing: list[Any] = [sink]
    if args.source == "replay":
        path = Path(args.file) if args.file else SAMPLE_PATH
        if not path.is_file():
            raise ConfigError(f"--file {path}: no such file")
        speed = parse_speed(args.speed)
        source = iter_lines(path)
        pacer = Pacer(speed, restamp=args.restamp)
        log.info(
            "replaying %s at speed %s%s into the %s stream %s",
            path,
            args.speed,
            " (restamped to now)" if args.restamp else "",
            settings.stream_backend,
            settings.stream_name,
        )
    elif args.source == "x":
        from producer.x_stream import (
            SingleConnectionGuard,
            XApi,
            XError,
            XStreamSource,
            desired_rules,
        )

        try:
            guard = SingleConnectionGuard(settings.data_dir / "x" / "stream.lock")
        except XError as exc:
            raise ConfigError(str(exc)) from None
        query = " OR ".join(f"({r['value']})" for r in desired_rules(list(settings.keywords)))
        source = XStreamSource(
            XApi(settings.x_api_base, _x_token(args.bearer_token_file)),
            settings.data_dir / "x",
            stop,
            stall_seconds=args.stall_seconds,
            catch_up_query=query if args.catch_up else None,
            price_per_post=settings.x_price_per_post,
        )
        closing += [source, guard]
        pacer = Pacer(None)
        log.info("following the X filtered stream at %s", settings.x_api_base)
    else:
        from musicnft.hotpath.normalize_bluesky import normalize_jetstream_event
        from producer.bluesky import JetstreamSource

        source = JetstreamSource(
            settings.jetstream_url, settings.data_dir / "bluesky" / "cursor", stop
        )
        normalize = normalize_jetstream_event
        pacer = Pacer(None)
        log.info("following Bluesky Jetstream at %s", settings.jetstream_url)
    try:
        producer.run(source, pacer, normalize=normalize)
    finally:
        for thing in closing:
            close = getattr(thing, "close", None) or thing.release
            close()
    return 0


def _x_token(token_file: str | None = None) -> Any:
    """The bearer token from --bearer-token-file or the environment (the EC2 unit fills it from
    Secrets Manager). Never a flag value: command lines are visible to every user of the host."""
    import os

    from producer.x_stream import Secret

    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"--bearer-token-file {token_file}: {exc.strerror}") from None
    else:
        token = os.environ.get("X_BEARER_TOKEN") or os.environ.get("MUSICNFT_X_BEARER_TOKEN")
    if not token:
        raise ConfigError("X_BEARER_TOKEN is not set (the X API bearer token; never printed)")
    return Secret(token.strip())


def cmd_x_rules(args: argparse.Namespace) -> int:
    from producer.x_stream import XApi, XError, sync_rules

    settings = _settings(args)
    try:
        diff = sync_rules(
            XApi(settings.x_api_base, _x_token()), list(settings.keywords), args.dry_run
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


def cmd_deliver(args: argparse.Namespace) -> int:
    from musicnft import wiring
    from musicnft.local.delivery import DeliveryLoop, FlushResult, run_many

    settings = _settings(args)
    readers = wiring.open_stream_readers(settings)
    loops = [
        DeliveryLoop(
            reader,
            wiring.open_lake(settings),
            settings.stream_name,
            buffer_bytes=settings.delivery_buffer_bytes,
            buffer_seconds=settings.delivery_buffer_seconds,
            retention_seconds=settings.stream_retention_hours * 3600,
        )
        for reader in readers
    ]
    if args.once:
        total = FlushResult()
        for loop in loops:
            part = loop.run_once()
            total.records += part.records
            total.rows += part.rows
            total.errors += part.errors
        log.info(
            "delivered %d records (%d rows, %d errors)", total.records, total.rows, total.errors
        )
    else:
        log.info(
            "delivering the %s stream %s (%d shard reader(s)) → %s lake (buffer %d bytes / %.0fs)",
            settings.stream_backend,
            settings.stream_name,
            len(loops),
            settings.lake_backend,
            settings.delivery_buffer_bytes,
            settings.delivery_buffer_seconds,
        )
        run_many(loops, _stop_on_signals())
        log.info(
            "delivery stopped: %d rows in %d files",
            sum(lp.rows_written for lp in loops),
            sum(lp.files_written for lp in loops),
        )
    for reader in readers:
        if hasattr(reader, "close"):
            reader.close()
    return 0


def cmd_consume(args: argparse.Namespace) -> int:
    import os
    import time

    from musicnft import wiring
    from musicnft.local.consumer_loop import ConsumerLoop, load_handler_module, run_many

    settings = _settings(args)
    # The handler builds its warehouse from the environment, as it would in Lambda.
    os.environ["MUSICNFT_DATA_DIR"] = str(settings.data_dir)
    handler = load_handler_module().kinesis_handler
    readers = wiring.open_stream_readers(settings)
    warehouse = wiring.open_warehouse(settings)
    last_compaction = [time.monotonic()]

    def compact_when_idle() -> None:
        if time.monotonic() - last_compaction[0] > 60:
            last_compaction[0] = time.monotonic()
            merged = warehouse.compact("posts_hot")
            if merged:
                log.info("compacted %d small posts_hot files into one", merged)

    dead_letter = wiring.dead_letter(settings, "consumer")
    loops = [
        ConsumerLoop(
            reader,
            handler,
            dead_letter,
            settings.stream_name,
            batch_size=settings.consumer_batch_size,
            max_retries=settings.consumer_max_retries,
            on_idle=compact_when_idle,
        )
        for reader in readers
    ]
    if args.once:
        n = sum(loop.run_once() for loop in loops)
        log.info("consumed %d records in %d invocations", n, sum(lp.invocations for lp in loops))
    else:
        log.info(
            "consuming the %s stream %s (%d shard reader(s)) → posts_hot in %s",
            settings.stream_backend,
            settings.stream_name,
            len(loops),
            wiring.describe_warehouse(settings),
        )
        run_many(loops, _stop_on_signals())
        log.info(
            "consumer stopped: %d records, %d dead-lettered",
            sum(lp.processed for lp in loops),
            sum(lp.dead_lettered for lp in loops),
        )
    for reader in readers:
        if hasattr(reader, "close"):
            reader.close()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from musicnft.app.supervisor import Supervisor

    settings = _settings(args)
    return Supervisor(settings, args).run()


def cmd_status(args: argparse.Namespace) -> int:
    from musicnft.app.status import collect_status, format_status

    status = collect_status(_settings(args))
    print(json.dumps(status, sort_keys=True) if args.json else format_status(status))
    return 0


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat().replace("+00:00", "Z")
    return value


def cmd_sql(args: argparse.Namespace) -> int:
    from musicnft import wiring
    from musicnft.ports import ReadOnlyQueryError

    warehouse = wiring.open_warehouse(_settings(args))
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


def cmd_sample(args: argparse.Namespace) -> int:
    from musicnft.devtools.sample import write_sample

    start = datetime.fromisoformat(args.start) if args.start else None
    kwargs: dict[str, Any] = {"lines": args.lines, "seed": args.seed}
    if start is not None:
        kwargs["start"] = start
    if args.posts_per_hour:
        kwargs["posts_per_hour"] = args.posts_per_hour
    stats = write_sample(Path(args.out), **kwargs)
    log.info("wrote %s: %s", args.out, stats)
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from musicnft import wiring
    from musicnft.batch.backfill import dagster_recorder, parse_when, run_backfill

    settings = _settings(args)
    try:
        start = parse_when(args.start) if args.start else None
        end = parse_when(args.end) if args.end else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if start and end and end <= start:
        raise ConfigError("--end must be after --start")
    recorder = None
    if not args.no_dagster:
        from musicnft_dagster.partitions import WINDOWS

        recorder = dagster_recorder(WINDOWS.start)
    report = run_backfill(
        wiring.open_lake(settings),
        wiring.open_warehouse(settings),
        [k.lower() for k in settings.keywords],
        start,
        end,
        on_window=recorder,
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


DASHBOARD_APP = Path(__file__).resolve().parents[3] / "dashboard" / "app.py"


def dashboard_command(host: str, port: int) -> list[str]:
    """Streamlit serving the dashboard: bound to `host`, headless, usage statistics off."""
    return [
        sys.executable, "-m", "streamlit", "run", str(DASHBOARD_APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def cmd_dashboard(args: argparse.Namespace) -> int:
    import os

    settings = _settings(args)
    env = dict(os.environ, MUSICNFT_DATA_DIR=str(settings.data_dir.resolve()))
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    print(f"musicnft dashboard: http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    cmd = dashboard_command(args.host, args.port)
    os.execvpe(cmd[0], cmd, env)  # Streamlit takes over this process (and its signals)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from musicnft.contract.schema import ENRICHED_FIELDS, POST_FIELDS, glue_columns

    fields = ENRICHED_FIELDS if args.enriched else POST_FIELDS
    print(json.dumps(glue_columns(fields), indent=2))
    return 0


def _bigquery_settings(args: argparse.Namespace) -> Settings:
    import dataclasses

    settings = _settings(args)
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


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the embedded profile keeps everything (default: $MUSICNFT_DATA_DIR or ./data)",
    )
    parser = argparse.ArgumentParser(
        prog="musicnft",
        description="musicnft: the music-NFT social stream pipeline (embedded profile).",
        epilog="Run 'musicnft COMMAND --help' for each command's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def replay_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--file",
            metavar="PATH",
            help="replay file (JSON lines, .gz ok); default: the shipped sample",
        )
        p.add_argument(
            "--speed",
            default="max",
            metavar="max|N",
            help="'max' (as fast as possible, default) or N× the posts' own pace (1 = real time)",
        )
        p.add_argument(
            "--restamp",
            action="store_true",
            help="stamp each post's created_at with the time it is replayed, so the replay looks live",
        )

    p = sub.add_parser(
        "produce", parents=[common], help="read a source and put posts on the stream"
    )
    p.add_argument(
        "--source",
        default="replay",
        choices=["replay", "x", "bluesky"],
        help="replay (a file), x (the X API v2 filtered stream, paid per post; needs "
        "X_BEARER_TOKEN) or bluesky (Jetstream, free)",
    )
    replay_options(p)
    p.add_argument("--catch-up", action="store_true", help="x: fill stream gaps from recent search")
    p.add_argument("--x-api-base", metavar="URL", help="x: API host (default $MUSICNFT_X_API_BASE)")
    p.add_argument(
        "--bearer-token-file", metavar="PATH", help="x: read the bearer token from a file"
    )
    p.add_argument(
        "--jetstream-url", metavar="URL", help="bluesky: endpoint (default $MUSICNFT_JETSTREAM_URL)"
    )
    p.add_argument(
        "--stall-seconds",
        type=float,
        default=20.0,
        help="x: reconnect after this long without a byte",
    )
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser(
        "deliver", parents=[common], help="stream → Parquet files in the lake (Firehose's job)"
    )
    p.add_argument(
        "--once", action="store_true", help="deliver everything in the stream now, flush and exit"
    )
    p.set_defaults(func=cmd_deliver)

    p = sub.add_parser(
        "consume", parents=[common], help="stream → Lambda handler → posts_hot (the consumer)"
    )
    p.add_argument(
        "--once", action="store_true", help="consume everything in the stream now and exit"
    )
    p.set_defaults(func=cmd_consume)

    p = sub.add_parser(
        "run",
        parents=[common],
        help="the whole embedded hot path, supervised (producer, delivery, consumer)",
    )
    replay_options(p)
    p.add_argument(
        "--seconds",
        type=float,
        metavar="N",
        help="stop by itself after N seconds (flush, print status)",
    )
    p.add_argument(
        "--exit-when-done",
        action="store_true",
        help="stop once the replay has ended and all is delivered",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="remove previous data (stream, lake, warehouse, dead-letters, Dagster history) first",
    )
    p.add_argument(
        "--dagster",
        action="store_true",
        help="also run `dagster dev` (drop sensor, 15-minute schedule, UI); at the end, "
        "materialize every window this run's drops touched",
    )
    p.add_argument("--dagster-port", type=int, default=3000, help="Dagster UI port (default 3000)")
    p.add_argument("--dashboard", action="store_true", help="also serve the live dashboard")
    p.add_argument("--dashboard-port", type=int, default=8501, help="dashboard port (default 8501)")
    p.add_argument(
        "--dashboard-host", default="127.0.0.1", help="dashboard address (default 127.0.0.1)"
    )
    p.add_argument(
        "--dagster-host", default="127.0.0.1", help="Dagster UI address (default 127.0.0.1)"
    )
    p.set_defaults(func=cmd_run)

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

    p = sub.add_parser(
        "backfill",
        parents=[common],
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

    p = sub.add_parser("dashboard", parents=[common], help="serve the live dashboard (Streamlit)")
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.set_defaults(func=cmd_dashboard)

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

    p = sub.add_parser(
        "bigquery",
        help="the BigQuery warehouse: print its DDL, create or migrate its tables and views",
    )
    bq_sub = p.add_subparsers(dest="bigquery_command", required=True, metavar="ACTION")

    def bigquery_options(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--project", help="Google Cloud project (default $MUSICNFT_BIGQUERY_PROJECT)"
        )
        q.add_argument("--dataset", help="dataset (default $MUSICNFT_BIGQUERY_DATASET or musicnft)")
        q.add_argument(
            "--location", help="dataset location (default $MUSICNFT_BIGQUERY_LOCATION or US)"
        )
        q.add_argument(
            "--endpoint",
            metavar="URL",
            help="API endpoint, e.g. a local emulator (default $MUSICNFT_BIGQUERY_ENDPOINT or Google)",
        )

    q = bq_sub.add_parser(
        "migrate",
        help="create the dataset, tables and Looker Studio views, or add what the contract gained "
        "(idempotent; never drops anything)",
    )
    bigquery_options(q)
    q.add_argument("--dry-run", action="store_true", help="print the statements, change nothing")
    q.set_defaults(func=cmd_bigquery_migrate)
    q = bq_sub.add_parser("ddl", help="print the tables' DDL (infra/bigquery/tables.sql)")
    bigquery_options(q)
    q.add_argument("--views", action="store_true", help="print the Looker Studio views instead")
    q.set_defaults(func=cmd_bigquery_ddl)

    p = sub.add_parser("schema", help="print the post schema v1 as Glue table columns (JSON)")
    p.add_argument(
        "--enriched", action="store_true", help="include the enrichment columns (posts_hot)"
    )
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("sample", help="generate X-v2-shaped sample stream lines (deterministic)")
    p.add_argument("--out", required=True, metavar="PATH", help="output file (.gz to compress)")
    p.add_argument("--lines", type=int, default=20_000, help="how many lines (default 20000)")
    p.add_argument("--seed", type=int, default=2021, help="random seed (default 2021)")
    p.add_argument("--start", metavar="ISO", help="first post time, e.g. 2021-12-01T00:00:00+00:00")
    p.add_argument(
        "--posts-per-hour", type=float, help="average rate (default 256, the original's)"
    )
    p.set_defaults(func=cmd_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"musicnft {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
