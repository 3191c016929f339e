"""A run recomputes its windows a chunk at a time (one read and one write per step and chunk,
`musicnft.batch.window_pipeline.chunked`): every table it leaves, every check and every
reconciliation count must be exactly what recomputing the same windows one by one gives, while
the number of warehouse commits no longer grows with the number of windows.

The case is made hard on purpose: the sample lake's drops straddle windows and a late drop
re-delivers posts; `posts_hot` misses some posts, holds others twice and one the lake never had;
sales files hold sales of several windows, one read twice; the chunk skips a window in the
middle (a sensor run names the windows it wants, not a range)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.batch import sales as bs
from musicnft.batch import window_pipeline as wp
from musicnft.batch.backfill import (
    WindowOutcome,
    index_lake,
    materialize_window,
    materialize_windows,
)
from musicnft.batch.window_sql import in_windows
from musicnft.contract.lake_layout import sales_key
from musicnft.contract.tables import TABLES, WINDOWED_TABLES
from musicnft.contract.windows import WINDOW, spans, window_start
from musicnft.hotpath.normalize_opensea import normalize_opensea_event
from tests.support.fake_opensea import WEI, sale_event
from tests.support.sample_lake import (
    KEYWORDS,
    SAMPLE_START,
    Lake,
    expected_posts,
    extra_post,
    hot_row,
)

pytestmark = pytest.mark.slow

VOLATILE = {"inserted_at", "updated_at", "checked_at", "repaired_at"}


def _sale(i: int, created: datetime, read: datetime, wei: int = WEI) -> dict[str, Any]:
    event = sale_event(i, "tapes", int(created.timestamp()), wei=wei)
    return normalize_opensea_event(event, "tapes", read)  # type: ignore[arg-type]


def _windows(lake: Lake) -> list[datetime]:
    return sorted({window_start(r["created_at"]) for r in lake.rows})


def _prepare(lake: Lake, root: Path, windows: list[datetime]) -> Path:
    """A copy of the sample lake and its indexed warehouse, with the hot path's mistakes and
    sales files added."""
    shutil.copytree(lake.lake_root, root / "lake")
    shutil.copytree(lake.base_warehouse, root / "warehouse")
    the_lake = LocalLake(root / "lake")
    wh = EmbeddedWarehouse(root / "warehouse")
    for n, window in enumerate(windows):
        posts = list(expected_posts(lake, window).values())
        kept = posts[n % 3 :]  # the hot path missed the first 0-2 posts of each window
        wh.insert_rows("posts_hot", [hot_row(p) for p in kept], [p["post_id"] for p in kept])
        if n % 2:  # and wrote two posts twice in every other one (a retry with new ids)
            twice = kept[:2]
            again = [p["post_id"] + "#again" for p in twice]
            wh.insert_rows("posts_hot", [hot_row(p) for p in twice], again)
    extra = extra_post(1, windows[1] + timedelta(minutes=3))  # a post the lake never had
    wh.insert_rows("posts_hot", [extra], [extra["post_id"]])
    # sales across windows: one read, then a re-read correcting a sale and adding one
    read1 = windows[-1] + timedelta(hours=1)
    first = [
        _sale(i, windows[i % len(windows)] + timedelta(minutes=i % 15), read1) for i in range(12)
    ]
    the_lake.put(sales_key("opensea", read1), bs.sales_parquet(first))
    read2 = read1 + timedelta(minutes=5)
    again = [
        _sale(0, windows[0], read2, wei=3 * WEI),
        _sale(99, windows[2] + timedelta(minutes=7), read2),
    ]
    the_lake.put(sales_key("opensea", read2), bs.sales_parquet(again))
    index_lake(the_lake, wh)
    wh.close()
    return root


def _tables(root: Path) -> dict[str, list[dict[str, Any]]]:
    wh = EmbeddedWarehouse(root / "warehouse", read_only=True)
    try:
        out = {}
        for table in sorted({*WINDOWED_TABLES, "posts_hot", "posts_hot_repairs"}):
            cols = [c for c in TABLES[table].names if c not in VOLATILE]
            out[table] = wh.query(f"SELECT {', '.join(cols)} FROM {table} ORDER BY ALL").to_pylist()
        return out
    finally:
        wh.close()


def _summary(outcome: WindowOutcome) -> tuple[Any, ...]:
    r, p, s = outcome.reconciliation, outcome.posts, outcome.sales
    assert s is not None
    return (
        outcome.window,
        outcome.checks,
        (r.lake_count, r.hot_count, r.missing, r.duplicates, r.repaired, r.hot_only),
        (r.after_missing, r.after_duplicates),
        (p.unique_posts, p.lake_rows, p.files_read),
        (s.sales, s.lake_rows, s.rows, s.files_read),
    )


def _snapshots(root: Path) -> int:
    from musicnft.adapters.ducklake_catalog import ALIAS

    wh = EmbeddedWarehouse(root / "warehouse")
    try:
        query = f"SELECT count(*) FROM ducklake_snapshots('{ALIAS}')"
        return int(wh.query(query, read_only=False).column(0)[0].as_py())
    finally:
        wh.close()


def test_a_chunk_of_windows_writes_exactly_what_one_window_at_a_time_writes(
    sample_lake: Lake, tmp_path: Path
) -> None:
    every = _windows(sample_lake)
    assert len(every) >= 6
    chosen = [w for i, w in enumerate(every[:7]) if i != 3]  # a gap in the middle
    base = _prepare(sample_lake, tmp_path / "base", every)
    one, chunk = tmp_path / "one", tmp_path / "chunk"
    shutil.copytree(base, one)
    shutil.copytree(base, chunk)

    # WHEN the windows are materialized one at a time in one copy, as one chunk in the other
    wh = EmbeddedWarehouse(one / "warehouse")
    singles = [materialize_window(LocalLake(one / "lake"), wh, w, KEYWORDS) for w in chosen]
    wh.close()
    before = _snapshots(chunk)
    wh = EmbeddedWarehouse(chunk / "warehouse")
    together = materialize_windows(LocalLake(chunk / "lake"), wh, chosen, KEYWORDS)
    wh.close()
    commits = _snapshots(chunk) - before

    # THEN every table holds the same rows, and every outcome is the same
    assert [_summary(o) for o in together] == [_summary(o) for o in singles]
    assert _tables(chunk) == _tables(one)
    # AND the case was a real one: repairs of both kinds, sales, the skipped window left alone
    assert sum(o.reconciliation.missing for o in together) > 0
    assert sum(o.reconciliation.duplicates for o in together) > 0
    assert sum(o.reconciliation.hot_only for o in together) == 1
    sold = {i for i in range(12) if every[i % len(every)] in chosen} | {99}  # sale 99: every[2]
    assert sum(o.sales.sales for o in together if o.sales) == len(sold)
    assert all(o.passed for o in together), [o.checks for o in together if not o.passed]
    posts = _tables(chunk)["posts"]
    assert not [p for p in posts if p["window_start"] == every[3]]
    # AND the chunk committed a fixed number of times, not a few times per window: one per
    # table step (posts, 3 aggregates, entity metrics, spikes, reconciliation, sales) and the
    # repairs (a note, then one insert per window that missed posts, one removal)
    missed = sum(1 for o in together if o.reconciliation.missing)
    assert commits <= 8 + 2 + missed, commits
    assert len(chosen) * 8 > commits


def test_chunks_are_sorted_unique_and_bounded() -> None:
    start = SAMPLE_START
    windows = [start + WINDOW * i for i in (5, 1, 3, 1, 0, 60, 61)]
    assert list(wp.chunked(windows, size=3)) == [
        [start, start + WINDOW, start + WINDOW * 3],
        [start + WINDOW * 5, start + WINDOW * 60, start + WINDOW * 61],
    ]
    assert list(wp.chunked([])) == []


def test_spans_join_consecutive_windows_only() -> None:
    start = SAMPLE_START
    windows = [start + WINDOW * i for i in (5, 1, 2, 1, 0, 60)]
    assert spans(windows) == [
        (start, start + WINDOW * 3),
        (start + WINDOW * 5, start + WINDOW * 6),
        (start + WINDOW * 60, start + WINDOW * 61),
    ]
    assert spans([]) == []


def test_a_multi_window_read_filters_on_ranges_the_warehouses_can_prune_with() -> None:
    start = SAMPLE_START
    condition, params = in_windows([start + WINDOW * i for i in (0, 1, 4)])
    assert condition == (
        "((window_start >= ? AND window_start < ?) OR (window_start >= ? AND window_start < ?))"
    )
    assert params == [start, start + WINDOW * 2, start + WINDOW * 4, start + WINDOW * 5]
    assert in_windows([], "created_at") == ("FALSE", [])
