"""The embedded warehouse (DuckLake): posts_hot insert rate, window replacement time and dashboard
query medians, each next to a floor measured in the same run.

Floors: writing the same batch as one plain Parquet file (what any table format pays at least),
and the same dashboard SQL over the same rows held in an in-memory DuckDB table (no catalog, no
files). `--old PATH` also runs the figures on another implementation of the class (e.g. the
pre-DuckLake one: `git show <rev>:musicnft/adapters/embedded_warehouse.py > /tmp/old_wh.py`).

    python -m benchmarks.warehouse [--days 30] [--old /tmp/old_wh.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.dashboard_queries import START, _window_tables
from dashboard import queries as q
from musicnft.contract.schema import ENRICHED_FIELDS, conform
from musicnft.contract.tables import TABLES
from musicnft.contract.windows import WINDOW, window_key
from musicnft.hotpath.enrich import enrich

BATCH = 100


def _posts(n: int) -> list[dict]:
    out = []
    for i in range(n):
        post = {
            "post_id": f"x:{i}",
            "platform": "x",
            "created_at": "2021-12-01T00:00:00Z",
            "ingested_at": "2021-12-01T00:00:01Z",
            "text": f"post {i} about #NFT music on OpenSea",
            "author_followers": i % 5000,
            "like_count": i % 7,
            "schema_version": 1,
        }
        out.append(conform(enrich(conform(post)), ENRICHED_FIELDS))
    return out


def _median(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def _load(wh: Any, days: int) -> None:
    """`days` of aggregates in the steady state the assets leave: older windows merged, the
    last two hours one write per window."""
    rnd = random.Random(1)
    total = days * 96
    per_day: dict[str, list[pa.Table]] = {}
    ducklake = hasattr(wh, "maintain")
    for n in range(total - 8):
        for table, data in _window_tables(rnd, START + n * WINDOW).items():
            if ducklake:  # bulk: a day per transaction, as a backfill writes
                per_day.setdefault(table, []).append(data)
            else:
                wh.replace_partition(table, window_key(START + n * WINDOW), data)
        if ducklake and (n % 96 == 95 or n == total - 9):
            for table, parts in per_day.items():
                wh.append(table, pa.concat_tables(parts))
            per_day.clear()
    if ducklake:
        wh.maintain(retention=timedelta(0))
    else:
        for table in ("window_metrics_15m", "hashtag_counts_15m", "location_counts_15m"):
            wh.compact_windows(table, min_files=1)
    for n in range(total - 8, total):
        for table, data in _window_tables(rnd, START + n * WINDOW).items():
            wh.replace_partition(table, window_key(START + n * WINDOW), data)


def measure(cls: type, days: int) -> dict[str, float]:
    """Figures for one implementation of `EmbeddedWarehouse`."""
    out: dict[str, float] = {}
    posts = _posts(50 * BATCH)
    with tempfile.TemporaryDirectory() as tmp:
        wh = cls(Path(tmp) / "hot")
        t = time.perf_counter()
        for i in range(0, len(posts), BATCH):
            chunk = posts[i : i + BATCH]
            wh.insert_rows("posts_hot", chunk, [r["post_id"] for r in chunk])
        out["insert_rows_per_s"] = len(posts) / (time.perf_counter() - t)
        wh = cls(Path(tmp) / "agg")
        t = time.perf_counter()
        _load(wh, days)
        out["build_s"] = time.perf_counter() - t
        rnd = random.Random(2)
        windows = [START + rnd.randrange(days * 96) * WINDOW for _ in range(15)]
        it = iter(windows)

        def replace_one() -> None:
            w = next(it)
            data = _window_tables(rnd, w)["window_metrics_15m"]
            wh.replace_partition("window_metrics_15m", window_key(w), data)

        out["replace_window_ms"] = _median(replace_one, len(windows)) * 1000
        for name, fn in _panels(wh, days).items():
            out[f"dashboard {name} ms"] = _median(fn, 7) * 1000
    return out


def _panels(wh: Any, days: int) -> dict[str, Callable[[], object]]:
    start, end = START, START + timedelta(days=days)
    return {
        "freshness": lambda: q.freshness(wh),
        "summary": lambda: q.summary(wh, start, end),
        "hourly": lambda: q.hourly(wh, start, end),
        "keyword_volume": lambda: q.keyword_volume(wh, start, end),
        "top_hashtags": lambda: q.top_hashtags(wh, start, end),
        "top_locations": lambda: q.top_locations(wh, start, end),
    }


class _MemoryWarehouse:
    """The floor for queries: the same tables as in-memory DuckDB tables."""

    def __init__(self, wh: Any) -> None:
        from musicnft.adapters.embedded_warehouse import DuckDBDialect

        self.dialect = DuckDBDialect()
        self.con = duckdb.connect()
        for table in TABLES:
            data = wh.query(f"SELECT * FROM {table}")
            self.con.register("_t", data)
            self.con.execute(f"CREATE TABLE {table} AS SELECT * FROM _t")
            self.con.unregister("_t")

    def query(self, sql: str, params: Any = None, read_only: bool = True) -> pa.Table:
        return self.con.execute(sql, params).to_arrow_table()


def floors(days: int) -> dict[str, float]:
    from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse

    out: dict[str, float] = {}
    posts = pa.Table.from_pylist(_posts(50 * BATCH), schema=TABLES["posts_hot"])
    with tempfile.TemporaryDirectory() as tmp:

        def write_all() -> None:
            for i in range(0, posts.num_rows, BATCH):
                buf = BytesIO()
                pq.write_table(posts.slice(i, BATCH), buf, compression="zstd")
                (Path(tmp) / f"{i}.parquet").write_bytes(buf.getvalue())

        t = time.perf_counter()
        write_all()
        out["insert_rows_per_s"] = posts.num_rows / (time.perf_counter() - t)
        rnd = random.Random(2)
        data = _window_tables(rnd, START)["window_metrics_15m"]

        def write_window() -> None:
            pq.write_table(data, Path(tmp) / "w.parquet", compression="zstd")

        out["replace_window_ms"] = _median(write_window, 15) * 1000
        wh = EmbeddedWarehouse(Path(tmp) / "agg")
        _load(wh, days)
        mem = _MemoryWarehouse(wh)
        for name, fn in _panels(mem, days).items():
            out[f"dashboard {name} ms"] = _median(fn, 7) * 1000
    return out


def _load_class(path: str) -> type:
    spec = importlib.util.spec_from_file_location("old_embedded_warehouse", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EmbeddedWarehouse


def main(days: int = 30, old: str | None = None) -> None:
    from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse

    floor = floors(days)
    now = measure(EmbeddedWarehouse, days)
    before = measure(_load_class(old), days) if old else None
    print(
        f"embedded warehouse (DuckLake), {days} days of aggregates (built in {now['build_s']:.0f}s)"
    )
    for key, value in now.items():
        if key == "build_s":
            continue
        ratio = value / floor[key]
        line = f"  {key:<32} {value:10,.1f}   ratio to floor ({floor[key]:,.1f}): {ratio:6.2f}"
        if before:
            line += f"   before: {before[key]:10,.1f}"
        print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.warehouse", description=__doc__)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--old", help="a file defining the previous EmbeddedWarehouse")
    args = parser.parse_args()
    main(args.days, args.old)
