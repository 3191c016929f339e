"""Every dashboard panel query over a year of 15-minute aggregates (issue #14 item 7: a median
under 300 ms each with 365 days; `--days N` for another span).

    python -m benchmarks.dashboard_queries [--days 365]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from dashboard import queries as q
from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.tables import (
    HASHTAG_COUNTS_SCHEMA,
    LOCATION_COUNTS_SCHEMA,
    WINDOW_METRICS_SCHEMA,
)
from musicnft.contract.windows import WINDOW

START = datetime(2021, 12, 1, tzinfo=UTC)
KEYWORDS = ["all", "music", "nft", "eth", "web3", "opensea"]
TAGS = [f"tag{i}" for i in range(200)]
PLACES = [f"place{i}" for i in range(80)]


def _window_tables(rnd: random.Random, w: datetime) -> dict[str, pa.Table]:
    metrics = [
        {
            "window_start": w, "keyword": k, "post_count": rnd.randint(20, 90),
            "unique_authors": 20, "avg_followers": rnd.uniform(10, 5000),
            "avg_sentiment": rnd.uniform(-1, 1), "positive_count": 10, "neutral_count": 5,
            "negative_count": 5, "total_engagement": rnd.randint(0, 50),
            "avg_engagement_rate": 0.5, "repost_share": 0.2, "updated_at": w + WINDOW,
        }
        for k in KEYWORDS
    ]  # fmt: skip
    tags = [
        {"window_start": w, "hashtag": t, "post_count": rnd.randint(1, 9)}
        for t in rnd.sample(TAGS, 30)
    ]
    places = [
        {"window_start": w, "location": p, "post_count": rnd.randint(1, 5)}
        for p in rnd.sample(PLACES, 25)
    ]
    return {
        "window_metrics_15m": pa.Table.from_pylist(metrics, schema=WINDOW_METRICS_SCHEMA),
        "hashtag_counts_15m": pa.Table.from_pylist(tags, schema=HASHTAG_COUNTS_SCHEMA),
        "location_counts_15m": pa.Table.from_pylist(places, schema=LOCATION_COUNTS_SCHEMA),
    }


def build(root: Path, days: int = 30) -> EmbeddedWarehouse:
    """`days` of windows in the steady state the assets and the maintenance job leave: older
    windows merged into few files per table, the last two hours one write per window. (Older
    windows go in a day per transaction, as a backfill would, so building takes seconds.)"""
    from benchmarks.warehouse import _load

    wh = EmbeddedWarehouse(root)
    _load(wh, days)
    return wh


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.dashboard_queries", description=__doc__
    )
    parser.add_argument("--days", type=int, default=365, help="days of aggregates (default 365)")
    days = parser.parse_args(argv).days
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        wh = build(Path(tmp) / "warehouse", days)
        print(f"  built {days} days of aggregates in {time.perf_counter() - t:.0f}s", flush=True)
        end = START + timedelta(days=days)
        start = START
        panels = {
            "freshness": lambda: q.freshness(wh),
            "summary": lambda: q.summary(wh, start, end),
            "summary (keyword)": lambda: q.summary(wh, start, end, "nft"),
            "hourly": lambda: q.hourly(wh, start, end),
            "keyword_volume": lambda: q.keyword_volume_frame(wh, start, end),  # as the page
            "top_hashtags": lambda: q.top_hashtags(wh, start, end),
            "top_locations": lambda: q.top_locations(wh, start, end),
        }
        for name, fn in panels.items():
            samples = []
            for _ in range(7):
                t = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t)
            median = statistics.median(samples) * 1000
            verdict = "ok" if median < 300 else "OVER 300 ms"
            print(
                f"dashboard query {name:<18} median {median:7.1f} ms  {verdict} "
                f"({days} days of aggregates, the whole span queried)"
            )


if __name__ == "__main__":
    main()
