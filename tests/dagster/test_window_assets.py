"""The windowed Dagster assets over a real lake and warehouse built from a generated sample.

The lake is built once per module: ~3,000 sample lines normalized, the re-deliveries the sample
contains given a later ingest (and fresher like counts, so "latest ingest wins" is visible), cut
into Firehose-like drops that straddle window boundaries, plus one late drop that re-delivers posts
of the target window from a much later hour folder. Expectations are computed independently from
the Parquet files themselves; every test materializes into its own copy of the warehouse.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.batch import window_pipeline as wp
from musicnft.contract.tables import POSTS_HOT_SCHEMA, WINDOWED_TABLES
from musicnft.contract.windows import WINDOW, parse_window_key
from musicnft_dagster.assets.windows import WINDOW_ASSETS
from musicnft_dagster.partitions import day_key
from musicnft_dagster.resources import (
    EmbeddedWarehouseResource,
    LocalLakeResource,
    PipelineResource,
)
from musicnft_dagster.windows import window_run
from tests.support.sample_lake import (
    ASSET_NAMES,
    CHECKS,
    EMPTY_KEY,
    KEY,
    KEYWORDS,
    VOLATILE,
    WINDOW_START,
    Lake,
    expected_posts,
    extra_post,
    hot_row,
    in_window,
)

pytestmark = pytest.mark.slow
# Per-day metadata every window asset adds to its materializations (rows written, windows run).
DAY_KEYS = {"dagster/row_count", "rows", "windows"}


@pytest.fixture
def warehouse_root(sample_lake: Lake, tmp_path: Path) -> Path:
    target = tmp_path / "warehouse"
    shutil.copytree(sample_lake.base_warehouse, target)
    return target


def resources(lake: Lake, warehouse: Path) -> dict[str, object]:
    return {
        "lake": LocalLakeResource(root=str(lake.lake_root)),
        "warehouse": EmbeddedWarehouseResource(root=str(warehouse)),
        "pipeline": PipelineResource(keywords=KEYWORDS),
    }


def materialize(
    lake: Lake, warehouse: Path, key: str = KEY, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """A run of the window's day partition, narrowed to the window (as the sensor asks)."""
    return dg.materialize(
        WINDOW_ASSETS,
        **window_run(key),
        resources=resources(lake, warehouse),
        raise_on_error=raise_on_error,
    )


# ---------------------------------------------------------------------------------------------
# Independent expectations and readers
# ---------------------------------------------------------------------------------------------


def query(warehouse: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    return EmbeddedWarehouse(warehouse).query(sql, params).to_pylist()


def window_rows(warehouse: Path, table: str, window: datetime = WINDOW_START) -> list[dict]:
    return query(warehouse, f"SELECT * FROM {table} WHERE window_start = ?", [window])


def hot_counts(warehouse: Path, window: datetime = WINDOW_START) -> Counter[str]:
    rows = query(
        warehouse,
        "SELECT post_id FROM posts_hot WHERE created_at >= ? AND created_at < ?",
        [window, window + WINDOW],
    )
    return Counter(r["post_id"] for r in rows)


def snapshot(warehouse: Path, window: datetime = WINDOW_START) -> dict[str, list[dict]]:
    """Every row of the five windowed tables (and posts_hot) for the window, minus timestamps
    of when they were computed, in a stable order."""
    out: dict[str, list[dict]] = {}
    for table in WINDOWED_TABLES:
        rows = [
            {k: v for k, v in r.items() if k not in VOLATILE}
            for r in window_rows(warehouse, table, window)
        ]
        out[table] = sorted(rows, key=repr)
    hot = query(
        warehouse,
        "SELECT * FROM posts_hot WHERE created_at >= ? AND created_at < ?",
        [window, window + WINDOW],
    )
    out["posts_hot"] = sorted(hot, key=repr)
    return out


def materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """asset name -> its materialization metadata (plain values)."""
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        f"{e.asset_key.to_user_string()}.{e.check_name}": e
        for e in result.get_asset_check_evaluations()
    }


def meta(evaluation: dg.AssetCheckEvaluation) -> dict[str, Any]:
    return {k: v.value for k, v in evaluation.metadata.items()}


# ---------------------------------------------------------------------------------------------
# One materialization of the target window, inspected by several tests
# ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    result: dg.ExecuteInProcessResult
    warehouse: Path


@pytest.fixture(scope="module")
def run(sample_lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> Run:
    warehouse = tmp_path_factory.mktemp("run") / "warehouse"
    shutil.copytree(sample_lake.base_warehouse, warehouse)
    return Run(materialize(sample_lake, warehouse), warehouse)


def test_the_sample_lake_exercises_what_the_window_must_handle(sample_lake: Lake) -> None:
    # GIVEN the target window, THEN the lake really has what the tests below rely on
    rows = [r for r in sample_lake.rows if in_window(r["created_at"])]
    ids = Counter(r["post_id"] for r in rows)
    assert len(ids) >= 150
    assert sum(n - 1 for n in ids.values()) >= 15  # duplicate post ids in the lake
    touching = [
        k
        for k, (lo, hi, _) in sample_lake.file_ranges.items()
        if lo < WINDOW_START + WINDOW and hi >= WINDOW_START
    ]
    straddling = [
        k
        for k in touching
        if not (
            in_window(sample_lake.file_ranges[k][0]) and in_window(sample_lake.file_ranges[k][1])
        )
    ]
    assert len(touching) >= 3 and straddling
    assert any(k.startswith("raw/2021/12/01/06/") for k in touching)  # the late drop


def test_every_asset_materializes_and_every_check_passes(sample_lake: Lake, run: Run) -> None:
    result = run.result
    assert result.success
    mats = materialized(result)
    assert set(mats) == ASSET_NAMES
    evaluations = checks(result)
    assert set(evaluations) == CHECKS
    assert {name: e.passed for name, e in evaluations.items()} == dict.fromkeys(CHECKS, True)
    for evaluation in evaluations.values():
        assert evaluation.partition == day_key(WINDOW_START)

    # posts: row counts and files read, against the lake files themselves
    expected = expected_posts(sample_lake)
    lake_rows = [r for r in sample_lake.rows if in_window(r["created_at"])]
    files = [
        k
        for k, (lo, hi, _) in sample_lake.file_ranges.items()
        if lo < WINDOW_START + WINDOW and hi >= WINDOW_START
    ]
    posts_meta = mats["posts"]
    assert posts_meta["posts"] == len(expected)
    assert posts_meta["lake_rows"] == len(lake_rows)
    assert posts_meta["duplicates_in_lake"] == len(lake_rows) - len(expected) > 0
    assert posts_meta["files_read"] == len(files)
    assert sorted(posts_meta["files"]) == sorted(files)
    assert meta(evaluations["posts.post_id_unique"]) == {
        "duplicate_rows": 0,
        "failed_windows": 0,
        "failures": [],
    }

    # aggregates: row counts
    tags = {t for p in expected.values() for t in p["hashtags"]}
    locations = {(p["author_location"] or "").strip() for p in expected.values()} - {""}
    assert mats["window_metrics_15m"]["rows"] == 1 + len(KEYWORDS)
    assert mats["hashtag_counts_15m"]["rows"] == len(tags) > 0
    assert mats["location_counts_15m"]["rows"] == len(locations) > 0

    # reconciliation: posts_hot was empty, so every lake post was missing and got inserted
    recon = {k: v for k, v in mats["reconciliation_15m"].items() if k not in DAY_KEYS}
    n = len(expected)
    assert recon == {
        "lake_count": n,
        "hot_count": 0,
        "missing": n,
        "duplicates": 0,
        "repaired": n,
        "hot_only": 0,
    }


def test_posts_are_the_windows_unique_posts_latest_ingest_enriched(
    sample_lake: Lake, run: Run
) -> None:
    expected = expected_posts(sample_lake)
    stored = window_rows(run.warehouse, "posts")
    # THEN exactly the unique post ids created in [window, window + 15 min), once each
    assert sorted(r["post_id"] for r in stored) == sorted(expected)
    # AND each row is the latest ingest, enriched as the hot path enriches it
    by_id = {r["post_id"]: r for r in stored}
    for pid, want in expected.items():
        got = dict(by_id[pid])
        assert got.pop("inserted_at") is not None  # when the window was written
        assert got == {k: v for k, v in want.items() if k != "inserted_at"}, pid
    # the re-delivered copies (fresher like counts) won over the first ones
    redelivered = [r for r in stored if (r["like_count"] or 0) >= 1000]
    assert len(redelivered) >= 15
    assert all(r["reply_count"] == 7 for r in stored if r["like_count"] >= 5000)
    # AND no other window was written
    others = query(
        run.warehouse, "SELECT count(*) AS n FROM posts WHERE window_start <> ?", [WINDOW_START]
    )
    assert others == [{"n": 0}]


def test_aggregates_agree_with_the_posts(sample_lake: Lake, run: Run) -> None:
    posts = list(expected_posts(sample_lake).values())
    metrics = {r["keyword"]: r for r in window_rows(run.warehouse, "window_metrics_15m")}
    # one `all` row plus one per keyword
    assert sorted(metrics) == sorted(["all", *KEYWORDS])
    everything = metrics["all"]
    assert everything["post_count"] == len(posts)
    for row in metrics.values():
        assert (
            row["positive_count"] + row["neutral_count"] + row["negative_count"]
            == (row["post_count"])
        )
    # per keyword: the posts matching it
    matching = {k: [p for p in posts if k in p["matched_keywords"]] for k in KEYWORDS}
    for keyword, matched in matching.items():
        row = metrics[keyword]
        assert row["post_count"] == len(matched), keyword
        labels = Counter(p["sentiment_label"] for p in matched)
        assert (row["positive_count"], row["neutral_count"], row["negative_count"]) == (
            labels["positive"],
            labels["neutral"],
            labels["negative"],
        )
    assert sum(metrics[k]["post_count"] for k in KEYWORDS) == sum(
        len(set(p["matched_keywords"]) & set(KEYWORDS)) for p in posts
    )
    # the `all` row's other columns, computed independently
    labels = Counter(p["sentiment_label"] for p in posts)
    followers = [p["author_followers"] for p in posts if p["author_followers"] is not None]
    rates = [p["engagement_rate"] for p in posts if p["engagement_rate"] is not None]
    counts = ("reply_count", "repost_count", "like_count", "quote_count")
    assert everything["positive_count"] == labels["positive"]
    assert everything["negative_count"] == labels["negative"]
    assert everything["unique_authors"] == len({p["author_id"] for p in posts if p["author_id"]})
    assert everything["avg_followers"] == pytest.approx(sum(followers) / len(followers))
    assert everything["avg_sentiment"] == pytest.approx(
        sum(p["sentiment_compound"] for p in posts) / len(posts)
    )
    assert everything["total_engagement"] == sum(
        p[c] for p in posts for c in counts if p[c] and p[c] > 0
    )
    assert everything["avg_engagement_rate"] == pytest.approx(sum(rates) / len(rates))
    assert everything["repost_share"] == pytest.approx(
        sum(1 for p in posts if p["is_repost"]) / len(posts)
    )
    assert everything["window_start"] == WINDOW_START

    # hashtags: posts per tag (a post counts once per distinct tag)
    tag_counts = Counter(t for p in posts for t in set(p["hashtags"]))
    stored_tags = {
        r["hashtag"]: r["post_count"] for r in window_rows(run.warehouse, "hashtag_counts_15m")
    }
    assert stored_tags == dict(tag_counts)
    # locations: posts per trimmed, non-empty profile location
    loc_counts = Counter(
        p["author_location"].strip() for p in posts if (p["author_location"] or "").strip()
    )
    stored_locs = {
        r["location"]: r["post_count"] for r in window_rows(run.warehouse, "location_counts_15m")
    }
    assert stored_locs == dict(loc_counts)
    assert sum(stored_locs.values()) <= len(posts)


# ---------------------------------------------------------------------------------------------
# Idempotency, reconciliation, blocking checks, an empty window
# ---------------------------------------------------------------------------------------------


def test_rematerializing_a_window_leaves_identical_tables(
    sample_lake: Lake, warehouse_root: Path
) -> None:
    # GIVEN a hot path that wrote every post of the window exactly once
    expected = expected_posts(sample_lake)
    EmbeddedWarehouse(warehouse_root).insert_rows(
        "posts_hot", [hot_row(p) for p in expected.values()], list(expected)
    )
    # WHEN the window is materialized twice
    first = materialize(sample_lake, warehouse_root)
    before = snapshot(warehouse_root)
    files_before = {t: len(EmbeddedWarehouse(warehouse_root).files(t)) for t in WINDOWED_TABLES}
    second = materialize(sample_lake, warehouse_root)
    after = snapshot(warehouse_root)
    # THEN both succeed and every table holds the same rows (one file per window and table)
    assert first.success and second.success
    assert after == before
    # (each write is a new version of the window's file, replacing the previous one)
    files_after = {t: len(EmbeddedWarehouse(warehouse_root).files(t)) for t in WINDOWED_TABLES}
    # (the tables these assets write; others, e.g. nft_sales_15m, have their own assets)
    written = [t for t in WINDOWED_TABLES if t in ASSET_NAMES]
    assert {t: files_after[t] for t in written} == {t: files_before[t] for t in written}
    assert {t: files_after[t] for t in written} == dict.fromkeys(written, 1)
    assert len(before["posts"]) == len(expected)
    assert before["reconciliation_15m"] == [
        {
            "window_start": WINDOW_START,
            "lake_count": len(expected),
            "hot_count": len(expected),
            "missing": 0,
            "duplicates": 0,
            "repaired": 0,
        }
    ]


@dataclass
class HotPath:
    gaps: list[str]  # lake posts the hot path missed
    extra_copies: int  # rows beyond the first copy of duplicated posts
    hot_only: str  # a post only the hot path has
    neighbour: str  # a post of the next window, written twice


def write_faulty_hot_path(sample_lake: Lake, warehouse: Path) -> HotPath:
    expected = expected_posts(sample_lake)
    ids = sorted(expected)
    gaps = ids[::9]
    present = [pid for pid in ids if pid not in gaps]
    twice = present[1::5]
    thrice = present[2]
    hot_only = extra_post(1, WINDOW_START + timedelta(minutes=7))
    next_window = expected_posts(sample_lake, WINDOW_START + WINDOW)
    neighbour = hot_row(next(iter(next_window.values())))
    rows = [hot_row(expected[pid]) for pid in present] + [hot_only, neighbour]
    # the hot path's streaming inserts...
    result = EmbeddedWarehouse(warehouse).insert_rows(
        "posts_hot", rows, [r["post_id"] for r in rows]
    )
    assert result.inserted == len(rows)
    # ...and the redeliveries that slipped past its insert-id cache, in two later files
    EmbeddedWarehouse(warehouse).append(
        "posts_hot",
        pa.Table.from_pylist(
            [hot_row(expected[pid]) for pid in [*twice, thrice]] + [neighbour],
            schema=POSTS_HOT_SCHEMA,
        ),
    )
    EmbeddedWarehouse(warehouse).append(
        "posts_hot", pa.Table.from_pylist([hot_row(expected[thrice])], schema=POSTS_HOT_SCHEMA)
    )
    extra = len(twice) + 2
    counts = hot_counts(warehouse)
    assert sum(counts.values()) == len(present) + 1 + extra
    return HotPath(gaps, extra, hot_only["post_id"], neighbour["post_id"])


def test_reconciliation_reports_and_repairs_gaps_and_duplicates(
    sample_lake: Lake, warehouse_root: Path
) -> None:
    expected = expected_posts(sample_lake)
    n = len(expected)
    # GIVEN a hot path with gaps, duplicates and a post the lake never saw
    hot = write_faulty_hot_path(sample_lake, warehouse_root)
    assert hot.gaps and hot.extra_copies >= 5
    # WHEN the window is materialized
    result = materialize(sample_lake, warehouse_root)
    assert result.success
    assert checks(result)["reconciliation_15m.lake_matches_warehouse"].passed
    # THEN the reconciliation row reports exactly what was wrong and what was repaired
    [row] = window_rows(warehouse_root, "reconciliation_15m")
    assert {k: v for k, v in row.items() if k not in VOLATILE} == {
        "window_start": WINDOW_START,
        "lake_count": n,
        "hot_count": n - len(hot.gaps) + 1 + hot.extra_copies,
        "missing": len(hot.gaps),
        "duplicates": hot.extra_copies,
        "repaired": len(hot.gaps) + hot.extra_copies,
    }
    assert materialized(result)["reconciliation_15m"]["hot_only"] == 1
    # AND posts_hot now holds every lake post of the window exactly once (the hot-only post is
    # left alone; the next window's duplicate is that window's business)
    assert hot_counts(warehouse_root) == Counter({**dict.fromkeys(expected, 1), hot.hot_only: 1})
    assert hot_counts(warehouse_root, WINDOW_START + WINDOW)[hot.neighbour] == 2
    repaired = query(
        warehouse_root,
        "SELECT * FROM posts_hot WHERE post_id IN (SELECT unnest(?))",
        [hot.gaps],
    )
    assert all(r.pop("inserted_at") is not None for r in repaired)  # stamped when repaired
    assert {r["post_id"]: r for r in repaired} == {
        pid: {k: v for k, v in hot_row(expected[pid]).items() if k != "inserted_at"}
        for pid in hot.gaps
    }

    # WHEN it runs again, THEN there is nothing left to repair
    again = materialize(sample_lake, warehouse_root)
    assert again.success
    [row2] = window_rows(warehouse_root, "reconciliation_15m")
    assert (row2["missing"], row2["duplicates"], row2["repaired"]) == (0, 0, 0)
    assert (row2["lake_count"], row2["hot_count"]) == (n, n + 1)
    assert hot_counts(warehouse_root) == Counter({**dict.fromkeys(expected, 1), hot.hot_only: 1})


def test_failed_reconciliation_fails_the_blocking_check(
    sample_lake: Lake, warehouse_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hot = write_faulty_hot_path(sample_lake, warehouse_root)

    # GIVEN a warehouse whose duplicate removal silently does nothing
    def remove_nothing(self: EmbeddedWarehouse, table: str, key: str, ids: Iterator[str]) -> int:
        return 0

    monkeypatch.setattr(EmbeddedWarehouse, "remove_duplicates", remove_nothing)
    # WHEN the window is materialized
    result = materialize(sample_lake, warehouse_root, raise_on_error=False)
    # THEN the blocking check fails and says what is left
    check = checks(result)["reconciliation_15m.lake_matches_warehouse"]
    assert check.passed is False
    assert meta(check)["still_duplicated"] == hot.extra_copies
    assert meta(check)["still_missing"] == 0
    assert not result.success
    assert [e.step_key for e in result.get_step_failure_events()] == ["reconciliation_15m"]
    # the other checks and assets are unaffected
    assert set(materialized(result)) == ASSET_NAMES
    assert checks(result)["posts.post_id_unique"].passed
    assert checks(result)["posts.schema_v1"].passed


def test_a_failed_uniqueness_check_blocks_the_downstream_assets(
    sample_lake: Lake, warehouse_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a uniqueness check that finds duplicate post ids in the window's posts
    monkeypatch.setattr(
        "musicnft_dagster.assets.windows.wp.duplicate_post_rows",
        lambda w, windows: dict.fromkeys(windows, 3),
    )
    # WHEN the window is materialized
    result = materialize(sample_lake, warehouse_root, raise_on_error=False)
    # THEN the check fails and nothing downstream of posts materializes in that run
    check = checks(result)["posts.post_id_unique"]
    assert check.passed is False
    assert meta(check)["duplicate_rows"] == 3
    assert meta(check)["failures"] == [
        {"window": KEY, "duplicate_rows": 3, "reason": f"{KEY}: 3 dup"}
    ]
    assert not result.success
    # (posts itself is written, then its step fails on the blocking check)
    assert set(materialized(result)) == {"posts"}
    assert [e.step_key for e in result.get_step_failure_events()] == ["posts"]
    assert "reconciliation_15m.lake_matches_warehouse" not in checks(result)
    for table in (*wp.AGGREGATE_TABLES, "reconciliation_15m"):
        assert window_rows(warehouse_root, table) == [], table
    assert hot_counts(warehouse_root) == Counter()


def test_an_empty_window_materializes_with_zero_posts(
    sample_lake: Lake, warehouse_root: Path
) -> None:
    window = parse_window_key(EMPTY_KEY)
    result = materialize(sample_lake, warehouse_root, key=EMPTY_KEY)
    assert result.success
    assert {name: e.passed for name, e in checks(result).items()} == dict.fromkeys(CHECKS, True)
    mats = materialized(result)
    assert set(mats) == ASSET_NAMES
    assert (mats["posts"]["posts"], mats["posts"]["files_read"]) == (0, 0)
    assert window_rows(warehouse_root, "posts", window) == []
    metrics = {r["keyword"]: r for r in window_rows(warehouse_root, "window_metrics_15m", window)}
    assert sorted(metrics) == sorted(["all", *KEYWORDS])
    for row in metrics.values():
        assert row["post_count"] == 0
        assert row["positive_count"] == row["neutral_count"] == row["negative_count"] == 0
        assert row["total_engagement"] == 0
    assert window_rows(warehouse_root, "hashtag_counts_15m", window) == []
    assert window_rows(warehouse_root, "location_counts_15m", window) == []
    [recon] = window_rows(warehouse_root, "reconciliation_15m", window)
    assert (recon["lake_count"], recon["hot_count"], recon["missing"]) == (0, 0, 0)
