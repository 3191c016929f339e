"""The Spark job's plain-Python parts, without Spark: the corrupt-drop ledger (quarantine.py) and
the reader of the job's commit log (scored.committed_files) and the sink's file plan."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicnft.contract.lake_layout import raw_key
from musicnft.spark import quarantine
from musicnft.spark.lake_fs import LakeRoot
from musicnft.spark.quarantine import LEDGER_PREFIX, FileCheck, quarantined
from musicnft.spark.scored import committed_files
from musicnft.spark.sink import plan_moves
from tests.support.spark_lake import START, STREAM, parquet_bytes, post


def _put(root: Path, key: str, data: bytes) -> str:
    LakeRoot.of(str(root)).put(key, data)
    return key


def test_the_ledger_records_bad_drops_with_reasons_and_checks_each_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = _put(tmp_path, raw_key(STREAM, START, "good"), parquet_bytes([post(1, START, START)]))
    garbage = _put(tmp_path, raw_key(STREAM, START, "garbage"), b"PAR1 not really")
    buf = pa.BufferOutputStream()
    pq.write_table(pa.table({"post_id": ["x:1"], "text": ["hi"]}), buf)  # no created_at & co.
    partial = _put(tmp_path, raw_key(STREAM, START, "partial"), buf.getvalue().to_pybytes())
    check = FileCheck(LakeRoot.of(str(tmp_path)))
    bad = check.run()
    assert set(bad) == {garbage, partial}
    assert "created_at" in bad[partial] and "required column" in bad[partial]
    assert good in check.ok
    assert quarantined(str(tmp_path)) == bad

    # a new process reads the ledger and checks only files it has not seen
    later = _put(
        tmp_path,
        raw_key(STREAM, START + timedelta(hours=1), "later"),
        parquet_bytes([post(2, START, START)]),
    )
    seen: list[str] = []
    real = quarantine.check_file
    monkeypatch.setattr(
        quarantine, "check_file", lambda lake, key: seen.append(key) or real(lake, key)
    )
    assert FileCheck(LakeRoot.of(str(tmp_path))).run() == {}
    assert seen == [later]


def test_the_ledger_is_merged_into_one_object_when_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LakeRoot.of(str(tmp_path))
    for i in range(6):  # six runs, each finding one new drop: six ledger objects
        data = b"bad" if i == 2 else parquet_bytes([post(i, START, START)])
        _put(tmp_path, raw_key(STREAM, START + timedelta(hours=i), f"d{i}"), data)
        FileCheck(lake).run()
    assert len(lake.list(LEDGER_PREFIX, ".json")) == 6
    monkeypatch.setattr(quarantine, "COMPACT_AFTER", 5)
    merged = FileCheck(lake)
    merged.load()
    (only,) = lake.list(LEDGER_PREFIX, ".json")
    doc = json.loads(lake.get(only[0]))
    assert sorted(doc["ok"]) == sorted(merged.ok) and len(doc["ok"]) == 5
    assert list(doc["quarantined"]) == list(merged.bad) and len(merged.bad) == 1
    assert FileCheck(lake).run() == {}  # and nothing is checked again


def test_committed_files_are_the_files_of_committed_batches_in_batch_order(tmp_path: Path) -> None:
    log = tmp_path / "checkpoints" / "spark-score" / "_scored_log"
    log.mkdir(parents=True)

    def entry(batch: int, *names: str) -> str:
        return json.dumps({"batch": batch, "files": [f"scored/2021/12/01/09/{n}" for n in names]})

    (log / "10.json").write_text(entry(10, "c.parquet"))
    (log / "2.json").write_text(entry(2, "a.parquet", "b.parquet"))
    (log / "11.pending").write_text(entry(11, "in-flight.parquet"))  # not committed
    (log / "12.json.tmp-1").write_text(entry(12, "half-written.parquet"))  # not a log entry
    assert committed_files(str(tmp_path)) == [
        f"{tmp_path}/scored/2021/12/01/09/{n}" for n in ("a.parquet", "b.parquet", "c.parquet")
    ]
    assert committed_files(str(tmp_path), "v2") == []  # a version has its own log
    (log / "13.json").write_text("[]")
    with pytest.raises(ValueError, match="not a scored batch log entry"):
        committed_files(str(tmp_path))


def test_staged_files_are_moved_to_bare_hour_folders_named_by_batch() -> None:
    staging = "checkpoints/spark-score/_staging/7/"
    staged = [
        f"{staging}year=2021/month=12/day=01/hour=10/part-00001-x.c000.snappy.parquet",
        f"{staging}year=2021/month=12/day=01/hour=09/part-00001-y.c000.snappy.parquet",
        f"{staging}year=2021/month=12/day=01/hour=09/part-00000-z.c000.snappy.parquet",
    ]
    assert plan_moves(staged, staging, 7) == [
        (staged[2], "scored/2021/12/01/09/part-b000000000007-00000.parquet"),
        (staged[1], "scored/2021/12/01/09/part-b000000000007-00001.parquet"),
        (staged[0], "scored/2021/12/01/10/part-b000000000007-00000.parquet"),
    ]
    versioned = plan_moves(staged[:1], staging, 7, "v2")
    assert versioned[0][1] == "scored/_versions/v2/2021/12/01/10/part-b000000000007-00000.parquet"
    with pytest.raises(ValueError, match="not in a year="):
        plan_moves([f"{staging}part-00000-a.parquet"], staging, 7)
    with pytest.raises(ValueError, match="not an hour folder"):
        plan_moves([f"{staging}year=21/month=12/day=01/hour=09/p.parquet"], staging, 7)
