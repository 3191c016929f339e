"""NFT market sales per 15-minute window: the lake's `sales/` → `nft_sales_15m`.

In the windows group (so the drop sensor's, the schedule's and backfills' runs rebuild it with the
posts of the same windows), partitioned by UTC day like them, each run recomputing the windows its
tags select with the core's per-window code (`musicnft.batch.sales`).
"""

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dagster as dg

from musicnft.batch import sales as bs
from musicnft.batch import window_pipeline as wp
from musicnft.contract.tables import NFT_SALES_SCHEMA
from musicnft.contract.windows import window_key
from musicnft_dagster.assets.windows import (
    _KINDS,
    COMMON,
    PREVIEW_ROWS,
    DayTotals,
    _asset_metadata,
    _check,
    _markdown,
    _record_days,
    run_windows,
)
from musicnft_dagster.partitions import DAYS, day_key
from musicnft_dagster.resources import LakeResource, WarehouseResource

SALE_IDS_COUNTED_ONCE = dg.AssetCheckSpec(
    "sale_ids_unique",
    asset="nft_sales_15m",
    partitions_def=DAYS,
    description="Each sale is counted once: a window's sale counts add up to its distinct "
    "sale ids in the lake, one row per collection.",
)
PRICES_NON_NEGATIVE = dg.AssetCheckSpec(
    "prices_non_negative",
    asset="nft_sales_15m",
    partitions_def=DAYS,
    description="No negative volume, average or maximum price (and no negative sale price in "
    "the lake left out of a window).",
)


@dg.asset(
    kinds=_KINDS.posts,  # read from the lake, stored in the warehouse
    metadata=_asset_metadata(NFT_SALES_SCHEMA),
    check_specs=[SALE_IDS_COUNTED_ONCE, PRICES_NON_NEGATIVE],
    **COMMON,
)
def nft_sales_15m(
    context: dg.AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.Output | dg.AssetCheckEvaluation]:
    """NFT market sales per 15-minute window and collection, from the sales the collector
    (`musicnft sales`: OpenSea, or the demo's replay) landed in the lake: sales, volume, average
    and highest price in ETH (sales paid in ETH or WETH), distinct buyers. Each sale counts once
    however often it was read (deduplicated by `sale_id`, the latest read wins); a collection
    without sales in a window has no row. The dashboard's "sales beside talk" panel reads it."""
    the_lake, wh = lake.lake(), warehouse.warehouse()
    days: dict[str, DayTotals] = defaultdict(DayTotals)
    counted_bad: dict[str, list[dict[str, Any]]] = defaultdict(list)
    price_bad: dict[str, list[dict[str, Any]]] = defaultdict(list)
    counted: dict[str, dict[str, int]] = defaultdict(lambda: {"sale_ids": 0, "counted": 0})
    negative: dict[str, dict[str, int]] = defaultdict(lambda: {"negative_rows": 0})
    files: set[str] = set()
    per_window: list[dict[str, Any]] = []
    last_with_rows: datetime | None = None
    lake_rows = 0
    results: list[bs.SalesResult] = []
    stored: dict[datetime, dict[str, Any]] = {}
    for chunk in wp.chunked(run_windows(context)):  # one read and one write per chunk
        results += bs.build_sales_windows(the_lake, wh, chunk)
        stored.update(bs.stored_sales_counts(wh, chunk))
    for result in results:
        window = result.window
        key, day = window_key(window), day_key(window)
        once, detail = bs.sales_counted_once(result.sales, stored[window])
        bad_rows = stored[window]["negative_rows"]
        prices_ok = bad_rows == 0
        counted[day]["sale_ids"] += detail["sale_ids"]
        counted[day]["counted"] += detail["counted"]
        negative[day]["negative_rows"] += bad_rows + result.negative_prices
        if not once:
            counted_bad[day].append(
                {
                    "window": key,
                    **detail,
                    "reason": f"{key}: {detail['counted']} counted for {detail['sale_ids']} "
                    f"sale ids ({detail['duplicate_rows']} duplicate rows)",
                }
            )
        if not prices_ok or result.negative_prices:
            price_bad[day].append(
                {
                    "window": key,
                    "negative_rows": bad_rows,
                    "negative_sales_left_out": result.negative_prices,
                    "reason": f"{key}: {bad_rows} negative rows, {result.negative_prices} "
                    "negative sale prices in the lake",
                }
            )
        days[day].add(result.rows, sales=result.sales, lake_rows=result.lake_rows)
        lake_rows += result.lake_rows
        files.update(result.files_read)
        if result.rows:
            last_with_rows = window
            per_window.append({"window": key, "sales": result.sales, "collections": result.rows})
    preview: list[dict[str, Any]] = []
    if last_with_rows is not None:
        preview = wh.query(
            f"SELECT * FROM nft_sales_15m WHERE window_start = ? ORDER BY collection "
            f"LIMIT {PREVIEW_ROWS}",
            [last_with_rows],
        ).to_pylist()
    sales = sum(d.extra.get("sales", 0) for d in days.values())
    context.log.info(
        "%d window(s): %d sales from %d lake rows in %d files",
        sum(d.windows for d in days.values()),
        sales,
        lake_rows,
        len(files),
    )
    _record_days(context, days, "rows")
    yield dg.MaterializeResult(
        metadata={
            "rows": sum(d.rows for d in days.values()),
            "sales": sales,
            "lake_rows": lake_rows,
            "duplicates_in_lake": lake_rows - sales,
            "files_read": len(files),
            "windows_with_sales": dg.MetadataValue.md(_markdown(per_window, 96)),
            "preview": dg.MetadataValue.md(_markdown(preview)),
        }
    )
    yield from _check(
        context,
        SALE_IDS_COUNTED_ONCE,
        counted_bad,
        "Every window counts each of its sales once.",
        counted,
    )
    yield from _check(
        context,
        PRICES_NON_NEGATIVE,
        price_bad,
        "No window has a negative price.",
        negative,
    )


SALES_ASSETS = [nft_sales_15m]
