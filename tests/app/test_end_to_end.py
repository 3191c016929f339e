"""The shipped sample through the whole embedded hot path, as `make demo` runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from musicnft.contract.schema import POST_SCHEMA
from musicnft.devtools.sample import SAMPLE_PATH
from musicnft.hotpath.deadletter import read_entries
from tests.support.expectations import Expected, expected_from
from tests.support.paths import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def expected() -> Expected:
    return expected_from(SAMPLE_PATH)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run `musicnft run` over the shipped sample once; the tests below inspect what it left."""
    import os

    from tests.support.paths import ROOT

    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    env = dict(os.environ, MUSICNFT_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    env["MUSICNFT_DELIVERY_BUFFER_BYTES"] = str(2 * 1024 * 1024)
    env["MUSICNFT_DELIVERY_BUFFER_SECONDS"] = "5"
    proc = subprocess.run(
        cli("run", "--speed", "max", "--exit-when-done"),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    (data_dir / "run.log").write_text(proc.stderr)
    (data_dir / "run.out").write_text(proc.stdout)
    return data_dir


def _lake_rows(data_dir: Path) -> list[dict]:
    rows: list[dict] = []
    for path in sorted((data_dir / "lake" / "raw").rglob("*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return rows


def _posts_hot(data_dir: Path) -> list[dict]:
    """Every posts_hot row, read from the warehouse's own tables (DuckLake), read-only."""
    from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse

    wh = EmbeddedWarehouse(data_dir / "warehouse", read_only=True)
    try:
        return wh.query("SELECT * FROM posts_hot").to_pylist()
    finally:
        wh.close()


def test_every_valid_post_lands_in_the_lake_as_v1_parquet(
    pipeline: Path, expected: Expected
) -> None:
    files = sorted((pipeline / "lake" / "raw").rglob("*.parquet"))
    assert files, "no Parquet drops"
    for path in files:
        # Firehose's key layout: raw/YYYY/MM/DD/HH/<stream>-<n>-YYYY-MM-DD-HH-MM-SS-<uuid>.parquet
        rel = path.relative_to(pipeline / "lake").parts
        assert rel[0] == "raw" and len(rel) == 6
        y, m, d, h = rel[1:5]
        assert path.name.startswith(f"musicnft-posts-1-{y}-{m}-{d}-{h}-")
        assert pq.read_schema(path).remove_metadata().equals(POST_SCHEMA.remove_metadata())
    rows = _lake_rows(pipeline)
    # No faults: the lake holds each valid line exactly as often as the source sent it.
    assert len(rows) == len(expected.posts)
    assert sorted(r["post_id"] for r in rows) == sorted(p["post_id"] for p in expected.posts)
    by_id = {p["post_id"]: p for p in expected.posts}
    for row in rows[:500]:
        want = by_id[row["post_id"]]
        assert row["text"] == want["text"]
        assert row["created_at"] == want["created_at"]
        assert row["matched_keywords"] == want["matched_keywords"]


def test_posts_hot_holds_every_post_and_adds_no_duplicates(
    pipeline: Path, expected: Expected
) -> None:
    rows = _posts_hot(pipeline)
    ids = [r["post_id"] for r in rows]
    assert set(ids) == set(expected.ids)
    # The pipeline adds no duplicates of its own; at most those the source itself sent twice.
    assert len(ids) - len(set(ids)) <= expected.source_duplicates


def test_enrichment_in_posts_hot_is_vader_3_3_2(pipeline: Path) -> None:
    analyzer = SentimentIntensityAnalyzer()
    rows = _posts_hot(pipeline)
    for row in rows:
        scores = analyzer.polarity_scores(row["text"])
        assert row["sentiment_compound"] == scores["compound"]
        assert row["sentiment_pos"] == scores["pos"]
        assert row["sentiment_neu"] == scores["neu"]
        assert row["sentiment_neg"] == scores["neg"]
        label = (
            "positive"
            if scores["compound"] >= 0.05
            else "negative"
            if scores["compound"] <= -0.05
            else "neutral"
        )
        assert row["sentiment_label"] == label


def test_every_malformed_line_is_dead_lettered_with_its_reason(
    pipeline: Path, expected: Expected
) -> None:
    entries = read_entries(pipeline / "dead_letter" / "producer.jsonl")
    got = {e["ref"]: e["reason"] for e in entries}
    assert len(entries) == len(got), "a line was dead-lettered twice"
    assert set(got) == set(expected.rejected)
    for ref, reason in expected.rejected.items():
        assert got[ref].split(" (")[0].startswith(reason.split(" (")[0])
    assert all(("raw" in e) != ("raw_b64" in e) for e in entries), "raw record kept whole"
    assert len(expected.rejected) > 0


def test_status_json_agrees_with_the_files(pipeline: Path, expected: Expected) -> None:
    proc = subprocess.run(
        cli("status", "--json", "--data-dir", str(pipeline)),
        capture_output=True,
        text=True,
        check=True,
    )
    status = json.loads(proc.stdout)
    lake = _lake_rows(pipeline)
    hot = _posts_hot(pipeline)
    assert status["produced"] == len(expected.posts)
    assert status["lake"] == len(lake)
    assert status["lake_unique"] == len({r["post_id"] for r in lake})
    assert status["posts_hot"] == len(hot)
    assert status["posts_hot_unique"] == len({r["post_id"] for r in hot})
    assert status["dead_letter"] == len(expected.rejected)
    assert status["stream"] == len(expected.posts)
    for key in (
        "produced",
        "dead_letter",
        "stream",
        "lake",
        "lake_unique",
        "posts_hot",
        "posts_hot_unique",
    ):
        assert isinstance(status[key], int)
    # The human summary printed at the end says the same.
    out = (pipeline / "run.out").read_text()
    assert f"{len(expected.posts):,}" in out
