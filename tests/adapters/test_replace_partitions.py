"""`replace_partitions`: several windows of a windowed table replaced in one write (a run's step
commits once, not once per window), with `replace_partition`'s promises for each of them: the
windows named hold exactly the new rows, windows not named are untouched, and rows outside the
named windows are refused before anything changes. The same on both warehouses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.tables import TABLES
from musicnft.contract.windows import window_key

WINDOWS = [datetime(2021, 12, 1, tzinfo=UTC) + timedelta(minutes=15 * i) for i in range(4)]
TABLE = "hashtag_counts_15m"


def _rows(windows: list[datetime], version: int, per_window: int = 3) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"window_start": w, "hashtag": f"tag{i}", "post_count": version}
            for w in windows
            for i in range(per_window)
        ],
        schema=TABLES[TABLE],
    )


def _contents(wh: Any) -> dict[datetime, tuple[int, int]]:
    """window -> (rows, version) of the table."""
    rows = wh.query(
        f"SELECT window_start, count(*) AS n, max(post_count) AS v FROM {TABLE} "
        "GROUP BY window_start"
    ).to_pylist()
    return {r["window_start"]: (r["n"], r["v"]) for r in rows}


def _embedded(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    wh = EmbeddedWarehouse(tmp_path / "warehouse")
    request.addfinalizer(wh.close)
    return wh


def _bigquery(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    from tests.support.bq import fresh_warehouse

    return fresh_warehouse(request.getfixturevalue("bq_endpoint"), "parts")


WAREHOUSES: dict[str, Callable[[Path, pytest.FixtureRequest], Any]] = {
    "embedded": _embedded,
    "bigquery": _bigquery,
}


@pytest.fixture(params=sorted(WAREHOUSES))
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return WAREHOUSES[request.param](tmp_path, request)


def test_named_windows_hold_exactly_the_new_rows_and_others_are_untouched(warehouse: Any) -> None:
    # GIVEN four windows written at version 1, in one write
    warehouse.replace_partitions(TABLE, [window_key(w) for w in WINDOWS], _rows(WINDOWS, 1))
    assert _contents(warehouse) == dict.fromkeys(WINDOWS, (3, 1))
    # WHEN the first three are replaced at once: the first by 2 rows, the second by none (it
    # lost its posts), the third by 3 rows
    new = pa.concat_tables([_rows(WINDOWS[:1], 2, per_window=2), _rows(WINDOWS[2:3], 2)])
    warehouse.replace_partitions(TABLE, [window_key(w) for w in WINDOWS[:3]], new)
    # THEN each named window holds exactly its new rows, and the fourth is as it was
    assert _contents(warehouse) == {
        WINDOWS[0]: (2, 2),
        WINDOWS[2]: (3, 2),
        WINDOWS[3]: (3, 1),
    }
    # AND replacing again with the same rows changes nothing (a re-run of the step)
    warehouse.replace_partitions(TABLE, [window_key(w) for w in WINDOWS[:3]], new)
    assert _contents(warehouse) == {WINDOWS[0]: (2, 2), WINDOWS[2]: (3, 2), WINDOWS[3]: (3, 1)}


def test_no_rows_empties_every_named_window(warehouse: Any) -> None:
    warehouse.replace_partitions(TABLE, [window_key(w) for w in WINDOWS], _rows(WINDOWS, 1))
    warehouse.replace_partitions(TABLE, [window_key(w) for w in WINDOWS[1:3]], _rows([], 2))
    assert _contents(warehouse) == {WINDOWS[0]: (3, 1), WINDOWS[3]: (3, 1)}


def test_rows_outside_the_named_windows_are_refused_before_anything_changes(
    warehouse: Any,
) -> None:
    warehouse.replace_partitions(TABLE, [window_key(w) for w in WINDOWS], _rows(WINDOWS, 1))
    with pytest.raises(ValueError, match="outside windows"):
        warehouse.replace_partitions(
            TABLE, [window_key(w) for w in WINDOWS[:2]], _rows(WINDOWS[1:3], 2)
        )
    assert _contents(warehouse) == dict.fromkeys(WINDOWS, (3, 1))


def test_only_windowed_tables_are_replaced_by_window(warehouse: Any) -> None:
    with pytest.raises(ValueError, match="not replaced by window"):
        warehouse.replace_partitions("posts_hot", [window_key(WINDOWS[0])], _rows([], 1))


def test_partition_schemas_tell_written_windows_from_others_in_one_read(warehouse: Any) -> None:
    warehouse.replace_partitions(TABLE, [window_key(w) for w in WINDOWS[:2]], _rows(WINDOWS[:2], 1))
    keys = [window_key(w) for w in WINDOWS]
    found = warehouse.partition_schemas(TABLE, keys)
    assert list(found) == keys
    assert [s is not None for s in found.values()] == [True, True, False, False]
    assert found[keys[0]] is not None and "hashtag" in found[keys[0]].names
    assert [warehouse.partition_schema(TABLE, k) is not None for k in keys] == [
        True,
        True,
        False,
        False,
    ]


def test_embedded_commits_once_for_all_the_windows(tmp_path: Path) -> None:
    wh = EmbeddedWarehouse(tmp_path / "warehouse")
    try:
        before = _snapshots(wh)
        wh.replace_partitions(TABLE, [window_key(w) for w in WINDOWS], _rows(WINDOWS, 1))
        assert _snapshots(wh) == before + 1
        # AND each window is known to have been written (what partition_schema reports)
        assert all(wh.partition_schema(TABLE, window_key(w)) is not None for w in WINDOWS)
        assert wh.partition_schema(TABLE, window_key(WINDOWS[-1] + timedelta(minutes=15))) is None
    finally:
        wh.close()


def _snapshots(wh: EmbeddedWarehouse) -> int:
    from musicnft.adapters.ducklake_catalog import ALIAS

    return int(
        wh.query(f"SELECT count(*) FROM ducklake_snapshots('{ALIAS}')", read_only=False)
        .column(0)[0]
        .as_py()
    )
