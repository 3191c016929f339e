"""Entity metrics and spike detection (issue 18): pure scoring on seeded series, and the
per-window pipeline over an embedded warehouse."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.batch import insight
from musicnft.batch.insight import entity_metrics, score_count, score_spikes
from musicnft.batch.insight_pipeline import build_entity_metrics, build_spikes, spike_posts
from musicnft.contract.tables import POSTS_SCHEMA, TABLES
from musicnft.contract.windows import WINDOW, window_key

T0 = datetime(2021, 12, 1, tzinfo=UTC)
NOW = datetime(2021, 12, 9, tzinfo=UTC)


def windows(n: int, start: datetime = T0) -> list[datetime]:
    return [start + i * WINDOW for i in range(n)]


def run_series(counts: list[int]) -> list[dict]:
    """Score every window of a series against its own trailing 7 days, as the pipeline does
    window by window; one spikes row per window."""
    ws = windows(len(counts))
    out = []
    for i, (w, c) in enumerate(zip(ws, counts, strict=True)):
        history = {("keyword", "nft"): dict(zip(ws[:i], counts[:i], strict=True))}
        (row,) = score_spikes(w, {("keyword", "nft"): c}, history, ws[:i], NOW)
        out.append(row)
    return out


def seeded(n: int, mean: float, seed: int) -> list[int]:
    """A noisy but stationary series: Poisson-like counts around `mean` (seeded)."""
    rng = random.Random(seed)
    return [max(0, round(rng.gauss(mean, mean**0.5))) for _ in range(n)]


DAY = 96  # windows a day


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_false_alarm_on_a_flat_series(seed: int) -> None:
    counts = seeded(3 * DAY, 20, seed)
    assert not [r for r in run_series(counts) if r["is_spike"]]
    assert not [r for r in run_series([7] * (2 * DAY)) if r["is_spike"]]


def test_a_5x_burst_is_flagged_in_its_own_window() -> None:
    counts = seeded(2 * DAY, 20, seed=5)
    burst_at = DAY + 40
    counts[burst_at] = 100  # 5× the usual 20
    rows = run_series(counts)
    flagged = [i for i, r in enumerate(rows) if r["is_spike"]]
    assert flagged == [burst_at]
    spike = rows[burst_at]
    assert spike["window_start"] == T0 + burst_at * WINDOW
    assert 17 <= spike["baseline"] <= 23 and spike["score"] > 10
    # the burst does not drag the baseline up: the next ordinary window is no spike, and a
    # second burst right after is still caught (median and MAD ignore one outlier)
    counts[burst_at + 1] = 100
    assert [i for i, r in enumerate(run_series(counts)) if r["is_spike"]] == [
        burst_at,
        burst_at + 1,
    ]


def test_outliers_in_history_do_not_raise_the_baseline() -> None:
    history = [10] * 100 + [500] * 5  # a few earlier bursts
    s = score_count(50, history)
    assert s.baseline == 10 and s.is_spike


def test_short_history_fallback_never_flags() -> None:
    short = [3] * (insight.MIN_HISTORY_WINDOWS - 1)
    s = score_count(60, short)
    assert s.baseline == 3 and s.score > 10 and not s.is_spike
    cold = score_count(60, [])
    assert cold.baseline == 0 and not cold.is_spike
    assert score_count(60, [3] * insight.MIN_HISTORY_WINDOWS).is_spike


def test_small_counts_and_small_ratios_are_no_spike() -> None:
    assert not score_count(4, [0] * 200).is_spike  # a new key with 4 posts: too few
    assert score_count(5, [0] * 200).is_spike  # a new key with 5 posts after a silent week
    assert not score_count(1150, [1000] * 200).is_spike  # +15% on a big key: under 2×


def test_entity_metrics_rows() -> None:
    posts = [
        {"entities": ["bts", "umg"], "author_id": "a", "sentiment_compound": 0.5,
         "sentiment_label": "positive", "like_count": 3},
        {"entities": ["bts"], "author_id": "b", "sentiment_compound": -0.5,
         "sentiment_label": "negative", "reply_count": 1},
        {"entities": ["bts", "bts"], "author_id": "a", "sentiment_compound": 0.0,
         "sentiment_label": "neutral"},
        {"entities": None, "author_id": "c"},
    ]  # fmt: skip
    rows = entity_metrics(posts, T0, NOW)
    assert [r["entity"] for r in rows] == ["bts", "umg"]
    bts = rows[0]
    assert bts["post_count"] == 3 and bts["unique_authors"] == 2
    assert bts["avg_sentiment"] == 0.0
    assert (bts["positive_count"], bts["neutral_count"], bts["negative_count"]) == (1, 1, 1)
    assert bts["total_engagement"] == 4
    assert pa.Table.from_pylist(rows, schema=TABLES["entity_metrics_15m"]).num_rows == 2


# ---- the pipeline over an embedded warehouse -----------------------------------------------


def post(i: int, window: datetime, entities: list[str], tags: list[str]) -> dict:
    return {
        "post_id": f"x:{window_key(window)}:{i}",
        "platform": "x",
        "created_at": window + timedelta(seconds=i),
        "ingested_at": window + timedelta(seconds=i + 1),
        "text": f"post {i}",
        "author_id": f"a{i % 7}",
        "author_handle": f"h{i % 7}",
        "like_count": i % 3,
        "hashtags": tags,
        "matched_keywords": ["nft"],
        "entities": entities,
        "sentiment_compound": 0.3,
        "sentiment_label": "positive",
        "schema_version": 1,
        "window_start": window,
    }


@pytest.fixture
def warehouse(tmp_path: Path) -> EmbeddedWarehouse:
    return EmbeddedWarehouse(tmp_path / "warehouse")


def test_pipeline_flags_a_burst_in_its_own_window(warehouse: EmbeddedWarehouse) -> None:
    history = windows(24)  # six hours of quiet history
    rng = random.Random(7)
    metric_rows, entity_rows, tag_rows = [], [], []
    for w in history:
        n = rng.randint(3, 5)
        metric_rows += [
            {"window_start": w, "keyword": "all", "post_count": n},
            {"window_start": w, "keyword": "nft", "post_count": n},
        ]
        entity_rows.append({"window_start": w, "entity": "bts", "post_count": n})
        tag_rows.append({"window_start": w, "hashtag": "nft", "post_count": n})
    for table, rows in (
        ("window_metrics_15m", metric_rows),
        ("entity_metrics_15m", entity_rows),
        ("hashtag_counts_15m", tag_rows),
    ):
        warehouse.append(table, pa.Table.from_pylist(rows, schema=TABLES[table]))
    # WHEN the next window has a burst: 25 posts naming BAYC (never seen before) and BTS as usual
    burst = T0 + 24 * WINDOW
    posts = [post(i, burst, ["bayc"] + (["bts"] if i < 4 else []), ["nft"]) for i in range(25)]
    warehouse.replace_partition(
        "posts", window_key(burst), pa.Table.from_pylist(posts, schema=POSTS_SCHEMA)
    )
    from musicnft.batch.window_pipeline import build_aggregate

    for table in ("window_metrics_15m", "hashtag_counts_15m"):
        build_aggregate(warehouse, table, burst, ["nft"])
    assert build_entity_metrics(warehouse, burst) == 2
    rows = build_spikes(warehouse, burst)
    # THEN the run of that window flags exactly the keys that burst
    by_key = {(r["dimension"], r["key"]): r for r in rows}
    assert {k for k, r in by_key.items() if r["is_spike"]} == {
        ("keyword", "all"),
        ("keyword", "nft"),
        ("entity", "bayc"),
        ("hashtag", "nft"),
    }
    assert not by_key[("entity", "bts")]["is_spike"]
    assert by_key[("entity", "bayc")]["baseline"] == 0.0
    stored = warehouse.query(
        "SELECT count(*) FROM spikes_15m WHERE window_start = ? AND is_spike", [burst]
    )
    assert stored.column(0)[0].as_py() == 4
    # idempotent: running the window again leaves the same rows
    build_spikes(warehouse, burst)
    assert warehouse.query("SELECT count(*) FROM spikes_15m").column(0)[0].as_py() == len(rows)
    # the posts behind a spike: the window's posts with the key, most engaged first
    behind = spike_posts(warehouse, burst, "entity", "bts", limit=10)
    assert len(behind) == 4
    assert [p["engagement"] for p in behind] == sorted(
        (p["engagement"] for p in behind), reverse=True
    )
    assert len(spike_posts(warehouse, burst, "keyword", "all", limit=100)) == 25
