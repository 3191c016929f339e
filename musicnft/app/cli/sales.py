"""`sales`: NFT market sales into the lake's `sales/`, and `sales discover`.

`musicnft sales --source opensea [--collections a,b] [--since ISO] [--until ISO] [--once]`: with
`--once`, every sale in [since, until) of each collection, then exit; without it, a poll every
MUSICNFT_SALES_POLL_SECONDS (60) from each collection's persisted cursor, re-reading the last 15
minutes each time. `--source replay` replays the seeded demo sample (or `--file`, OpenSea events
as JSON lines) at `--speed`, `--restamp`ed to now when asked. `musicnft sales discover` prints
OpenSea's top music collections with their day's volume, sales and floor.

The key comes from OPENSEA_API_KEY or `--api-key-file`, never from a flag's value (command lines
are visible to every user of the host), and is never printed. Exit codes: 0 done; 1 a collection
failed after the retries (its cursor did not move: nothing is lost, run it again); 2 bad
configuration, or OpenSea refused the key (401/403); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musicnft import wiring
from musicnft.app.cli.common import Subparsers, data_dir_option, log, settings_from, stop_on_signals
from musicnft.settings import ConfigError, Settings, parse_collections

if TYPE_CHECKING:
    from producer.opensea import OpenSeaApi


def _when(value: str | None, flag: str) -> datetime | None:
    if not value:
        return None
    from musicnft.batch.backfill import parse_when

    try:
        return parse_when(value)
    except ValueError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def _api(settings: Settings, key_file: str | None) -> OpenSeaApi:
    from producer.opensea import OpenSeaApi
    from producer.x_stream import Secret

    if key_file:
        try:
            key = Path(key_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"--api-key-file {key_file}: {exc.strerror}") from None
    else:
        key = settings.opensea_api_key
    if not key:
        raise ConfigError(
            "OPENSEA_API_KEY is not set (an OpenSea API key; or --api-key-file; never printed). "
            "Without one, `musicnft sales --source replay` replays the demo sample"
        )
    return OpenSeaApi(
        settings.opensea_api_base,
        Secret(key),
        min_interval=settings.opensea_request_interval,
        max_attempts=settings.opensea_max_attempts,
    )


def _collections(settings: Settings, flag: str | None) -> tuple[str, ...]:
    collections = parse_collections(flag) if flag else settings.nft_collections
    if not collections:
        raise ConfigError(
            "no collections to follow: pass --collections a,b or set MUSICNFT_NFT_COLLECTIONS "
            "(`musicnft sales discover` lists OpenSea's top music collections)"
        )
    return collections


def _state_path(settings: Settings, source: str) -> Path:
    return settings.data_dir / "sales" / f"{source}.sqlite"


def _opensea(args: argparse.Namespace, settings: Settings) -> int:
    from producer.opensea import OpenSeaAuthError
    from producer.sales import SalesCollector, SalesState

    since, until = _when(args.since, "--since"), _when(args.until, "--until")
    if until is not None and not args.once:
        raise ConfigError("--until needs --once (a poll follows the present)")
    if since and until and until <= since:
        raise ConfigError("--until must be after --since")
    collections = _collections(settings, args.collections)
    api = _api(settings, args.api_key_file)
    state = SalesState(_state_path(settings, "opensea"))
    dead_letter = wiring.dead_letter(settings, "sales")
    collector = SalesCollector(api, wiring.open_lake(settings), state, dead_letter)
    try:
        if args.once:
            end = until or datetime.now(UTC)
            reports = collector.run_once(collections, since, end)
            failed = [r for r in reports if r.error]
            written = sum(r.written for r in reports)
            print(
                f"sales: {len(reports)} collection(s), {written} sale(s) written, "
                f"{sum(r.unchanged for r in reports)} already written, "
                f"{sum(r.rejected for r in reports)} dead-lettered, {len(failed)} failed"
            )
            for r in failed:
                print(f"  FAILED {r.collection}: {r.error}", file=sys.stderr)
            return 1 if failed else 0
        log.info(
            "following the sales of %s on %s every %.0fs",
            ", ".join(collections),
            settings.opensea_api_base,
            settings.sales_poll_seconds,
        )
        collector.poll(collections, stop_on_signals(), settings.sales_poll_seconds, since)
        return 0
    except OpenSeaAuthError as exc:
        print(f"musicnft sales: error: {exc}", file=sys.stderr)
        return 2
    finally:
        state.close()
        dead_letter.close()


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from producer.replay import Pacer, parse_speed
    from producer.sales import SalesReplay, replay_events

    try:
        speed = parse_speed(args.speed)
    except ValueError as exc:
        raise ConfigError(f"--speed: {exc}") from None
    events: Any
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise ConfigError(f"--file {path}: no such file")
        events = replay_events(path)
        what = str(path)
    else:
        from musicnft.devtools.sales_sample import generate_sale_events

        events = generate_sale_events()
        what = "the seeded demo sales sample"
    log.info(
        "replaying %s at speed %s%s into the lake",
        what,
        args.speed,
        " (restamped to now)" if args.restamp else "",
    )
    dead_letter = wiring.dead_letter(settings, "sales")
    replay = SalesReplay(
        wiring.open_lake(settings),
        dead_letter,
        Pacer(speed, restamp=args.restamp),
        stop_on_signals(),
        flush_seconds=args.flush_seconds,
    )
    try:
        report = replay.run(events)
    finally:
        dead_letter.close()
    print(
        f"sales replay: {report.events} event(s), {report.written} sale(s) written in "
        f"{report.files} file(s), {report.repeated} repeated, {report.rejected} dead-lettered"
    )
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings, the data directory and `--api-base` over them."""
    settings = settings_from(args)
    if getattr(args, "opensea_api_base", None):
        import dataclasses

        if not args.opensea_api_base.startswith(("http://", "https://")):
            raise ConfigError("--api-base must be an http(s) URL")
        settings = dataclasses.replace(settings, opensea_api_base=args.opensea_api_base)
    return settings


def cmd_sales(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.source == "replay":
        return _replay(args, settings)
    return _opensea(args, settings)


def _number(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"
    return "–"


def _one_day(stats: dict[str, Any]) -> dict[str, Any]:
    for interval in stats.get("intervals") or []:
        if isinstance(interval, dict) and interval.get("interval") == "one_day":
            return interval
    return {}


def cmd_discover(args: argparse.Namespace) -> int:
    from producer.opensea import OpenSeaAuthError, OpenSeaError

    settings = _settings(args)
    api = _api(settings, args.api_key_file)
    try:
        top = api.top_collections(args.category, args.sort_by, args.limit)
        rows = []
        for item in top[: args.limit]:
            slug = item.get("collection") or item.get("slug")
            if not isinstance(slug, str) or not slug:
                continue
            stats = api.collection_stats(slug) if not args.no_stats else {}
            found = stats.get("total")
            total: dict[str, Any] = found if isinstance(found, dict) else {}
            day = _one_day(stats)
            rows.append(
                (
                    slug,
                    str(item.get("name") or "")[:40],
                    _number(day.get("volume")),
                    _number(day.get("sales")),
                    f"{_number(total.get('floor_price'))} {total.get('floor_price_symbol') or ''}",
                    _number(total.get("volume")),
                )
            )
    except OpenSeaAuthError as exc:
        print(f"musicnft sales discover: error: {exc}", file=sys.stderr)
        return 2
    except OpenSeaError as exc:
        print(f"musicnft sales discover: {exc}", file=sys.stderr)
        return 1
    header = ("collection", "name", "1-day volume", "1-day sales", "floor", "total volume")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if rows:
        print(f"\nfollow them with: MUSICNFT_NFT_COLLECTIONS={','.join(r[0] for r in rows[:5])}")
    return 0


def register(sub: Subparsers) -> None:
    common = data_dir_option()
    p = sub.add_parser(
        "sales",
        parents=[common],
        help="NFT market sales → the lake's sales/ (OpenSea, or the demo's replay); "
        "`sales discover` lists top music collections",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--source",
        default="opensea",
        choices=["opensea", "replay"],
        help="opensea (API v2; needs OPENSEA_API_KEY) or replay (the seeded demo sample, or "
        "--file)",
    )
    p.add_argument(
        "--collections",
        metavar="A,B",
        help="collection slugs (default $MUSICNFT_NFT_COLLECTIONS)",
    )
    p.add_argument("--since", metavar="ISO", help="start of the range (UTC when no zone)")
    p.add_argument("--until", metavar="ISO", help="end of the range, exclusive (with --once)")
    p.add_argument(
        "--once", action="store_true", help="fetch [since, until) for each collection, then exit"
    )
    p.add_argument("--api-key-file", metavar="PATH", help="read the OpenSea API key from a file")
    p.add_argument(
        "--api-base",
        dest="opensea_api_base",
        metavar="URL",
        help="OpenSea API host (default $MUSICNFT_OPENSEA_API_BASE or https://api.opensea.io)",
    )
    p.add_argument("--file", metavar="PATH", help="replay: OpenSea sale events as JSON lines")
    p.add_argument(
        "--speed", default="max", metavar="max|N", help="replay: 'max' (default) or N× real time"
    )
    p.add_argument(
        "--restamp",
        action="store_true",
        help="replay: stamp each sale with the time it is replayed (a live-looking demo)",
    )
    p.add_argument(
        "--flush-seconds",
        type=float,
        default=5.0,
        metavar="S",
        help="replay: write a file at least this often (default 5)",
    )
    p.set_defaults(func=cmd_sales)
    sub_sales = p.add_subparsers(dest="sales_command", metavar="discover")
    d = sub_sales.add_parser(
        "discover", parents=[common], help="print OpenSea's top music collections"
    )
    d.add_argument("--category", default="music", help="OpenSea category (default music)")
    d.add_argument("--sort-by", default="one_day_volume", help="ranking (default one_day_volume)")
    d.add_argument("--limit", type=int, default=10, help="how many collections (default 10)")
    d.add_argument("--api-key-file", metavar="PATH", help="read the OpenSea API key from a file")
    d.add_argument(
        "--api-base",
        dest="opensea_api_base",
        metavar="URL",
        help="OpenSea API host (default $MUSICNFT_OPENSEA_API_BASE or https://api.opensea.io)",
    )
    d.add_argument("--no-stats", action="store_true", help="skip the per-collection stats calls")
    d.set_defaults(func=cmd_discover)
