"""DuckLake (the embedded warehouse) beside Delta Lake (delta-rs) on the warehouse's own work, the
measurement issue #21 asked the table format to be picked by (docs/warehouse.md, "Why DuckLake").

Each figure on the same rows, same machine, same run:
- hot-path inserts: posts_hot batches of 100 and of 5,000 rows (rows/s);
- concurrent writers: 3 processes appending 40 batches of 100 each at once: rows landed (must be
  every one, once) and wall time;
- a window replacement: one window's rows swapped in one atomic commit, on a table holding 30 days
  of windows (median ms);
- compaction of the small files the inserts left (s), and a dashboard-shaped aggregate over the
  table read through DuckDB afterwards (median ms).

    python -m benchmarks.table_formats [--batches 50]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from musicnft.contract.tables import POSTS_HOT_SCHEMA, WINDOW_METRICS_SCHEMA
from musicnft.contract.windows import WINDOW, window_key

START = datetime(2024, 1, 1, tzinfo=UTC)


def _posts(n: int, offset: int = 0) -> pa.Table:
    rows = [
        {
            "post_id": f"x:{offset + i}",
            "platform": "x",
            "created_at": START + timedelta(seconds=offset + i),
            "ingested_at": START + timedelta(seconds=offset + i),
            "text": f"music nft drop {offset + i} on opensea",
            "author_id": str(i % 997),
            "like_count": i % 50,
            "hashtags": ["nft", "music"],
            "sentiment_compound": 0.5,
            "sentiment_label": "positive",
            "schema_version": 1,
            "inserted_at": START,
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=POSTS_HOT_SCHEMA)


def _window_rows(window: datetime, version: int = 0) -> pa.Table:
    rows = [
        {
            "window_start": window,
            "keyword": k,
            "post_count": 10 + version,
            "unique_authors": 5,
            "avg_followers": 100.0,
            "avg_sentiment": 0.1,
            "positive_count": 4,
            "neutral_count": 3,
            "negative_count": 3,
            "total_engagement": 20,
            "avg_engagement_rate": 1.0,
            "repost_share": 0.1,
            "updated_at": START,
        }
        for k in ("all", "music", "nft", "eth", "web3", "opensea")
    ]
    return pa.Table.from_pylist(rows, schema=WINDOW_METRICS_SCHEMA)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _concurrently(target: Callable[[str, int, int], None], path: str) -> tuple[float, int]:
    """Three writer processes (spawned: delta-rs's runtime does not survive a fork) appending
    40 batches of 100 each: (wall seconds, writers that failed)."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=(path, w, 40)) for w in range(3)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return time.perf_counter() - start, sum(1 for p in procs if p.exitcode != 0)


# ---- Delta Lake ---------------------------------------------------------------------------------
def _delta_append(path: str, worker: int, batches: int) -> None:
    from deltalake import write_deltalake

    for b in range(batches):
        offset = 1_000_000 * (worker + 1) + b * 100
        write_deltalake(path, _posts(100, offset), mode="append")


def delta(root: Path, batches: int) -> dict[str, float]:
    from deltalake import DeltaTable, write_deltalake

    out: dict[str, float] = {}
    hot = str(root / "posts_hot")
    write_deltalake(hot, _posts(1), mode="append")
    small = [_posts(100, 10_000 + i * 100) for i in range(batches)]
    out["insert_100"] = (
        100 * batches / _timed(lambda: [write_deltalake(hot, t, mode="append") for t in small])
    )
    big = [_posts(5000, 1_000_000 + i * 5000) for i in range(4)]
    out["insert_5000"] = 20_000 / _timed(
        lambda: [write_deltalake(hot, t, mode="append") for t in big]
    )
    conc = str(root / "concurrent")
    write_deltalake(conc, _posts(1, 999_999_999), mode="append")
    out["concurrent_s"], out["concurrent_failed"] = _concurrently(_delta_append, conc)
    table = DeltaTable(conc).to_pyarrow_table(columns=["post_id"])
    out["concurrent_rows"] = table.num_rows - 1
    out["concurrent_unique"] = len(set(table.column(0).to_pylist())) - 1
    windows = str(root / "window_metrics_15m")
    days = [START + i * WINDOW for i in range(30 * 96)]
    write_deltalake(windows, pa.concat_tables([_window_rows(w) for w in days]), mode="append")
    samples = []
    for i in range(9):
        w = days[len(days) // 2 + i]
        predicate = f"window_start = '{w.isoformat()}'"
        samples.append(
            _timed(
                lambda w=w, p=predicate: write_deltalake(
                    windows, _window_rows(w, 1), mode="overwrite", predicate=p
                )
            )
        )
    out["replace_ms"] = statistics.median(samples) * 1000
    out["compact_s"] = _timed(lambda: DeltaTable(hot).optimize.compact())
    dataset = DeltaTable(windows).to_pyarrow_dataset()
    con = duckdb.connect()
    con.register("window_metrics_15m", dataset)
    out["query_ms"] = _query_median(con)
    return out


# ---- DuckLake (the embedded warehouse) -----------------------------------------------------------
def _ducklake_append(root: str, worker: int, batches: int) -> None:
    from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse

    wh = EmbeddedWarehouse(Path(root))
    for b in range(batches):
        t = _posts(100, 1_000_000 * (worker + 1) + b * 100)
        wh.append("posts_hot", t)


def ducklake(root: Path, batches: int) -> dict[str, float]:
    from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse

    out: dict[str, float] = {}
    wh = EmbeddedWarehouse(root / "wh")
    wh.append("posts_hot", _posts(1))
    small = [_posts(100, 10_000 + i * 100) for i in range(batches)]
    out["insert_100"] = 100 * batches / _timed(lambda: [wh.append("posts_hot", t) for t in small])
    big = [_posts(5000, 1_000_000 + i * 5000) for i in range(4)]
    out["insert_5000"] = 20_000 / _timed(lambda: [wh.append("posts_hot", t) for t in big])
    conc = root / "concurrent"
    EmbeddedWarehouse(conc).append("posts_hot", _posts(1, 999_999_999))
    out["concurrent_s"], out["concurrent_failed"] = _concurrently(_ducklake_append, str(conc))
    ids = EmbeddedWarehouse(conc).query("SELECT post_id FROM posts_hot").column(0).to_pylist()
    out["concurrent_rows"] = len(ids) - 1
    out["concurrent_unique"] = len(set(ids)) - 1
    days = [START + i * WINDOW for i in range(30 * 96)]
    wh.append("window_metrics_15m", pa.concat_tables([_window_rows(w) for w in days]))
    middle = days[len(days) // 2 : len(days) // 2 + 9]
    samples = [
        _timed(
            lambda w=w: wh.replace_partition(
                "window_metrics_15m", window_key(w), _window_rows(w, 1)
            )
        )
        for w in middle
    ]
    out["replace_ms"] = statistics.median(samples) * 1000
    out["compact_s"] = _timed(lambda: wh.maintain())
    samples = []
    for _ in range(9):
        start = time.perf_counter()
        wh.query(QUERY, [START, START + timedelta(days=30)])
        samples.append(time.perf_counter() - start)
    out["query_ms"] = statistics.median(samples) * 1000
    return out


QUERY = (
    "SELECT date_trunc('hour', window_start) AS hour, sum(post_count) AS posts, "
    "sum(avg_sentiment * post_count) / nullif(sum(post_count), 0) AS sentiment "
    "FROM window_metrics_15m WHERE keyword = 'all' AND window_start >= ? AND window_start < ? "
    "GROUP BY 1 ORDER BY 1"
)


def _query_median(con: duckdb.DuckDBPyConnection) -> float:
    samples = []
    for _ in range(9):
        start = time.perf_counter()
        con.execute(QUERY, [START, START + timedelta(days=30)]).fetchall()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main(batches: int = 50) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = delta(Path(tmp) / "delta", batches)
        k = ducklake(Path(tmp) / "ducklake", batches)
    rows = [
        ("posts_hot insert, batches of 100", "insert_100", "rows/s", "{:,.0f}"),
        ("posts_hot insert, batches of 5,000", "insert_5000", "rows/s", "{:,.0f}"),
        ("3 concurrent writers x 4,000 rows", "concurrent_s", "s", "{:.1f}"),
        ("  rows landed (12,000 expected)", "concurrent_rows", "", "{:,.0f}"),
        ("  distinct ids landed", "concurrent_unique", "", "{:,.0f}"),
        ("  writers that failed", "concurrent_failed", "", "{:,.0f}"),
        ("window replace (one commit), 30 days", "replace_ms", "ms", "{:.0f}"),
        ("compaction of the small files", "compact_s", "s", "{:.2f}"),
        ("dashboard aggregate, 30 days", "query_ms", "ms", "{:.1f}"),
    ]
    print(f"{'table formats':40} {'DuckLake':>12} {'Delta Lake':>12}  unit")
    for label, key, unit, fmt in rows:
        print(f"{label:40} {fmt.format(k[key]):>12} {fmt.format(d[key]):>12}  {unit}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.table_formats", description=__doc__)
    parser.add_argument("--batches", type=int, default=50)
    main(parser.parse_args().batches)
