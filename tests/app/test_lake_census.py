"""`status` remembers each lake file's post ids: a second look reads only what is new or changed
(issue #12 item 14: it used to read, on S3 download, every file every 15 s)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicnft.adapters.local_lake import LocalLake
from musicnft.app.lake_census import lake_census
from musicnft.app.status import lake_counts


def _parquet(ids: list[str]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"post_id": pa.array(ids, pa.string())}), buf)
    return buf.getvalue()


class CountingLake(LocalLake):
    """A local lake that counts whole-object reads (what costs a download on S3)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: list[str] = []

    def get(self, key: str) -> bytes:
        self.reads.append(key)
        return super().get(key)

    def local_path(self, key: str) -> Path | None:
        self.reads.append(key)
        return super().local_path(key)


def _raw(lake: LocalLake) -> list:
    return [o for o in lake.list_objects("raw/") if o.key.endswith(".parquet")]


def test_a_second_look_reads_only_new_and_rewritten_files_and_forgets_removed_ones(
    tmp_path: Path,
) -> None:
    lake = CountingLake(tmp_path / "lake")
    memory = tmp_path / "status" / "census.parquet"
    lake.put("raw/2021/12/01/00/a.parquet", _parquet(["1", "2", "3"]))
    lake.put("raw/2021/12/01/01/b.parquet", _parquet(["3", "4"]))
    lake.put("raw/2021/12/01/01/empty.parquet", _parquet([]))
    # WHEN status looks twice
    first = lake_census(lake, _raw(lake), memory)
    lake.reads.clear()
    second = lake_census(lake, _raw(lake), memory)
    # THEN the second look reads nothing and counts the same
    assert (first.rows, first.unique, first.files, first.read) == (5, 4, 3, 3)
    assert (second.rows, second.unique, second.files, second.read) == (5, 4, 3, 0)
    assert not [k for k in lake.reads if k.startswith("raw/")]
    # WHEN a file is added, one rewritten (a purge) and one removed
    lake.put("raw/2021/12/01/02/c.parquet", _parquet(["5", "1"]))
    lake.put("raw/2021/12/01/00/a.parquet", _parquet(["1", "2"]))
    later = os.stat(tmp_path / "lake/raw/2021/12/01/00/a.parquet").st_mtime + 5
    os.utime(tmp_path / "lake/raw/2021/12/01/00/a.parquet", (later, later))
    (tmp_path / "lake/raw/2021/12/01/01/b.parquet").unlink()
    lake.reads.clear()
    third = lake_census(lake, _raw(lake), memory)
    # THEN exactly the new and the rewritten file are read, and the counts are the lake's now
    assert sorted(k for k in lake.reads if k.startswith("raw/")) == [
        "raw/2021/12/01/00/a.parquet",
        "raw/2021/12/01/02/c.parquet",
    ]
    assert (third.rows, third.unique, third.files) == (4, 3, 3)
    assert lake_census(lake, _raw(lake), None) == type(third)(4, 3, 3, 3)


@pytest.mark.parametrize("garbage", [b"", b"not parquet at all", _parquet(["x"])])
def test_an_unreadable_memory_costs_one_full_read_and_nothing_else(
    tmp_path: Path, garbage: bytes
) -> None:
    lake = LocalLake(tmp_path / "lake")
    lake.put("raw/2021/12/01/00/a.parquet", _parquet(["1", "2"]))
    memory = tmp_path / "census.parquet"
    memory.write_bytes(garbage)
    census = lake_census(lake, _raw(lake), memory)
    assert (census.rows, census.unique, census.read) == (2, 2, 1)
    assert lake_census(lake, _raw(lake), memory).read == 0


def test_lake_counts_with_a_memory_equal_those_without(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    for i in range(5):
        lake.put(f"raw/2021/12/01/0{i}/f{i}.parquet", _parquet([str(i), str(i + 1)]))
    memory = tmp_path / "m.parquet"
    assert lake_counts(lake, memory) == lake_counts(lake) == lake_counts(lake, memory)
