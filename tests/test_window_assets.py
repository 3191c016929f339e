"""The windowed Dagster assets over a real lake and warehouse built from a generated sample.

The lake is built once per module: ~3,000 sample lines normalized, the re-deliveries the sample
contains given a later ingest (and fresher like counts, so "latest ingest wins" is visible), cut
into Firehose-like drops that straddle window boundaries, plus one late drop that re-delivers posts
of the target window from a much later hour folder. Expectations are computed independently from
the Parquet files themselves; every test materializes into its own copy of the warehouse.
"""

from __future__ import annotations

import io
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicnft import window_pipeline as wp
from musicnft.backfill import index_lake
from musicnft.embedded_warehouse import EmbeddedWarehouse
from musicnft.enrich import enrich
from musicnft.keywords import KeywordMatcher
from musicnft.lake import LocalLake, raw_key
from musicnft.normalize import ControlMessage, RejectedRecord, normalize_x_line, normalize_x_message
from musicnft.sample import generate_lines
from musicnft.schema import ENRICHED_FIELDS, POST_SCHEMA, conform, format_timestamp, to_table
from musicnft.settings import DEFAULT_KEYWORDS
from musicnft.tables import POSTS_HOT_SCHEMA, WINDOWED_TABLES
from musicnft.windows import WINDOW, parse_window_key
from musicnft_dagster.assets.windows import WINDOW_ASSETS
from musicnft_dagster.resources import (
    EmbeddedWarehouseResource,
    LocalLakeResource,
    PipelineResource,
)
from tests.helpers import x_message

pytestmark = pytest.mark.slow

KEYWORDS = ["music", "nft", "eth", "web3", "opensea"]
MATCHER = KeywordMatcher(DEFAULT_KEYWORDS)
STREAM = "musicnft-posts"
SAMPLE_START = datetime(2021, 12, 1, tzinfo=UTC)
INGEST_START = SAMPLE_START + timedelta(seconds=30)
KEY = "2021-12-01-01:30"  # a busy window in the middle of the sample
WINDOW_START = parse_window_key(KEY)
EMPTY_KEY = "2021-11-15-12:00"  # inside the partitions, before the sample: no posts
ASSET_NAMES = {"posts", *wp.AGGREGATE_TABLES, "reconciliation_15m"}
CHECKS = {
    "posts.post_id_unique",
    "posts.schema_v1",
    "reconciliation_15m.lake_matches_warehouse",
}
VOLATILE = ("updated_at", "checked_at")


# ---------------------------------------------------------------------------------------------
# The lake, built once
# ---------------------------------------------------------------------------------------------


@dataclass
class Lake:
    lake_root: Path
    base_warehouse: Path  # lake_files filled by index_lake; copied per test
    rows: list[dict[str, Any]]  # every row of every lake file, as stored
    file_ranges: dict[str, tuple[datetime, datetime, int]]  # key -> (min, max, rows)


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(to_table(rows, POST_SCHEMA), buf)
    return buf.getvalue()


def _put(lake: LocalLake, rows: list[dict[str, Any]], modified: datetime) -> str:
    key = raw_key(STREAM, min(r["ingested_at"] for r in rows))
    lake.put(key, _parquet(rows))
    os.utime(lake.root / key, (modified.timestamp(), modified.timestamp()))
    return key


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("window-assets")
    lake = LocalLake(root / "lake")
    posts: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, line in enumerate(generate_lines(3000, seed=11, posts_per_hour=1200)):
        ingested = INGEST_START + timedelta(milliseconds=3500 * i)
        try:
            post = normalize_x_line(line, MATCHER, ingested)
        except (RejectedRecord, ControlMessage):
            continue  # keep-alives and malformed lines never reach the lake
        if post["post_id"] in seen:
            # a re-delivery: later ingest, fresher metrics (the copy a window must keep)
            post["like_count"] = (post["like_count"] or 0) + 1000 + i
        seen.add(post["post_id"])
        posts.append(post)
    # Firehose-like drops of 120 records in arrival order: they straddle window boundaries
    for n in range(0, len(posts), 120):
        chunk = posts[n : n + 120]
        _put(lake, chunk, chunk[-1]["ingested_at"] + timedelta(seconds=60))
    # a late drop, six hours on: re-deliveries of 15 posts of the target window
    in_window = [p for p in posts if WINDOW_START <= p["created_at"] < WINDOW_START + WINDOW]
    late_at = INGEST_START + timedelta(hours=6)
    late = [
        p
        | {"ingested_at": late_at + timedelta(seconds=j), "like_count": 5000 + j, "reply_count": 7}
        for j, p in enumerate(in_window[::17][:15])
    ]
    _put(lake, late, late_at + timedelta(minutes=1))

    # What the lake holds, read back from the files (the truth the expectations use)
    rows: list[dict[str, Any]] = []
    ranges: dict[str, tuple[datetime, datetime, int]] = {}
    for key in lake.list("raw/"):
        table = pq.read_table(root / "lake" / key).to_pylist()
        rows += table
        created = [r["created_at"] for r in table]
        ranges[key] = (min(created), max(created), len(table))
    warehouse = root / "warehouse"
    assert index_lake(lake, EmbeddedWarehouse(warehouse)) == len(ranges)
    return Lake(root / "lake", warehouse, rows, ranges)


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
    return dg.materialize(
        WINDOW_ASSETS,
        partition_key=key,
        resources=resources(lake, warehouse),
        raise_on_error=raise_on_error,
    )


# ---------------------------------------------------------------------------------------------
# Independent expectations and readers
# ---------------------------------------------------------------------------------------------


def in_window(created: datetime, window: datetime = WINDOW_START) -> bool:
    return window <= created < window + WINDOW


def expected_posts(lake: Lake, window: datetime = WINDOW_START) -> dict[str, dict[str, Any]]:
    """post_id -> the window's post as `posts` must hold it: the latest ingest, enriched."""
    latest: dict[str, dict[str, Any]] = {}
    for row in lake.rows:
        if in_window(row["created_at"], window):
            kept = latest.get(row["post_id"])
            if kept is None or row["ingested_at"] > kept["ingested_at"]:
                latest[row["post_id"]] = row
    return {
        pid: conform(enrich(row), ENRICHED_FIELDS) | {"window_start": window}
        for pid, row in latest.items()
    }


def hot_row(post: dict[str, Any]) -> dict[str, Any]:
    """A `posts` row as the hot path writes it to `posts_hot` (no window_start)."""
    return {k: v for k, v in post.items() if k != "window_start"}


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


def extra_post(i: int, created: datetime) -> dict[str, Any]:
    """A post the lake never received (only the hot path wrote it)."""
    msg = x_message(900_000 + i, created=format_timestamp(created))
    post = normalize_x_message(msg, MATCHER, created + timedelta(seconds=1))
    return conform(enrich(post), ENRICHED_FIELDS)


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
        assert evaluation.partition == KEY

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
    assert meta(evaluations["posts.post_id_unique"]) == {"duplicate_rows": 0}

    # aggregates: row counts
    tags = {t for p in expected.values() for t in p["hashtags"]}
    locations = {(p["author_location"] or "").strip() for p in expected.values()} - {""}
    assert mats["window_metrics_15m"]["rows"] == 1 + len(KEYWORDS)
    assert mats["hashtag_counts_15m"]["rows"] == len(tags) > 0
    assert mats["location_counts_15m"]["rows"] == len(locations) > 0

    # reconciliation: posts_hot was empty, so every lake post was missing and got inserted
    recon = mats["reconciliation_15m"]
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
        assert by_id[pid] == want, pid
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
    assert files_after == files_before == dict.fromkeys(WINDOWED_TABLES, 1)
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
    assert {r["post_id"]: r for r in repaired} == {pid: hot_row(expected[pid]) for pid in hot.gaps}

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
        "musicnft_dagster.assets.windows.wp.check_posts_unique", lambda w, t: (False, 3)
    )
    # WHEN the window is materialized
    result = materialize(sample_lake, warehouse_root, raise_on_error=False)
    # THEN the check fails and nothing downstream of posts materializes in that run
    check = checks(result)["posts.post_id_unique"]
    assert check.passed is False
    assert meta(check) == {"duplicate_rows": 3}
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
