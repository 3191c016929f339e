"""NFT sales in `musicnft status` (issue 17): unique sale ids in the lake's sales/, the rows of
`nft_sales_15m` and the sales they count, and the collector's cursor per collection."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.app.cli.sales import _state_path
from musicnft.app.sales_status import collector_state_path, sales_counts, sales_cursors
from musicnft.app.status import collect_status, format_status
from musicnft.batch.backfill import index_lake
from musicnft.batch.sales import build_sales, write_sales
from musicnft.hotpath.normalize_opensea import normalize_opensea_event
from musicnft.settings import Settings
from producer.sales import SalesState
from tests.support.fake_opensea import WEI, sale_event
from tests.support.paths import ROOT, cli

W = datetime(2021, 12, 1, 10, 0, tzinfo=UTC)
READ1 = datetime(2021, 12, 1, 11, 0, tzinfo=UTC)
READ2 = datetime(2021, 12, 1, 11, 5, tzinfo=UTC)
CURSOR = datetime(2021, 12, 1, 11, 0, tzinfo=UTC)


def sale(i: int, minutes: int, slug: str, read: datetime, wei: int = WEI) -> dict:
    ts = int((W + timedelta(minutes=minutes)).timestamp())
    return normalize_opensea_event(sale_event(i, slug, ts, wei=wei), slug, read)


def build(tmp_path: Path) -> tuple[Settings, LocalLake, EmbeddedWarehouse]:
    settings = Settings(data_dir=tmp_path / "data")
    lake = LocalLake(settings.data_dir / "lake")
    wh = EmbeddedWarehouse(settings.data_dir / "warehouse")
    # two reads: sale 1 again with a changed price (two lake rows, one sale), sale 4 in the next
    # window, another collection
    write_sales(lake, [sale(1, 1, "tapes", READ1), sale(2, 2, "tapes", READ1)], "opensea")
    write_sales(
        lake,
        [
            sale(1, 1, "tapes", READ2, wei=2 * WEI),
            sale(3, 3, "shards", READ2),
            sale(4, 16, "tapes", READ2),
        ],
        "opensea",
    )
    return settings, lake, wh


def test_status_counts_sales_in_the_lake_and_the_windows(tmp_path: Path) -> None:
    settings, lake, wh = build(tmp_path)
    # GIVEN nothing materialized yet: the lake's sales count, no window yet, no collector state
    counts = sales_counts(settings, lake, wh)
    assert counts == {
        "sales": 4,
        "sales_lake_rows": 5,
        "sales_lake_files": 2,
        "sales_windows": 0,
        "sales_windowed": 0,
        "sales_cursors": {},
    }
    # WHEN the windows are built and the collector has a cursor for one collection
    index_lake(lake, wh)
    build_sales(lake, wh, W)
    build_sales(lake, wh, W + timedelta(minutes=15))
    state = SalesState(collector_state_path(settings))
    state.commit("tapes", [], [], CURSOR)
    state.close()
    # THEN status has them, as integers beside the posts' counts
    status = collect_status(settings, lake, wh)
    assert status["sales"] == 4 and status["sales_lake_rows"] == 5
    assert status["sales_windows"] == 3  # (W, tapes), (W, shards), (W + 15 min, tapes)
    assert status["sales_windowed"] == 4
    assert status["sales_cursors"] == {"tapes": CURSOR.isoformat()}
    assert all(type(status[k]) is int for k in ("sales", "sales_windows", "sales_windowed"))
    json.dumps(status)  # what --json prints
    text = format_status(status)
    assert "NFT sales (unique in the lake's sales/)" in text
    assert "sales fetched up to 2021-12-01T11:00:00+00:00 for tapes" in text
    # a second look reads no file again (the census remembers) and says the same
    assert sales_counts(settings, lake, wh) == {k: status[k] for k in counts}


def test_the_cursor_is_read_where_the_collector_keeps_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    assert collector_state_path(settings) == _state_path(settings, "opensea")
    assert sales_cursors(collector_state_path(settings)) == {}  # no collector ran here
    assert not collector_state_path(settings).exists()  # and status did not create one


def test_status_json_prints_the_sales_keys(tmp_path: Path, cli_env: dict[str, str]) -> None:
    settings, _lake, _wh = build(tmp_path)
    assert cli_env["MUSICNFT_DATA_DIR"] == str(settings.data_dir)
    out = subprocess.run(
        cli("status", "--json"), env=cli_env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    status = json.loads(out.stdout)
    assert (status["sales"], status["sales_lake_files"], status["sales_windows"]) == (4, 2, 0)
    assert status["sales_cursors"] == {}
