"""The Spark job's plain-Python parts, without Spark: the corrupt-drop ledger (quarantine.py) and
the reader of the file sink's log (scored.committed_files)."""

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


def test_committed_files_follow_the_newest_compact_file_and_later_batches(tmp_path: Path) -> None:
    log = tmp_path / "scored" / "_spark_metadata"
    log.mkdir(parents=True)

    def entry(name: str, action: str = "add") -> str:
        return json.dumps({"path": f"file://{tmp_path}/scored/{name}", "action": action})

    (log / "0").write_text("v1\n" + entry("a.parquet"))
    (log / "1.compact").write_text("v1\n" + entry("a.parquet") + "\n" + entry("b.parquet"))
    (log / "1").write_text("v1\n" + entry("stale.parquet"))  # superseded by 1.compact
    (log / "2").write_text("v1\n" + entry("c.parquet") + "\n" + entry("a.parquet", "delete"))
    (log / "3.tmp").write_text("v1\n" + entry("uncommitted.parquet"))  # not a log file
    assert committed_files(str(tmp_path)) == [
        f"{tmp_path}/scored/b.parquet",
        f"{tmp_path}/scored/c.parquet",
    ]
    (log / "4").write_text("no version line\n")
    with pytest.raises(ValueError, match="not a file sink log"):
        committed_files(str(tmp_path))
