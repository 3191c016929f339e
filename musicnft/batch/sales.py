"""NFT market sales in the batch path: the lake's `sales/` files → `nft_sales_15m`, per window.

The sales collector (`musicnft sales`) writes normalized sales (`musicnft.contract.sale`) as
Parquet under `sales/YYYY/MM/DD/HH/` (the hour they were read). Like posts, a file can hold sales
of several windows and a window's sales can be in several files (late events, the collector's
re-reads of recent minutes, a rerun of a range): the drop sensor and backfills index each file's
event-time range in `lake_files`, and a window reads exactly the files touching it, keeps one
row per `sale_id` (the latest read wins: a changed event replaces what was read before) and
replaces its rows of `nft_sales_15m` (idempotent: running a window twice leaves the same table).

`aggregate_sales` is the pure part: deduplicated sales of one window → one row per collection
with sales (no row for a collection without any: the dashboard reads "no sales" from the gap).
"""

from __future__ import annotations

import io
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from musicnft.batch.lake_index import LakeIndex, UnreadableLakeFile, read_table, unreadable_reason
from musicnft.batch.window_sql import in_windows
from musicnft.contract.lake_layout import SALES_PREFIX, sales_key
from musicnft.contract.sale import SALE_COLUMNS, SALE_FIELDS, sale_arrow_schema
from musicnft.contract.tables import NFT_SALES_SCHEMA
from musicnft.contract.windows import spans, window_key, window_start
from musicnft.ports import Lake

log = logging.getLogger("musicnft.sales")

TABLE = "nft_sales_15m"
Row = dict[str, Any]
REQUIRED = tuple(f.name for f in SALE_FIELDS if f.required)


# ---- writing (the collector)


def sales_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Conformed sale rows → an Arrow table with the sale schema."""
    return pa.Table.from_pylist([dict(r) for r in rows], schema=sale_arrow_schema())


def sales_parquet(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Conformed sale rows → the bytes of one Parquet file (with footer statistics, from which
    the drop sensor learns the file's event-time range)."""
    sink = io.BytesIO()
    pq.write_table(sales_table(rows), sink, compression="zstd", write_statistics=True)
    return sink.getvalue()


def write_sales(lake: Lake, rows: Sequence[Mapping[str, Any]], source: str) -> str | None:
    """Put conformed sales in the lake as one file (atomic: whole or not at all); its key, or
    None when there is nothing to write."""
    if not rows:
        return None
    oldest = min(r["ingested_at"] for r in rows)
    key = sales_key(source, oldest)
    lake.put(key, sales_parquet(rows))
    return key


# ---- the pure part


def dedupe_sales(sales: Iterable[Mapping[str, Any]]) -> list[Row]:
    """One row per sale_id: the latest read wins (ties: the later row), in event-time order."""
    best: dict[str, Mapping[str, Any]] = {}
    for sale in sales:
        sid = sale["sale_id"]
        seen = best.get(sid)
        if seen is None or sale["ingested_at"] >= seen["ingested_at"]:
            best[sid] = sale
    return [
        dict(s) for s in sorted(best.values(), key=lambda s: (s["event_timestamp"], s["sale_id"]))
    ]


def aggregate_sales(
    sales: Sequence[Mapping[str, Any]], window: datetime, updated_at: datetime
) -> list[Row]:
    """Deduplicated sales of one window → `nft_sales_15m` rows, one per collection with sales.

    `sale_count` counts every sale (whatever it was paid in); `volume_eth`, `avg_price_eth` and
    `max_price_eth` are over the sales priced in ETH or WETH (`price_eth`): volume 0.0 and no
    average or maximum when none was; `unique_buyers` counts distinct buyer addresses."""
    by_collection: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for sale in sales:
        by_collection[sale["collection"]].append(sale)
    rows = []
    for collection in sorted(by_collection):
        group = by_collection[collection]
        eth = [float(s["price_eth"]) for s in group if s.get("price_eth") is not None]
        buyers = {str(s["buyer"]).lower() for s in group if s.get("buyer")}
        rows.append(
            {
                "window_start": window,
                "collection": collection,
                "sale_count": len(group),
                "volume_eth": float(sum(eth)),
                "avg_price_eth": sum(eth) / len(eth) if eth else None,
                "max_price_eth": max(eth) if eth else None,
                "unique_buyers": len(buyers),
                "updated_at": updated_at,
            }
        )
    return rows


# ---- one window


@dataclass
class SalesResult:
    window: datetime
    sales: int  # distinct sale ids in the window
    lake_rows: int  # rows read (a sale read several times counts each time)
    rows: int  # nft_sales_15m rows written (collections with sales)
    files_read: list[str]
    negative_prices: int = 0  # rows of the lake with a negative price (never aggregated)
    preview: list[Row] = field(default_factory=list)

    @property
    def duplicates_in_lake(self) -> int:
        return self.lake_rows - self.sales


def _read_file(lake: Lake, key: str, windows: Sequence[datetime]) -> pa.Table:
    filters = [
        [("event_timestamp", ">=", lo), ("event_timestamp", "<", hi)] for lo, hi in spans(windows)
    ]
    table = read_table(lake, key, list(SALE_COLUMNS), filters)
    absent = [c for c in REQUIRED if pa.types.is_null(table.schema.field(c).type)]
    if absent:
        raise UnreadableLakeFile(key, f"required sale column(s) missing: {', '.join(absent)}")
    return table


def window_sales(lake: Lake, warehouse: Any, window: datetime) -> tuple[list[Row], int, list[str]]:
    """(the window's sales, one per sale_id; rows read; files read) from every indexed sales file
    touching the window. An unreadable file is quarantined; a transient error fails the call."""
    return window_sales_by_window(lake, warehouse, [window])[window]


def window_sales_by_window(
    lake: Lake, warehouse: Any, windows: Sequence[datetime]
) -> dict[datetime, tuple[list[Row], int, list[str]]]:
    """`window_sales` for several windows, each sales file read once."""
    chosen = sorted(set(windows))
    if not chosen:
        return {}
    index = LakeIndex(warehouse)
    files = index.files_for_windows(chosen, prefix=SALES_PREFIX)
    gone: set[str] = set()
    raw: dict[datetime, list[Row]] = {w: [] for w in chosen}
    for key in sorted({k for keys in files.values() for k in keys}):
        try:
            table = _read_file(lake, key, chosen)
        except FileNotFoundError:
            log.warning("sales file %s is indexed but gone; skipping it", key)
            gone.add(key)
            continue
        except Exception as exc:
            reason = unreadable_reason(exc)
            if reason is None:
                raise  # transient: the run fails and is retried
            index.quarantine(key, reason)
            gone.add(key)
            continue
        for sale in table.to_pylist():
            into = raw.get(window_start(sale["event_timestamp"]))
            if into is not None:
                into.append(sale)
    return {
        w: (dedupe_sales(raw[w]), len(raw[w]), [k for k in files[w] if k not in gone])
        for w in chosen
    }


def build_sales(
    lake: Lake, warehouse: Any, window: datetime, now: datetime | None = None
) -> SalesResult:
    """Replace the window's rows of `nft_sales_15m` with its deduplicated sales' aggregates."""
    return build_sales_windows(lake, warehouse, [window], now)[0]


def build_sales_windows(
    lake: Lake, warehouse: Any, windows: Sequence[datetime], now: datetime | None = None
) -> list[SalesResult]:
    """`build_sales` for several windows: each sales file read once, one write."""
    chosen = sorted(set(windows))
    if not chosen:
        return []
    now = now or datetime.now(UTC)
    results, every = [], []
    for window, (sales, lake_rows, files) in window_sales_by_window(
        lake, warehouse, chosen
    ).items():
        negative = [s for s in sales if s["price"] is not None and s["price"] < 0]
        if negative:  # the contract refuses them at the collector; a foreign writer may not
            log.error("window %s: %d sale(s) with a negative price left out", window, len(negative))
            sales = [s for s in sales if s not in negative]
        rows = aggregate_sales(sales, window, now)
        every += rows
        results.append(
            SalesResult(
                window=window,
                sales=len(sales),
                lake_rows=lake_rows,
                rows=len(rows),
                files_read=files,
                negative_prices=len(negative),
                preview=rows[:5],
            )
        )
    warehouse.replace_partitions(
        TABLE,
        [window_key(w) for w in chosen],
        pa.Table.from_pylist(every, schema=NFT_SALES_SCHEMA),
    )
    return results


# ---- checks (read back from the warehouse)


def stored_sales_counts(warehouse: Any, windows: Sequence[datetime]) -> dict[datetime, Row]:
    """window -> what its stored rows say (sales counted, rows repeating a collection, rows with
    a negative volume, average or maximum price), in one query for the checks below."""
    found = {w: {"counted": 0, "doubled_rows": 0, "negative_rows": 0} for w in windows}
    if not windows:
        return found
    condition, params = in_windows(windows)
    rows = warehouse.query(
        "SELECT window_start, CAST(coalesce(sum(sale_count), 0) AS BIGINT) AS counted, "
        "count(*) - count(DISTINCT collection) AS doubled_rows, "
        "countif(volume_eth < 0 OR avg_price_eth < 0 OR max_price_eth < 0) AS negative_rows "
        f"FROM {TABLE} WHERE {condition} GROUP BY window_start",
        params,
    ).to_pylist()
    for row in rows:
        found[row["window_start"]] = {k: int(row[k]) for k in found[windows[0]]}
    return found


def sales_counted_once(unique_sales: int, stored: Row) -> tuple[bool, dict[str, int]]:
    """(passed, detail) of the window's stored counts against its distinct sale ids."""
    counted, doubled = stored["counted"], stored["doubled_rows"]
    detail = {"sale_ids": unique_sales, "counted": counted, "duplicate_rows": doubled}
    return counted == unique_sales and doubled == 0, detail


def check_sales_counted_once(
    warehouse: Any, window: datetime, unique_sales: int
) -> tuple[bool, dict[str, int]]:
    """(passed, detail): the window's stored sale counts add up to its distinct sale ids in the
    lake (a sale counted twice, or a stale row left by an earlier write, fails it), and each
    collection has one row."""
    return sales_counted_once(unique_sales, stored_sales_counts(warehouse, [window])[window])


def check_sales_prices(warehouse: Any, window: datetime) -> tuple[bool, int]:
    """(passed, rows with a negative volume, average or maximum price) for the window."""
    n = stored_sales_counts(warehouse, [window])[window]["negative_rows"]
    return n == 0, n
