"""`cost`: the monthly bill per service and the capacity needed at 1×, 10×, 100× and 1,000× a
volume of posts per day, on paper (`musicnft.app.cost`, prices in `musicnft.app.prices`)."""

from __future__ import annotations

import argparse
import dataclasses
import json

from musicnft.app.cli.common import Subparsers
from musicnft.app.cost import (
    DAYS_PER_MONTH,
    TODAY_POSTS_PER_DAY,
    Assumptions,
    CostEstimate,
    Scale,
    monthly_cost,
    scale_table,
)
from musicnft.app.prices import PRICES

_HELP = """\
Monthly list-price cost per service (Kinesis on-demand, Firehose with Parquet conversion, Lambda,
S3, BigQuery streaming inserts, storage and queries, the X API's per-post price, the EC2 producer
host) and the capacity needed at 1x, 10x, 100x and 1,000x the volume.

Prices: musicnft/app/prices.py, one table with each price's value, unit, region (us-east-1; BigQuery
US), the date it was read and its source page; prices the search could not confirm are marked
'unverified' (a * in the output). No free tiers, no taxes, no data transfer out.

Assumptions (docs/cost.md): record sizes measured on the shipped sample (670-byte stream record,
828-byte posts_hot row, 116 bytes of Parquet per post + 8.7 KB per file); Kinesis bills each
record as 1 KB, Firehose as 5 KB (ingestion and conversion); two stream readers (Firehose,
Lambda); Lambda batch 100, 512 MB, 0.3 s + 2 ms per record (assumed); Firehose files every 300 s
or 64 MiB; each post stored twice in BigQuery (posts_hot, posts); every post read once from X;
one t3.small producer that sustains 5,750 posts/s x its 20% CPU baseline; bursts 13.4x the
average (the sample's busiest minute). Storage lines are a first month's average: the lake
and BigQuery grow by the month's data every month.
"""


def _usd(value: float) -> str:
    return f"{value:,.2f}"


def format_report(estimate: CostEstimate, scales: list[Scale]) -> str:
    posts_per_day = estimate.posts_per_day
    out = [
        f"musicnft cost: {posts_per_day:,.0f} posts/day ({posts_per_day * DAYS_PER_MONTH:,.0f} a"
        " month); monthly USD at list prices, no free tiers",
        "",
        f"{'service / item':<48} {'quantity':>24} {'USD/month':>12}",
    ]
    subtotals = estimate.by_service()
    seen: set[str] = set()
    for line in estimate.lines:
        if line.service not in seen:
            seen.add(line.service)
            out.append(f"{line.service:<73} {_usd(subtotals[line.service]):>12}")
        mark = "*" if not PRICES[line.price_key].verified else ""
        qty = f"{line.quantity:,.2f} {line.unit}"
        out.append(f"  {line.item + mark:<46} {qty:>24} {_usd(line.usd):>12}")
    out.append(f"{'total':<73} {_usd(estimate.total):>12}")
    out.append("* unverified price (see docs/cost.md and musicnft/app/prices.py)")
    a = estimate.assumptions
    out += [
        "",
        f"scale (peak = {a.peak_factor:g}x the average; Kinesis shard = 1 MB/s or 1,000 records/s"
        f" in; Lambda concurrency = shards x parallelization factor {a.parallelization_factor};"
        f" producer = {a.producer_posts_per_second:,.0f} posts/s x {a.producer_cpu_share:.0%}"
        " CPU baseline)",
        f"{'x':>6} {'posts/day':>14} {'peak/s':>9} {'peak KB/s':>10} {'shards':>7}"
        f" {'on-demand':>9} {'lambda':>7} {'par.f.':>7} {'producer':>9} {'X cap':>6}"
        f" {'X rate':>7}",
    ]
    for s in scales:
        out.append(
            f"{s.multiple:>5g}x {s.posts_per_day:>14,.0f} {s.peak_posts_per_second:>9,.1f}"
            f" {s.peak_write_bytes_per_second / 1000:>10,.1f} {s.shards_needed:>7}"
            f" {s.on_demand_shards:>9} {s.lambda_concurrency:>7}"
            f" {s.parallelization_factor_needed:>7} {s.producer_utilization:>9.1%}"
            f" {'ok' if s.x_within_cap else 'OVER':>6} {'ok' if s.x_within_stream_rate else 'OVER':>7}"
        )
    out += [
        "",
        "shards: shard-equivalents the peak write needs; on-demand: what the stream has (at least 4);",
        "lambda: concurrent invocations; par.f.: parallelization factor the peak needs",
        f"({estimate.assumptions.lambda_batch_size} records per batch,"
        f" {scales[0].lambda_records_per_second_per_shard:,.0f} records/s per shard at factor 1)"
        "; producer: peak load of one host; X cap: 3 M reads/month; X rate: 250 posts/s delivered.",
    ]
    return "\n".join(out)


def cmd_cost(args: argparse.Namespace) -> int:
    assumptions = Assumptions(
        producer_posts_per_second=args.producer_posts_per_second,
        peak_factor=args.peak_factor,
    )
    estimate = monthly_cost(args.posts_per_day, assumptions)
    scales = scale_table(args.posts_per_day, assumptions)
    if args.json:
        doc = {
            **estimate.to_dict(),
            "scale": [dataclasses.asdict(s) for s in scales],
            "prices": {
                k: {**dataclasses.asdict(p), "verified": p.verified} for k, p in PRICES.items()
            },
        }
        print(json.dumps(doc, indent=2, allow_nan=False))
    else:
        print(format_report(estimate, scales))
    return 0


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "cost",
        help="monthly cost per service and capacity at 1x-1,000x the volume, on paper",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--posts-per-day",
        type=_non_negative,
        default=float(TODAY_POSTS_PER_DAY),
        metavar="N",
        help=f"posts a day (default {TODAY_POSTS_PER_DAY:,}: today's ~256 an hour); the scale"
        " table multiplies it by 10, 100 and 1,000",
    )
    p.add_argument(
        "--producer-posts-per-second",
        type=_positive,
        default=5_750.0,
        metavar="R",
        help="posts/s one producer process sustains on 2 full cores (default 5750, issue #14)",
    )
    p.add_argument(
        "--peak-factor",
        type=_positive,
        default=13.4,
        metavar="F",
        help="peak rate over the average for sizing (default 13.4: the sample's busiest minute)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_cost)
