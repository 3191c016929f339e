"""The hot path's stages, alone or supervised: `produce`, `deliver`, `consume` and `run`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from musicnft import wiring
from musicnft.app.cli.common import (
    Subparsers,
    data_dir_option,
    log,
    settings_from,
    stop_on_signals,
    x_token,
)
from musicnft.devtools.sample import SAMPLE_PATH
from musicnft.local.gc_tuning import settle_heap
from musicnft.ports import StreamReader
from musicnft.settings import ConfigError


def cmd_produce(args: argparse.Namespace) -> int:
    from musicnft.hotpath.normalize_x import normalize_x_line
    from producer.replay import Pacer, iter_lines, parse_speed
    from producer.runner import Producer
    from producer.sinks import open_sink

    settings = settings_from(args)
    stop = stop_on_signals()
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
            XApi(settings.x_api_base, x_token(settings, args.bearer_token_file)),
            settings.data_dir / "x",
            stop,
            stall_seconds=args.stall_seconds,
            catch_up_query=query if args.catch_up else None,
            price_per_post=settings.x_price_per_post,
            durable_acks=True,
        )
        # The newest post id is persisted only once its batch is on the stream.
        producer.on_durable = source.acknowledge
        closing = [source, *closing, guard]
        pacer = Pacer(None)
        log.info("following the X filtered stream at %s", settings.x_api_base)
    else:
        from producer.bluesky import JetstreamSource
        from producer.bluesky_deletes import DeletionAwareNormalizer, TrackedPosts

        source = JetstreamSource(
            settings.jetstream_url,
            settings.data_dir / "bluesky" / "cursor",
            stop,
            durable_acks=True,
        )
        # The cursor is persisted only once its messages are on the stream (or dead-lettered),
        # and a replayed frame that is already dead-lettered is not dead-lettered again.
        producer.on_durable = source.acknowledge
        producer.on_dead_letter = source.dead_lettered
        # Deletes of posts this producer stored become tombstones on the stream (docs/deletions.md).
        normalize = DeletionAwareNormalizer(TrackedPosts(settings.data_dir / "bluesky" / "tracked"))
        closing = [source, normalize, *closing]
        pacer = Pacer(None)
        log.info("following Bluesky Jetstream at %s", settings.jetstream_url)
    settle_heap()
    try:
        producer.run(source, pacer, normalize=normalize)
    finally:
        for thing in closing:
            close = getattr(thing, "close", None) or thing.release
            close()
    return 0


def _close(readers: list[StreamReader]) -> None:
    for reader in readers:
        close = getattr(reader, "close", None)
        if close is not None:
            close()


def cmd_deliver(args: argparse.Namespace) -> int:
    from musicnft.local.malloc_tuning import tune_stage_allocators

    tune_stage_allocators()  # (its peak memory: see malloc_tuning), before pyarrow loads
    from musicnft.local.delivery import DeliveryLoop, FlushResult, run_many

    settings = settings_from(args)
    readers = wiring.open_stream_readers(settings)
    loops = [
        DeliveryLoop(
            reader,
            wiring.open_lake(settings),
            settings.stream_name,
            buffer_bytes=settings.delivery_buffer_bytes,
            buffer_seconds=settings.delivery_buffer_seconds,
            retention_seconds=settings.stream_retention_hours * 3600,
            int96_timestamps=settings.delivery_int96_timestamps,
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
        settle_heap()
        run_many(loops, stop_on_signals())
        log.info(
            "delivery stopped: %d rows in %d files",
            sum(lp.rows_written for lp in loops),
            sum(lp.files_written for lp in loops),
        )
    _close(readers)
    return 0


def cmd_consume(args: argparse.Namespace) -> int:
    from musicnft.local.malloc_tuning import tune_stage_allocators

    tune_stage_allocators()  # (its peak memory: see malloc_tuning), before pyarrow loads
    from musicnft.local.compaction import BackgroundCompaction
    from musicnft.local.consumer_loop import ConsumerLoop, load_handler, run_many

    settings = settings_from(args)
    readers = wiring.open_stream_readers(settings)
    warehouse = wiring.open_warehouse(settings)
    # The Lambda handler's code, over the warehouse these settings name (in Lambda it builds its
    # own from the function's environment).
    handler = load_handler(warehouse)
    wiring.install_model_scoring(settings)  # model_score/label/version (issue 15)
    dead_letter = wiring.dead_letter(settings, "consumer")
    loops = [
        ConsumerLoop(
            reader,
            handler,
            dead_letter,
            settings.stream_name,
            batch_size=settings.consumer_batch_size,
            batch_window_seconds=settings.consumer_batch_window_seconds,
            max_retries=settings.consumer_max_retries,
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
        stop = stop_on_signals()
        # posts_hot's small files are merged beside the hot path, never in its way
        compaction = BackgroundCompaction(lambda: wiring.open_warehouse(settings), stop).start()
        settle_heap(first_generation=None)  # (its peak memory: see gc_tuning)
        run_many(loops, stop)
        compaction.join(timeout=30)
        log.info(
            "consumer stopped: %d records, %d dead-lettered",
            sum(lp.processed for lp in loops),
            sum(lp.dead_lettered for lp in loops),
        )
    _close(readers)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from musicnft.app.supervisor import Supervisor

    return Supervisor(settings_from(args), args).run()


def _replay_options(p: argparse.ArgumentParser) -> None:
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


RUN_EPILOG = """\
Stopping: Ctrl-C, SIGTERM, --seconds or (with --exit-when-done) the end of the replay stops the
producer, then delivery and consumer drain the stream (a drain process that dies is restarted
like any stage), then dagster dev with its runs and the dashboard stop (process group by group,
SIGKILL after a grace period), and the status is printed. A second Ctrl-C/SIGTERM stops every
child at once. No child process outlives the command.

Exit codes:
  0    done: every record the stream accepted reached the lake and posts_hot (or a dead-letter)
  1    the producer failed (what it put on the stream was drained), a stage kept dying
       beyond --max-restarts (with nothing left undrained), or --dagster: a final window
       failed its checks
  2    bad configuration or arguments (nothing started)
  3    NOT drained: records remain undelivered or unconsumed (a stage kept dying beyond
       --max-restarts, or a drain did not finish); one line on stderr says how many. Nothing
       is lost: run it again without --fresh, or `musicnft deliver --once` and
       `musicnft consume --once`
  130  a second Ctrl-C/SIGTERM: stopped at once without draining
"""


def register(sub: Subparsers) -> None:
    common = data_dir_option()
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
    _replay_options(p)
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
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _replay_options(p)
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
        "--max-restarts",
        type=int,
        default=10,
        metavar="N",
        help="restart a delivery or consumer that dies (during the run or the final drain) at "
        "most N times within 10 minutes; beyond that the run stops (exit 3 or 1) (default 10)",
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
    p.add_argument(
        "--sales",
        action="store_true",
        help="also replay the seeded NFT sales sample beside the posts (same --speed and "
        "--restamp) into the lake's sales/ (`musicnft sales --source replay`)",
    )
    p.add_argument("--dashboard", action="store_true", help="also serve the live dashboard")
    p.add_argument("--dashboard-port", type=int, default=8501, help="dashboard port (default 8501)")
    p.add_argument(
        "--dashboard-host", default="127.0.0.1", help="dashboard address (default 127.0.0.1)"
    )
    p.add_argument(
        "--dagster-host", default="127.0.0.1", help="Dagster UI address (default 127.0.0.1)"
    )
    p.set_defaults(func=cmd_run)
