"""Unreadable lake files are quarantined with their reason; the windows they touch keep working.

A file missing a required column passes a footer read and would then fail every run of every
window it touches; a file with corrupt pages fails at the first read. Either is set aside (recorded
in `lake_quarantine`, counted by `status`), the window is built from its other files, and a
transient error (network) fails the run for a retry without quarantining anything.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.app.status import collect_status
from musicnft.batch import window_pipeline as wp
from musicnft.batch.backfill import index_lake
from musicnft.batch.lake_index import LakeIndex
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.lake_layout import raw_key
from musicnft.contract.schema import POST_SCHEMA, format_timestamp, to_table
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.settings import DEFAULT_KEYWORDS, Settings
from tests.support.records import x_message

WINDOW = datetime(2021, 12, 1, 1, 30, tzinfo=UTC)


def _posts(first: int, n: int) -> list[dict]:
    matcher = KeywordMatcher(DEFAULT_KEYWORDS)
    return [
        normalize_x_message(
            x_message(first + i, created=format_timestamp(WINDOW + timedelta(minutes=i))),
            matcher,
            WINDOW + timedelta(hours=1),
        )
        for i in range(n)
    ]


def _put(lake: LocalLake, data: bytes, minute: int) -> str:
    key = raw_key("musicnft-posts", WINDOW + timedelta(hours=1, minutes=minute))
    lake.put(key, data)
    return key


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


@pytest.fixture
def lake_with_bad_files(tmp_path: Path) -> tuple[LocalLake, EmbeddedWarehouse, dict[str, str]]:
    lake = LocalLake(tmp_path / "data" / "lake")
    good = _put(lake, _parquet(to_table(_posts(0, 5), POST_SCHEMA)), 0)
    # a file without the required `text` column (its footer reads fine)
    no_text = to_table(_posts(100, 3), POST_SCHEMA).drop_columns(["text"])
    missing = _put(lake, _parquet(no_text), 1)
    # a file missing only optional columns: nulls, and its posts count
    optional = to_table(_posts(200, 2), POST_SCHEMA).drop_columns(["author_location", "urls"])
    partial = _put(lake, _parquet(optional), 2)
    # a file with corrupt pages: a valid footer over garbage data
    data = bytearray(_parquet(to_table(_posts(300, 4), POST_SCHEMA)))
    for i in range(8, len(data) // 2):
        data[i] = 0xFF
    corrupt = _put(lake, bytes(data), 3)
    warehouse = EmbeddedWarehouse(tmp_path / "data" / "warehouse")
    keys = {"good": good, "missing": missing, "partial": partial, "corrupt": corrupt}
    return lake, warehouse, keys


def test_a_bad_file_is_quarantined_and_its_window_still_builds(
    lake_with_bad_files: tuple[LocalLake, EmbeddedWarehouse, dict[str, str]], tmp_path: Path
) -> None:
    lake, warehouse, keys = lake_with_bad_files
    # WHEN the lake is indexed and the window built (twice: the second run must not fail either)
    index_lake(lake, warehouse)
    first = wp.build_posts(lake, warehouse, WINDOW)
    second = wp.build_posts(lake, warehouse, WINDOW)
    # THEN the good and the partial file's posts are the window's; the bad files are set aside
    assert first.unique_posts == second.unique_posts == 5 + 2
    quarantined = LakeIndex(warehouse).quarantined()
    assert set(quarantined) == {keys["missing"], keys["corrupt"]}
    assert "text" in quarantined[keys["missing"]]
    assert keys["good"] in first.files_read and keys["corrupt"] not in second.files_read
    # AND status counts them
    settings = Settings(data_dir=tmp_path / "data")
    assert collect_status(settings, lake, warehouse)["lake_quarantined"] == 2


def test_a_transient_read_error_fails_the_run_and_quarantines_nothing(
    lake_with_bad_files: tuple[LocalLake, EmbeddedWarehouse, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lake, warehouse, keys = lake_with_bad_files
    index_lake(lake, warehouse)

    def unreachable(key: str) -> None:
        raise ConnectionError("the lake is unreachable")

    monkeypatch.setattr(lake, "local_path", unreachable)
    with pytest.raises(ConnectionError):
        wp.build_posts(lake, warehouse, WINDOW)
    assert keys["good"] not in LakeIndex(warehouse).quarantined()
