"""The scoring job's commit log compaction (musicnft/spark/commit_log.py), without Spark: readers
give the same answers before and after compaction and after a kill at any point of it, and the
sink's "is batch N committed" check looks in the compact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from musicnft.spark import commit_log
from musicnft.spark.lake_fs import LakeRoot
from musicnft.spark.layout import staging_key
from musicnft.spark.scored import committed_files, committed_keys
from musicnft.spark.sink import BatchWriter

BATCHES = 25


def _log(root: Path, version: str | None = None) -> Path:
    sub = f"spark-score-rescore/{version}" if version else "spark-score"
    return root / "checkpoints" / sub / "_scored_log"


def _commit(root: Path, batch: int, version: str | None = None) -> None:
    """The entry `BatchWriter` writes for a batch: batches divisible by 4 are no-data batches
    (no files); the others have a file or two, and batch 7 lists a file batch 3 listed too."""
    files = [] if batch % 4 == 0 else [f"scored/2021/12/01/{batch % 24:02d}/part-b{batch}-0"]
    if batch % 3 == 0 and files:
        files.append(f"scored/2021/12/02/00/part-b{batch}-1")
    if batch == 7:
        files.append("scored/2021/12/01/03/part-b3-0")
    doc = {"batch": batch, "files": files, "rows": 10 * len(files)}
    LakeRoot.of(str(root)).put(f"{_log(Path(''), version)}/{batch}.json", json.dumps(doc).encode())


def _answers(root: Path, version: str | None = None) -> tuple[Any, ...]:
    lake = LakeRoot.of(str(root))
    return (
        committed_files(str(root), version),
        committed_keys(str(root), version),
        [commit_log.is_committed(lake, b, version) for b in range(BATCHES + 5)],
        commit_log.entries(lake, version),
    )


def _names(root: Path, version: str | None = None) -> set[str]:
    return {p.name for p in _log(root, version).iterdir()}


def _lake_with_entries(root: Path, version: str | None = None) -> LakeRoot:
    for b in range(BATCHES):
        _commit(root, b, version)
    return LakeRoot.of(str(root))


@pytest.mark.parametrize("version", [None, "v2"])
def test_compaction_changes_no_answer_and_bounds_the_log(
    tmp_path: Path, version: str | None
) -> None:
    lake = _lake_with_entries(tmp_path, version)
    before = _answers(tmp_path, version)
    assert len(before[0]) == 24  # 25 batches: 7 no-data ones, 6 with two files, one repeated
    assert before[2] == [True] * BATCHES + [False] * 5

    assert commit_log.compact(lake, 9, version) == 10  # 0.json .. 9.json
    assert _names(tmp_path, version) == {"9.compact"} | {f"{b}.json" for b in range(10, BATCHES)}
    assert _answers(tmp_path, version) == before
    assert commit_log.compact(lake, 19, version) == 11  # 10.json .. 19.json and 9.compact
    assert _names(tmp_path, version) == {"19.compact"} | {f"{b}.json" for b in range(20, BATCHES)}
    assert _answers(tmp_path, version) == before
    doc = json.loads((_log(tmp_path, version) / "19.compact").read_text())
    assert doc["compact"] == 19 and [e["batch"] for e in doc["entries"]] == list(range(20))


def test_an_old_checkpoint_of_json_entries_reads_and_compacts(tmp_path: Path) -> None:
    lake = _lake_with_entries(tmp_path)
    (_log(tmp_path) / "30.pending").write_text('{"batch": 30, "files": ["in-flight"]}')
    before = _answers(tmp_path)
    assert "scored/in-flight" not in before[0]
    commit_log.compact(lake, 24, None)
    assert _names(tmp_path) == {"24.compact", "30.pending"}  # a batch in flight is left alone
    assert _answers(tmp_path) == before


class _Killed(Exception):
    """The process dying at that point of the compaction."""


@pytest.mark.parametrize("deletions_before_kill", [0, 1, 5])
def test_a_compaction_killed_before_or_while_deleting_changes_no_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deletions_before_kill: int
) -> None:
    lake = _lake_with_entries(tmp_path)
    before = _answers(tmp_path)
    real = LakeRoot.delete
    done: list[str] = []

    def delete(self: LakeRoot, key: str) -> None:
        if len(done) == deletions_before_kill:
            raise _Killed(key)
        done.append(key)
        real(self, key)

    monkeypatch.setattr(LakeRoot, "delete", delete)
    with pytest.raises(_Killed):
        commit_log.compact(lake, 9, None)
    monkeypatch.setattr(LakeRoot, "delete", real)
    names = _names(tmp_path)
    assert "9.compact" in names  # the compact is in place, the old entries partly still there
    assert len({f"{b}.json" for b in range(10)} & names) == 10 - deletions_before_kill
    assert _answers(tmp_path) == before
    # the next compaction (or the same one redone) finishes the cleanup
    commit_log.compact(lake, 19, None)
    assert _names(tmp_path) == {"19.compact"} | {f"{b}.json" for b in range(20, BATCHES)}
    assert _answers(tmp_path) == before


def test_a_half_written_compact_temp_file_is_ignored_then_removed(tmp_path: Path) -> None:
    lake = _lake_with_entries(tmp_path)
    before = _answers(tmp_path)
    whole = json.dumps({"compact": 9, "entries": [{"batch": 0, "files": ["x"]}]})
    # killed while writing 9.compact: its temp file holds half a document, no rename happened
    (_log(tmp_path) / "9.compact.tmp-4242").write_text(whole[: len(whole) // 2])
    (_log(tmp_path) / "25.json.tmp-4242").write_text('{"batch": 25, "fi')  # and an entry's
    assert _answers(tmp_path) == before
    commit_log.compact(lake, 9, None)
    assert not [n for n in _names(tmp_path) if ".tmp-" in n]
    assert _answers(tmp_path) == before


def test_a_corrupt_compact_file_is_an_error_not_an_empty_log(tmp_path: Path) -> None:
    lake = _lake_with_entries(tmp_path)
    commit_log.compact(lake, 9, None)
    (_log(tmp_path) / "9.compact").write_text('{"compact": 9}')
    with pytest.raises(ValueError, match="not a scored log compact file"):
        committed_files(str(tmp_path))


def test_the_sink_finds_a_compacted_batch_committed_and_compacts_on_replay(
    tmp_path: Path,
) -> None:
    # a batch replayed by Spark after a kill: its .json was compacted away; the writer must skip
    # it (no DataFrame is touched: None would fail) and write nothing
    lake = _lake_with_entries(tmp_path)
    before = _answers(tmp_path)
    commit_log.compact(lake, 9, None)
    writer = BatchWriter(lake)
    writer.write(None, 5)  # type: ignore[arg-type]
    assert writer.rows[5] == 0
    assert not lake.list(staging_key(5))
    # killed between committing batch 19 and compacting: the replay of 19 compacts
    writer.write(None, 19)  # type: ignore[arg-type]
    assert "19.compact" in _names(tmp_path) and "9.compact" not in _names(tmp_path)
    assert _answers(tmp_path) == before
    # a replay of a batch that is no compaction batch leaves the log as it is
    names = _names(tmp_path)
    writer.write(None, 21)  # type: ignore[arg-type]
    assert _names(tmp_path) == names


def test_the_compaction_interval_is_spark_s_rule() -> None:
    assert commit_log.COMPACT_INTERVAL == 10
    assert [b for b in range(35) if commit_log.is_compaction_batch(b)] == [9, 19, 29]
    assert [b for b in range(7) if commit_log.is_compaction_batch(b, 3)] == [2, 5]
