"""Counts at every stage of the embedded hot path, read from the stores themselves (not from logs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from musicnft.adapters.local_stream import LocalStream
from musicnft.contract.lake_layout import ERRORS_PREFIX, RAW_PREFIX
from musicnft.hotpath.deadletter import count_lines
from musicnft.settings import Settings


def lake_counts(lake_dir: Path) -> dict[str, int]:
    raw = lake_dir / RAW_PREFIX
    files = sorted(str(p) for p in raw.rglob("*.parquet") if not p.name.startswith("."))
    out = {"lake": 0, "lake_unique": 0, "lake_files": len(files)}
    if files:
        con = duckdb.connect()
        try:
            n, unique = con.execute(
                "SELECT count(*), count(DISTINCT post_id) FROM read_parquet(?)", [files]
            ).fetchone()  # type: ignore[misc]
        finally:
            con.close()
        out["lake"], out["lake_unique"] = int(n), int(unique)
    errors = lake_dir / ERRORS_PREFIX
    out["lake_errors"] = (
        sum(count_lines(p) for p in errors.rglob("*") if p.is_file() and not p.name.startswith("."))
        if errors.exists()
        else 0
    )
    return out


def lake_counts_via_port(lake: Any) -> dict[str, int]:
    """The same counts for a lake that is not a local directory (S3): read the post_id column."""
    from musicnft.batch.lake_index import read_table

    ids: list[str] = []
    raw = [o for o in lake.list_objects(RAW_PREFIX) if o.key.endswith(".parquet")]
    for obj in raw:
        ids += read_table(lake, obj.key, columns=["post_id"]).column(0).to_pylist()
    errors = sum(len(lake.get(o.key).splitlines()) for o in lake.list_objects(ERRORS_PREFIX))
    return {
        "lake": len(ids),
        "lake_unique": len(set(ids)),
        "lake_files": len(raw),
        "lake_errors": errors,
    }


def collect_status(settings: Settings) -> dict[str, Any]:
    """One dict with the integer counts `musicnft status --json` promises, plus details.

    With a Kinesis stream, `produced` and `stream` are null: Kinesis does not count records.
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
    if settings.lake_backend == "local":
        status.update(lake_counts(settings.lake_dir))
    else:
        from musicnft.wiring import open_lake

        status.update(lake_counts_via_port(open_lake(settings)))
    from musicnft.wiring import open_warehouse

    warehouse = open_warehouse(settings)
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
        import json

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
