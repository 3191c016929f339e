"""NFT sales in `musicnft status` (issue 17): what the collector put in the lake, what the windows
counted, and how far each collection's cursor has got.

- `sales`: unique sale ids in the lake's `sales/` Parquet (the truth, as `lake_unique` is for
  posts), with `sales_lake_rows` (a sale re-read after a change is a second row) and
  `sales_lake_files`; read through the same remembered census as the posts, so a look reads only
  files new since the last one.
- `sales_windows`: rows of `nft_sales_15m` (one per window and collection with sales), and
  `sales_windowed`: the sales those rows count (deduplicated by `sale_id` per window).
- `sales_cursors`: per collection, the time up to which the OpenSea collector has fetched every
  sale (its SQLite state beside the data, read only; empty where no collector ran on this host).
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from musicnft.app.lake_census import lake_census
from musicnft.contract.lake_layout import SALES_PREFIX
from musicnft.ports import Lake, Warehouse
from musicnft.settings import Settings

log = logging.getLogger("musicnft.status")


def collector_state_path(settings: Settings, source: str = "opensea") -> Path:
    """Where `musicnft sales --source <source>` keeps its cursors (`musicnft.app.cli.sales`)."""
    return settings.data_dir / "sales" / f"{source}.sqlite"


def sales_cursors(path: Path) -> dict[str, str]:
    """collection -> its cursor (UTC, ISO 8601), read without writing; {} without a state."""
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute("SELECT collection, until FROM cursors ORDER BY collection").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}
        raise
    finally:
        db.close()
    return {c: datetime.fromtimestamp(until, UTC).isoformat() for c, until in rows}


def sales_counts(settings: Settings, lake: Lake, warehouse: Warehouse) -> dict[str, Any]:
    """The status keys above."""
    files = [o for o in lake.list_objects(SALES_PREFIX) if o.key.endswith(".parquet")]
    census = lake_census(
        lake, files, settings.data_dir / "status" / "sales_census.parquet", column="sale_id"
    )
    try:
        row = warehouse.query(
            "SELECT count(*) AS n, CAST(coalesce(sum(sale_count), 0) AS BIGINT) AS s "
            "FROM nft_sales_15m"
        ).to_pylist()[0]
        windows: int | None = int(row["n"])
        windowed: int | None = int(row["s"])
    except Exception as exc:  # a warehouse not yet migrated: status still prints the rest
        log.warning("nft_sales_15m not readable: %s", exc)
        windows = windowed = None
    return {
        "sales": census.unique,
        "sales_lake_rows": census.rows,
        "sales_lake_files": census.files,
        "sales_windows": windows,
        "sales_windowed": windowed,
        "sales_cursors": sales_cursors(collector_state_path(settings)),
    }
