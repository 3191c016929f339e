"""Cost of materializing one window when the lake holds 1 day vs 30 days of drops.

A window reads only the files that touch it (found through the `lake_files` index), so the ratio
should stay near 1. Drops: one file every 5 minutes (Firehose's interval), ~21 posts each (the
original dashboard's 256 posts/h).
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pyarrow.parquet as pq

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.batch import window_pipeline as wp
from musicnft.batch.backfill import index_lake
from musicnft.contract.lake_layout import raw_key
from musicnft.contract.schema import POST_SCHEMA, to_table
from musicnft.contract.windows import WINDOW
from musicnft.settings import DEFAULT_KEYWORDS

START = datetime(2021, 12, 1, tzinfo=UTC)
POSTS_PER_FILE = 21
KEYWORDS = [k.lower() for k in DEFAULT_KEYWORDS]


def _post(i: int, created: datetime) -> dict:
    return {
        "post_id": f"x:{i}",
        "platform": "x",
        "created_at": created,
        "ingested_at": created + timedelta(seconds=2),
        "text": f"New #NFT music drop {i} on OpenSea, loving it",
        "lang": "en",
        "author_id": str(i % 3000),
        "author_handle": f"user{i % 3000}",
        "author_followers": (i * 7919) % 100_000,
        "author_verified": False,
        "author_location": ["Berlin", "Lagos", None, "Seoul"][i % 4],
        "is_repost": i % 5 == 0,
        "reply_count": 0,
        "repost_count": i % 3,
        "like_count": i % 7,
        "quote_count": 0,
        "hashtags": ["nft", "music"],
        "mentions": [],
        "urls": [],
        "matched_keywords": ["music", "nft", "opensea"],
        "matching_rules": ["music-nft"],
        "schema_version": 1,
    }


def build_lake(root: Path, days: int) -> tuple[LocalLake, EmbeddedWarehouse]:
    lake = LocalLake(root / "lake")
    wh = EmbeddedWarehouse(root / "warehouse")
    i = 0
    hot = []
    for f in range(days * 24 * 12):
        arrival = START + timedelta(minutes=5 * f)
        rows = []
        for k in range(POSTS_PER_FILE):
            rows.append(_post(i, arrival - timedelta(seconds=300 - k * 14)))
            i += 1
        buf = BytesIO()
        pq.write_table(to_table(rows, POST_SCHEMA), buf)
        lake.put(raw_key("musicnft-posts", arrival), buf.getvalue())
        hot.extend(rows)
    index_lake(lake, wh)
    from musicnft.hotpath.consumer import enrich_rows

    enriched = enrich_rows(hot)
    for n in range(0, len(enriched), 20_000):
        chunk = enriched[n : n + 20_000]
        wh.insert_rows("posts_hot", chunk, [r["post_id"] for r in chunk])
    return lake, wh


def time_window(lake: LocalLake, wh: EmbeddedWarehouse, window: datetime, repeat: int = 5) -> float:
    return statistics.median(_window_rounds(lake, wh, window, repeat))


def _window_rounds(
    lake: LocalLake, wh: EmbeddedWarehouse, window: datetime, repeat: int
) -> list[float]:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        wp.build_posts(lake, wh, window)
        for table in wp.AGGREGATE_TABLES:
            wp.build_aggregate(wh, table, window, KEYWORDS)
        wp.reconcile(wh, window)
        samples.append(time.perf_counter() - t)
    return samples


ROUNDS = 7
DAY_WINDOWS = 24  # one chunk: what a run's step reads and writes at once


def time_windows(
    lake: LocalLake, wh: EmbeddedWarehouse, windows: list[datetime]
) -> tuple[float, float]:
    """(seconds one window at a time, seconds as one chunk) for the window steps over `windows`:
    the first is the baseline, what every run did before steps wrote their windows together."""
    t = time.perf_counter()
    for window in windows:
        wp.build_posts(lake, wh, window)
        for table in wp.AGGREGATE_TABLES:
            wp.build_aggregate(wh, table, window, KEYWORDS)
        wp.reconcile(wh, window)
    one_by_one = time.perf_counter() - t
    t = time.perf_counter()
    for chunk in wp.chunked(windows):
        wp.build_posts_windows(lake, wh, chunk)
        for table in wp.AGGREGATE_TABLES:
            wp.build_aggregates(wh, table, chunk, KEYWORDS)
        wp.reconcile_windows(wh, chunk)
    return one_by_one, time.perf_counter() - t


def main() -> None:
    """Both lakes are built first, then timed in alternating rounds (1 day, 30 days, 1 day, ...):
    the host's speed drifts by tens of percent over a minute here, and timing one lake's rounds
    a minute after the other's measured that drift as much as the lake (1.02 and 1.28 in two
    `make bench` runs an hour apart)."""
    window = START + timedelta(hours=12)
    samples: dict[int, list[float]] = {1: [], 30: []}
    with contextlib.ExitStack() as stack:
        lakes = {}
        for days in samples:
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            t = time.perf_counter()
            lakes[days] = build_lake(Path(tmp), days)
            print(f"  built a lake of {days} day(s) in {time.perf_counter() - t:.0f}s", flush=True)
        for lake, wh in lakes.values():
            _window_rounds(lake, wh, window, 1)  # warm: the first window's files and catalog
        for _ in range(ROUNDS):
            for days, (lake, wh) in lakes.items():
                samples[days] += _window_rounds(lake, wh, window, 1)
        hours = [START + timedelta(hours=6) + WINDOW * i for i in range(DAY_WINDOWS)]
        one_by_one, chunked = time_windows(*lakes[1], hours)
    one, thirty = statistics.median(samples[1]), statistics.median(samples[30])
    paired = statistics.median(b / a for a, b in zip(samples[1], samples[30], strict=True))
    print(f"window materialization, lake of 1 day     {one * 1000:8.0f} ms (baseline)")
    print(
        f"window materialization, lake of 30 days   {thirty * 1000:8.0f} ms "
        f"ratio to 1 day: {thirty / one:.2f} (median of {ROUNDS} alternating rounds each; "
        f"median ratio of a round's pair {paired:.2f}; target <= 1.2 and <= 2 s)"
    )
    print(f"{DAY_WINDOWS} windows, one at a time            {one_by_one * 1000:8.0f} ms (baseline)")
    print(
        f"{DAY_WINDOWS} windows, as one chunk             {chunked * 1000:8.0f} ms "
        f"ratio to one at a time: {chunked / one_by_one:.2f} (a run's steps write their windows "
        "together; the same rows, tests/batch/test_window_chunks.py)"
    )


if __name__ == "__main__":
    main()
