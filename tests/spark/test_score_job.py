"""The Spark scoring job on local Spark (issue 16): scores equal to the hot path's, each post once,
the scored/ layout and columns, INT96 drops, a corrupt drop quarantined while the rest is scored,
late drops scored by the next run, and a re-score into a new version beside the old output.

One lake, scored three times in order (module fixtures): the first run, a run after late drops,
a re-score under a newly promoted model. Each fixture keeps what its run wrote (read through the
sink's log) so the tests below can check each run's output independently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from musicnft.contract.lake_layout import raw_key
from musicnft.hotpath.model_artifact import load_promoted
from musicnft.spark.job import ScoreJobOptions, ScoreJobResult, run_score_job
from musicnft.spark.layout import SCORED_COLUMNS
from musicnft.spark.quarantine import quarantined
from musicnft.spark.scored import committed_files, read_committed_table, read_scored
from tests.support.spark_lake import (
    START,
    STREAM,
    SparkLake,
    build_spark_lake,
    expected_scores,
    parquet_bytes,
    post,
    promote_model,
    sample_posts,
)

pytestmark = pytest.mark.slow

INT96_CREATED = datetime(2021, 12, 2, 3, 4, 5, 123456, tzinfo=UTC)


@dataclasses.dataclass
class Run:
    result: ScoreJobResult
    rows: list[dict[str, Any]]  # read with Spark through the sink's log
    arrow_rows: list[dict[str, Any]]  # read with pyarrow from committed_files
    files: list[str]
    planned: list[int]  # the source offsets the checkpoint's batches read up to
    expected: dict[str, tuple[Any, Any, Any]]  # the lake's unique posts then, scored in process


def _run(spark: Any, lake: SparkLake, **kw: Any) -> Run:
    options = ScoreJobOptions(str(lake.root), available_now=True, **kw)
    result = run_score_job(spark, options)
    version = result.model_version if options.rescore else None
    rows = [r.asDict() for r in read_scored(spark, str(lake.root), version).collect()]
    arrow = read_committed_table(str(lake.root), version).to_pylist()
    offsets = Path(result.checkpoint_path) / "offsets"
    # the file source's offset of each planned batch (a no-data batch, run by Spark to apply a
    # moved watermark, repeats the previous one)
    planned = sorted(
        {
            json.loads(p.read_text().splitlines()[-1])["logOffset"]
            for p in offsets.iterdir()
            if p.name.isdigit()
        }
    )
    files = committed_files(str(lake.root), version)
    return Run(result, rows, arrow, files, planned, expected_scores(lake))


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> SparkLake:
    root = tmp_path_factory.mktemp("spark-lake") / "lake"
    lake = build_spark_lake(root, drops=4, per_drop=25)
    # a drop of the sample generator's posts: varied texts, and its own source duplicates
    lake.add_drop(sample_posts(300))
    # a drop written as Firehose's format conversion writes it: INT96 timestamps
    lake.add_drop([post(500, INT96_CREATED, INT96_CREATED + timedelta(seconds=3))], int96=True)
    # two corrupt drops: not Parquet at all, and a Parquet file cut short (no footer)
    arrival = START + timedelta(hours=2)
    lake.lake.put(raw_key(STREAM, arrival, "garbage"), b"this is not a parquet file")
    whole = parquet_bytes([post(600, START, START + timedelta(seconds=1))])
    lake.lake.put(raw_key(STREAM, arrival, "truncated"), whole[: len(whole) // 2])
    return lake


@pytest.fixture(scope="module")
def first(spark: Any, lake: SparkLake) -> Run:
    return _run(spark, lake, max_files_per_trigger=3)


@dataclasses.dataclass
class Late:
    run: Run
    new_ids: list[str]  # two new posts
    redelivered: str  # an old post again, ingested within the dedup bound
    late_copy: str  # an old post again, ingested before the watermark
    lost: str  # a new post ingested before the watermark: dropped as late (docs/spark.md)


@pytest.fixture(scope="module")
def late(spark: Any, lake: SparkLake, first: Run) -> Late:
    """Drops landing after the first run, one micro-batch each: new posts ingested 100 hours on
    with a redelivery (the watermark moves to 74 hours), another new post, then a drop ingested
    long before. Spark drops rows with the watermark of the batch before: the third batch's."""
    base = START + timedelta(hours=100)
    new = [
        post(700 + i, base + timedelta(minutes=i), base + timedelta(minutes=i, seconds=5))
        for i in range(2)
    ]
    again = dict(lake.rows[1]) | {"ingested_at": base + timedelta(minutes=5)}
    now = datetime.now(UTC)
    lake.add_drop([new[0], again], modified=now - timedelta(seconds=60))
    lake.add_drop([new[1]], modified=now - timedelta(seconds=30))
    late_copy = dict(lake.rows[2]) | {"ingested_at": START + timedelta(hours=2)}
    lost = post(800, START + timedelta(hours=1), START + timedelta(hours=1, seconds=5))
    lake.add_drop([late_copy, lost], modified=now)
    run = _run(spark, lake, max_files_per_trigger=1)
    return Late(
        run, [p["post_id"] for p in new], again["post_id"], late_copy["post_id"], lost["post_id"]
    )


@pytest.fixture(scope="module")
def rescore(
    spark: Any, lake: SparkLake, late: Late
) -> tuple[Run, dict[str, str], dict[str, str], str]:
    """A newly promoted model, then `--rescore`: scored/ must not change."""
    old = load_promoted(lake.lake)
    assert old is not None
    newer = dataclasses.replace(old, version="v2-test", intercept=old.intercept + 0.25)
    promote_model(lake.lake, newer)
    stream_dir = lake.root / "scored"
    before = {k: v for k, v in _digest(stream_dir).items() if not k.startswith("_versions/")}
    run = _run(spark, lake, rescore=True, max_files_per_trigger=20)
    after = {k: v for k, v in _digest(stream_dir).items() if not k.startswith("_versions/")}
    return run, before, after, newer.version


def test_scores_equal_the_in_process_scores_and_each_post_is_written_once(
    lake: SparkLake, first: Run
) -> None:
    expected = first.expected
    ids = [r["post_id"] for r in first.rows]
    assert len(ids) == len(set(ids))  # the source duplicate and the redelivery drop: once
    assert set(ids) == set(expected)  # every unique post (the corrupt drops had none readable)
    for row in first.rows:
        compound, score, name = expected[row["post_id"]]
        assert row["sentiment_compound"] == pytest.approx(compound, abs=1e-6), row["post_id"]
        assert row["model_score"] == pytest.approx(score, abs=1e-6), row["post_id"]
        assert row["model_label"] == name
        assert row["model_version"] == lake.model_version
        assert row["scored_at"] is not None
    assert first.result.rows_written == len(expected)
    assert first.result.model_version == lake.model_version
    # at most 3 drops a micro-batch: 9 drops (2 of them corrupt) take 3 batches
    assert first.planned == [0, 1, 2]
    assert first.result.batches >= 2  # batches that read rows (the last may read none)


def test_a_non_spark_reader_sees_the_same_rows_through_the_sink_log(first: Run) -> None:
    by_id = {r["post_id"]: r for r in first.arrow_rows}
    assert len(by_id) == len(first.arrow_rows) == len(first.rows)
    for row in first.rows:
        other = by_id[row["post_id"]]
        assert other["model_score"] == pytest.approx(row["model_score"], abs=1e-12)
        assert other["created_at"] == row["created_at"].replace(tzinfo=UTC)


BARE_PART = re.compile(
    r"scored/(_versions/[^/]+/)?\d{4}/\d{2}/\d{2}/\d{2}/part-b\d{12}-\d{5}\.parquet"
)


def _on_disk(lake: SparkLake, under: str = "scored") -> set[str]:
    return {str(p) for p in (lake.root / under).rglob("*.parquet")}


def test_scored_files_hold_exactly_the_columns_under_the_created_at_hour(
    lake: SparkLake, first: Run
) -> None:
    assert first.files
    for path in first.files:
        key = str(Path(path).relative_to(lake.root))
        assert BARE_PART.fullmatch(key), key  # scored/YYYY/MM/DD/HH/part-b<batch>-<k>.parquet
        table = pq.read_table(path)
        assert table.column_names == list(SCORED_COLUMNS)
        year, month, day, hour = Path(path).parent.parts[-4:]
        for created in table.column("created_at").to_pylist():
            created = created.astimezone(UTC)
            assert (year, month, day, hour) == (
                f"{created:%Y}",
                f"{created:%m}",
                f"{created:%d}",
                f"{created:%H}",
            ), path
    # no Hive-style folder, no stray file: a plain listing after a run is the committed files
    assert not [p for p in (lake.root / "scored").rglob("*") if "=" in p.name]
    assert _on_disk(lake) == set(first.files)
    hours = {f"{r['created_at'].astimezone(UTC):%Y/%m/%d/%H}" for r in first.arrow_rows}
    assert {str(Path(f).parent.relative_to(lake.root / "scored")) for f in first.files} == hours


def test_an_int96_drop_keeps_its_timestamps_to_the_microsecond(first: Run) -> None:
    (row,) = [r for r in first.arrow_rows if r["created_at"] == INT96_CREATED]
    assert row["post_id"].endswith("500")
    assert row["model_score"] is not None


def test_corrupt_drops_are_quarantined_and_the_rest_is_scored(lake: SparkLake, first: Run) -> None:
    recorded = quarantined(str(lake.root))
    names = sorted(k.rsplit("-", 1)[-1] for k in recorded)
    assert names == ["garbage.parquet", "truncated.parquet"]
    assert all(reason for reason in recorded.values())
    assert set(first.result.quarantined) == set(recorded)
    assert len(first.rows) == len(first.expected)  # every good drop scored


def test_a_late_drop_is_scored_by_the_next_run_and_a_redelivery_is_not_written_again(
    first: Run, late: Late
) -> None:
    ids = [r["post_id"] for r in late.run.rows]
    assert len(ids) == len(set(ids))
    assert set(ids) == {r["post_id"] for r in first.rows} | set(late.new_ids)
    assert late.redelivered in ids and late.late_copy in ids  # once each: the first copies
    assert late.run.result.rows_written == len(late.new_ids)
    assert set(first.files) <= set(late.run.files)  # the first run's files are still committed


def test_rows_ingested_before_the_watermark_are_dropped_and_counted(late: Late) -> None:
    # the documented bound: a copy older than the watermark is dropped (harmless), and so is a
    # first sighting that old (counted; --rescore scores it, see the next test)
    assert late.run.result.dropped_late == 2
    assert late.lost not in {r["post_id"] for r in late.run.rows}


def test_rescore_writes_a_new_version_and_leaves_the_stream_output_untouched(
    lake: SparkLake, late: Late, rescore: Any
) -> None:
    run, before, after, version = rescore
    assert after == before  # not one byte of scored/ (files and log) changed
    assert run.result.model_version == version
    assert f"/scored/_versions/{version}/" in run.result.output_path
    assert f"checkpoints/spark-score-rescore/{version}/" in run.result.checkpoint_path
    for path in run.files:
        key = str(Path(path).relative_to(lake.root))
        assert key.startswith(f"scored/_versions/{version}/") and BARE_PART.fullmatch(key), key
    assert _on_disk(lake, f"scored/_versions/{version}") == set(run.files)
    ids = [r["post_id"] for r in run.rows]
    assert len(ids) == len(set(ids))  # all history, each post once, the late-dropped one too
    assert set(ids) == {r["post_id"] for r in late.run.rows} | {late.lost}
    newer = load_promoted(lake.lake)
    assert newer is not None and newer.version == version
    old_by_id = {r["post_id"]: r for r in late.run.rows}
    expected = run.expected  # in process, with the newly promoted model
    for row in run.rows:
        assert row["model_version"] == version
        compound, score, name = expected[row["post_id"]]
        assert row["sentiment_compound"] == pytest.approx(compound, abs=1e-6)
        assert row["model_score"] == pytest.approx(score, abs=1e-6)
        assert row["model_label"] == name
    changed = [
        r
        for r in run.rows
        if r["post_id"] in old_by_id and r["model_score"] != old_by_id[r["post_id"]]["model_score"]
    ]
    assert changed  # the new version really scored them


def test_scored_files_rewritten_by_the_deletions_sweep_are_still_read(
    spark: Any, tmp_path: Path
) -> None:
    # the sweep (musicnft.batch.deletions.rewrite_file) rewrites scored/ files in place: Spark's
    # log keeps the old sizes and, locally, Hadoop's old checksums; read_scored must not trip
    from musicnft.adapters.local_lake import LocalLake
    from musicnft.batch.deletions import Targets, rewrite_file

    small = build_spark_lake(tmp_path / "lake", drops=1, per_drop=12)
    run = _run(spark, small, max_files_per_trigger=10)
    assert not list((small.root / "scored").rglob(".part-*.crc"))
    victim = run.rows[0]["post_id"]
    (path,) = [f for f in run.files if victim in pq.read_table(f).column("post_id").to_pylist()]
    key = str(Path(path).relative_to(small.root))
    removed, _scrubbed, _windows = rewrite_file(
        LocalLake(small.root), key, Targets(delete_posts=frozenset({victim}))
    )
    assert removed == 1
    ids = [r.post_id for r in read_scored(spark, str(small.root)).collect()]
    assert sorted(ids) == sorted(r["post_id"] for r in run.rows if r["post_id"] != victim)


def _forget(log: Path, batch: int) -> None:
    """Remove a batch from one of Spark's checkpoint logs (and Hadoop's local checksum of it)."""
    (log / str(batch)).unlink()
    (log / f".{batch}.crc").unlink(missing_ok=True)


def test_a_replayed_batch_replaces_the_files_of_its_killed_attempt(
    spark: Any, tmp_path: Path
) -> None:
    # Spark replays a batch whose commit is missing from the checkpoint. (1) the kill came after
    # the writer committed the batch in its log: the replay writes nothing; (2) the kill came
    # while the batch's files were being moved in (its log entry missing, a stray file of the
    # same batch in an hour folder): the replay replaces them, so each post is there once.
    small = build_spark_lake(tmp_path / "lake", drops=2, per_drop=10)
    later = START + timedelta(hours=3)
    small.add_drop([post(900, later, later + timedelta(seconds=5))], modified=datetime.now(UTC))
    run = _run(spark, small, max_files_per_trigger=1)
    checkpoint = Path(run.result.checkpoint_path)
    log = checkpoint / "_scored_log"
    batch = max(int(p.stem) for p in log.glob("*.json") if json.loads(p.read_text())["files"])
    entry = json.loads((log / f"{batch}.json").read_text())
    # the batch with rows must be the last one: forget the no-data batches Spark ran after it
    for name in ("offsets", "commits"):
        for p in (checkpoint / name).iterdir():
            if p.name.isdigit() and int(p.name) > batch:
                _forget(checkpoint / name, int(p.name))
    for p in log.glob("*.json"):
        if int(p.stem) > batch:
            p.unlink()
    digest = _digest(small.root / "scored")

    _forget(checkpoint / "commits", batch)
    again = _run(spark, small, max_files_per_trigger=1)
    assert (checkpoint / "commits" / str(batch)).exists()  # the batch ran again
    assert again.result.rows_written == 0
    assert _digest(small.root / "scored") == digest  # and left its files as they were

    _forget(checkpoint / "commits", batch)
    (log / f"{batch}.json").unlink()
    first_file = small.root / entry["files"][0]
    stray = first_file.parent / f"part-b{batch:012d}-00042.parquet"
    stray.write_bytes(first_file.read_bytes())  # the killed attempt wrote more files
    replayed = _run(spark, small, max_files_per_trigger=1)
    assert not stray.exists()
    assert (log / f"{batch}.json").exists() and not (log / f"{batch}.pending").exists()
    assert replayed.result.rows_written == sum(
        pq.read_metadata(small.root / f).num_rows for f in entry["files"]
    )
    ids = [r["post_id"] for r in replayed.rows]
    assert len(ids) == len(set(ids)) and set(ids) == set(small.unique_posts())
    # a plain listing of scored/ sees the same: every file on disk is a committed one
    assert _on_disk(small) == set(replayed.files)
    listed = pq.read_table(small.root / "scored").column("post_id").to_pylist()
    assert sorted(listed) == sorted(ids)
    assert not (checkpoint / "_staging").exists() or not any((checkpoint / "_staging").iterdir())


def test_the_commit_log_is_compacted_and_a_compacted_batch_is_not_written_again(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every 2nd batch folds the sink's log into <N>.compact (commit_log.py); readers see each
    # post once; a batch Spark replays after a kill, whose entry now lives only in a compact,
    # writes nothing
    from musicnft.spark import commit_log

    monkeypatch.setattr(commit_log, "COMPACT_INTERVAL", 2)
    small = build_spark_lake(tmp_path / "lake", drops=5, per_drop=6)
    run = _run(spark, small, max_files_per_trigger=1)
    checkpoint = Path(run.result.checkpoint_path)
    log = checkpoint / "_scored_log"
    compacts = sorted(int(p.stem) for p in log.glob("*.compact"))
    assert compacts and not [p for p in log.glob("*.json") if int(p.stem) <= compacts[-1]]
    assert len(list(log.iterdir())) <= 2  # the newest compact, at most one entry after it
    ids = [r["post_id"] for r in run.rows]
    assert len(ids) == len(set(ids)) and set(ids) == set(small.unique_posts())
    assert _on_disk(small) == set(run.files)
    replayed = max(
        e["batch"]
        for e in json.loads((log / f"{compacts[-1]}.compact").read_text())["entries"]
        if e["files"]
    )
    digest = _digest(small.root / "scored")
    for name in ("offsets", "commits"):
        for p in (checkpoint / name).iterdir():
            if p.name.isdigit() and int(p.name) > replayed:
                _forget(checkpoint / name, int(p.name))
    _forget(checkpoint / "commits", replayed)
    again = _run(spark, small, max_files_per_trigger=1)
    assert (checkpoint / "commits" / str(replayed)).exists()  # the batch ran again
    assert again.result.rows_written == 0
    assert _digest(small.root / "scored") == digest
    assert sorted(r["post_id"] for r in again.rows) == sorted(ids)
