"""Counts at every stage of the embedded hot path, read from the stores themselves (not from logs)."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from musicnft.adapters.local_stream import LocalStream
from musicnft.batch.lake_index import read_table
from musicnft.contract.lake_layout import ERRORS_PREFIX, RAW_PREFIX
from musicnft.hotpath.deadletter import count_lines
from musicnft.ports import Lake, Warehouse
from musicnft.settings import Settings


def _lines(data: bytes) -> int:
    """Lines as reading the file line by line counts them (a last line without a newline too)."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def lake_counts(lake: Lake) -> dict[str, int]:
    """Rows, unique posts and files under raw/, and lines under errors/, read through the port."""
    files = [o.key for o in lake.list_objects(RAW_PREFIX) if o.key.endswith(".parquet")]
    ids = [read_table(lake, key, columns=["post_id"]).column(0).cast(pa.string()) for key in files]
    rows = sum(len(column) for column in ids)
    chunks = [chunk for column in ids for chunk in column.chunks]
    unique = pc.count_distinct(pa.chunked_array(chunks, pa.string())).as_py() if rows else 0
    errors = sum(_lines(lake.get(o.key)) for o in lake.list_objects(ERRORS_PREFIX))
    return {"lake": rows, "lake_unique": unique, "lake_files": len(files), "lake_errors": errors}


def collect_status(settings: Settings, lake: Lake, warehouse: Warehouse) -> dict[str, Any]:
    """One dict with the integer counts `musicnft status --json` promises, plus details.

    The lake and the warehouse are the ports the caller opened (`musicnft.wiring`), whichever
    profile they belong to. With a Kinesis stream, `produced` and `stream` are null: Kinesis does not count records.
    """
    status: dict[str, Any] = {
        "data_dir": str(settings.data_dir.resolve()),
        "stream_backend": settings.stream_backend,
        "lake_backend": settings.lake_backend,
    }
    if settings.stream_backend != "local":
        status.update(
            produced=None, stream=None, delivery_lag=None, consumer_lag=None, checkpoints={}
        )
    elif settings.stream_path.exists():
        with LocalStream(settings.stream_path, shards=settings.stream_shards, readers=()) as s:
            status["produced"] = s.total_appended()
            status["stream"] = s.count()
            checkpoints = s.checkpoints()
            status["delivery_lag"] = s.lag("delivery")
            status["consumer_lag"] = s.lag("consumer")
            status["checkpoints"] = checkpoints
    else:
        status.update(produced=0, stream=0, delivery_lag=0, consumer_lag=0, checkpoints={})
    status.update(lake_counts(lake))
    row = warehouse.query(
        "SELECT count(*) AS n, count(DISTINCT post_id) AS u FROM posts_hot"
    ).to_pylist()[0]
    status["posts_hot"] = int(row["n"])
    status["posts_hot_unique"] = int(row["u"])
    dl = settings.dead_letter_dir
    status["dead_letter_producer"] = count_lines(dl / "producer.jsonl")
    status["dead_letter_consumer"] = count_lines(dl / "consumer.jsonl")
    status["dead_letter"] = (
        status["dead_letter_producer"] + status["dead_letter_consumer"] + status["lake_errors"]
    )
    usage = settings.data_dir / "x" / "x_usage.json"
    if usage.exists():
        data = json.loads(usage.read_text())
        status["x_posts_read"] = int(data.get("posts_read", 0))
        status["x_estimated_spend_usd"] = float(data.get("estimated_spend_usd", 0.0))
    return status


def format_status(status: dict[str, Any]) -> str:
    rows = [
        ("produced (accepted by the stream)", status["produced"]),
        ("in stream now", status["stream"]),
        ("  not yet delivered to the lake", status["delivery_lag"]),
        ("  not yet consumed", status["consumer_lag"]),
        ("lake rows (raw/ Parquet)", status["lake"]),
        ("  unique posts", status["lake_unique"]),
        ("  files", status["lake_files"]),
        ("posts_hot rows", status["posts_hot"]),
        ("  unique posts", status["posts_hot_unique"]),
        ("dead-lettered", status["dead_letter"]),
        ("  by the producer", status["dead_letter_producer"]),
        ("  by the consumer", status["dead_letter_consumer"]),
        ("  lake errors/", status["lake_errors"]),
    ]
    if "x_posts_read" in status:
        rows.append(("X posts read (billed)", status["x_posts_read"]))
    width = max(len(k) for k, _ in rows)
    lines = [f"musicnft status ({status['data_dir']})"]
    lines += [
        f"  {k.ljust(width)}  {v:>10,}" if v is not None else f"  {k.ljust(width)}  {'n/a':>10}"
        for k, v in rows
    ]
    if "x_estimated_spend_usd" in status:
        lines.append(f"  estimated X API spend: ${status['x_estimated_spend_usd']:,.2f}")
    return "\n".join(lines)
