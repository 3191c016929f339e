"""Counts at every stage of the embedded hot path, read from the stores themselves (not from logs)."""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from musicnft.adapters.local_stream import LocalStream
from musicnft.app.lake_census import lake_census
from musicnft.app.sales_status import sales_counts
from musicnft.batch.deletions import status_counts as deletion_status
from musicnft.batch.engagement import reread_status
from musicnft.contract.lake_layout import ERRORS_PREFIX, RAW_PREFIX
from musicnft.hotpath.deadletter import count_lines
from musicnft.ports import Lake, Warehouse
from musicnft.settings import Settings
from musicnft.spark.quarantine import ledger_quarantined

log = logging.getLogger("musicnft.status")


def _lines(data: bytes) -> int:
    """Lines as reading the file line by line counts them (a last line without a newline too)."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def lake_counts(lake: Lake, memory: Path | None = None) -> dict[str, int]:
    """Rows, unique posts and files under raw/, and lines under errors/, read through the port;
    with a `memory` file, only the raw/ files new or changed since the last call are read."""
    files = [o for o in lake.list_objects(RAW_PREFIX) if o.key.endswith(".parquet")]
    census = lake_census(lake, files, memory)
    errors = sum(_lines(lake.get(o.key)) for o in lake.list_objects(ERRORS_PREFIX))
    return {
        "lake": census.rows,
        "lake_unique": census.unique,
        "lake_files": census.files,
        "lake_errors": errors,
    }


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
    status.update(lake_counts(lake, settings.data_dir / "status" / "lake_census.parquet"))
    # NFT sales (issue 17): unique sale ids in the lake, nft_sales_15m, the collector's cursors
    status.update(sales_counts(settings, lake, warehouse))
    row = warehouse.query(
        "SELECT count(*) AS n, count(DISTINCT post_id) AS u FROM posts_hot"
    ).to_pylist()[0]
    status["posts_hot"] = int(row["n"])
    status["posts_hot_unique"] = int(row["u"])
    # lake files set aside as unreadable (missing required columns, corrupt, not Parquet)
    status["lake_quarantined"] = int(
        warehouse.query("SELECT count(DISTINCT key) AS n FROM lake_quarantine").to_pylist()[0]["n"]
    )
    # raw/ drops the Spark scoring job found unreadable (its ledger, docs/spark.md)
    status["spark_quarantined_files"] = len(ledger_quarantined(lake))
    # tombstones held, and those not yet applied everywhere (docs/deletions.md); a quarantined
    # lake file that holds (or may hold) a deleted post keeps it pending, named in deleted_blocked
    status.update(deletion_status(warehouse, lake))
    dl = settings.dead_letter_dir
    status["dead_letter_producer"] = count_lines(dl / "producer.jsonl")
    status["dead_letter_consumer"] = count_lines(dl / "consumer.jsonl")
    status["dead_letter"] = (
        status["dead_letter_producer"] + status["dead_letter_consumer"] + status["lake_errors"]
    )
    # engagement re-reads of X posts (docs/insight.md): today's reads, cost and daily cap
    status.update(
        reread_status(
            warehouse, datetime.now(UTC), settings.x_price_per_post, settings.x_reread_budget_usd
        )
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
        ("NFT sales (unique in the lake's sales/)", status.get("sales", 0)),
        ("  nft_sales_15m rows (window, collection)", status.get("sales_windows")),
        ("  sales counted in those windows", status.get("sales_windowed")),
        ("dead-lettered", status["dead_letter"]),
        ("  by the producer", status["dead_letter_producer"]),
        ("  by the consumer", status["dead_letter_consumer"]),
        ("  lake errors/", status["lake_errors"]),
        ("lake files quarantined", status.get("lake_quarantined", 0)),
        ("  raw files quarantined by the Spark job", status.get("spark_quarantined_files", 0)),
        ("deleted at the source (tombstones)", status.get("deleted", 0)),
        ("  not yet applied everywhere", status.get("deleted_pending", 0)),
        ("  quarantined files blocking one", status.get("deleted_blocked_files", 0)),
    ]
    if "x_posts_read" in status:
        rows.append(("X posts read (billed)", status["x_posts_read"]))
    width = max(len(k) for k, _ in rows)
    lines = [f"musicnft status ({status['data_dir']})"]
    lines += [
        f"  {k.ljust(width)}  {v:>10,}" if v is not None else f"  {k.ljust(width)}  {'n/a':>10}"
        for k, v in rows
    ]
    if status.get("x_reread_posts_today") is not None:
        lines.append(
            f"  X engagement re-reads today: {status['x_reread_posts_today']:,} posts, "
            f"${status['x_reread_spend_usd_today']:,.2f} of "
            f"${status['x_reread_budget_usd']:,.2f} a day"
            + (" (off)" if not status["x_reread_budget_usd"] else "")
        )
    if "x_estimated_spend_usd" in status:
        lines.append(f"  estimated X API spend: ${status['x_estimated_spend_usd']:,.2f}")
    for slug, cursor in (status.get("sales_cursors") or {}).items():
        lines.append(f"  sales fetched up to {cursor} for {slug}")
    return "\n".join(lines)


# ---- `musicnft status --check`: healthy or not, in one line ------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """What `status --check` tolerates (its flags; the defaults are documented in its --help)."""

    max_lag: int = 10_000  # records not yet delivered to the lake, or not yet consumed
    max_dead_letter_growth: int = 100  # new dead-letter entries within `dead_letter_window`
    dead_letter_window: float = 3600.0
    max_spool: int = 1_000  # records waiting in the producer's spool (stream unreachable)
    max_quarantined: int = 0  # lake files set aside as unreadable (`lake_quarantined`, and
    # separately `spark_quarantined_files`)
    max_age: float = 3600.0  # seconds since the newest 15-minute window started; 0 = off


def spool_depth(settings: Settings) -> int:
    """Records waiting in the producer's spool, read without writing (0 when there is none)."""
    path = settings.spool_path
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return int(db.execute("SELECT count(*) FROM spool").fetchone()[0])
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0
        raise
    finally:
        db.close()


def _recent_entries(path: Path, since: datetime) -> int:
    """Dead-letter entries in a JSON-lines file written at or after `since` (by their "at")."""
    if not path.exists():
        return 0
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            try:
                at = json.loads(line).get("at")
                if at and datetime.fromisoformat(at.replace("Z", "+00:00")) >= since:
                    n += 1
            except (ValueError, AttributeError):
                n += 1  # an unreadable entry counts as new: better a false alarm than none
    return n


def dead_letter_growth(settings: Settings, lake: Lake | None, window: float) -> int:
    """New dead-letter entries in the last `window` seconds: the producer's and the consumer's
    files (by each entry's time) and the lake's errors/ (lines of files written since)."""
    since = datetime.now(UTC) - timedelta(seconds=window)
    dl = settings.dead_letter_dir
    n = _recent_entries(dl / "producer.jsonl", since)
    n += _recent_entries(dl / "consumer.jsonl", since)
    if lake is not None:
        for obj in lake.list_objects(ERRORS_PREFIX):
            if obj.last_modified.astimezone(UTC) >= since:
                n += _lines(lake.get(obj.key))
    return n


def newest_window(warehouse: Warehouse) -> datetime | None:
    """Start of the newest 15-minute window the batch path has materialized."""
    value = warehouse.query("SELECT max(window_start) AS w FROM window_metrics_15m").column(0)[0]
    start = value.as_py()
    if start is None:
        return None
    return start if start.tzinfo else start.replace(tzinfo=UTC)


def health_problems(
    status: dict[str, Any], limits: Thresholds, now: datetime | None = None
) -> list[str]:
    """Why `status` (collect_status's dict plus `spool_depth`, `dead_letter_growth` and
    `newest_window`, each optional) is unhealthy under `limits`; empty when healthy. A key that
    is absent or None (a Kinesis stream keeps no lag here; a host without the warehouse) is not
    checked, except `lake_quarantined` and `spark_quarantined_files`, which count as 0."""
    problems: list[str] = []
    for key, label in (("delivery_lag", "delivery lag"), ("consumer_lag", "consumer lag")):
        value = status.get(key)
        if value is not None and value > limits.max_lag:
            problems.append(f"{label} {value:,} > {limits.max_lag:,} records")
    growth = status.get("dead_letter_growth")
    if growth is not None and growth > limits.max_dead_letter_growth:
        problems.append(
            f"{growth:,} new dead-letter entries in the last {limits.dead_letter_window:.0f}s "
            f"> {limits.max_dead_letter_growth:,}"
        )
    spool = status.get("spool_depth")
    if spool is not None and spool > limits.max_spool:
        problems.append(f"spool depth {spool:,} > {limits.max_spool:,} records")
    quarantined = int(status.get("lake_quarantined") or 0)
    if quarantined > limits.max_quarantined:
        problems.append(f"{quarantined:,} quarantined lake files > {limits.max_quarantined:,}")
    spark_quarantined = int(status.get("spark_quarantined_files") or 0)
    if spark_quarantined > limits.max_quarantined:
        problems.append(
            f"{spark_quarantined:,} raw files quarantined by the Spark job "
            f"> {limits.max_quarantined:,}"
        )
    if limits.max_age > 0 and "newest_window" in status:
        newest = status["newest_window"]
        if newest is None:
            problems.append("no 15-minute window materialized yet")
        else:
            start = datetime.fromisoformat(str(newest).replace("Z", "+00:00"))
            age = ((now or datetime.now(UTC)) - start).total_seconds()
            if age > limits.max_age:
                problems.append(
                    f"newest window {newest} is {age:,.0f}s old > {limits.max_age:,.0f}s"
                )
    return problems


def health_line(status: dict[str, Any], problems: list[str]) -> str:
    """The one line `status --check` prints."""
    if problems:
        return "unhealthy: " + "; ".join(problems)
    parts = []
    for key, label in (
        ("delivery_lag", "delivery lag"),
        ("consumer_lag", "consumer lag"),
        ("dead_letter_growth", "new dead-letters"),
        ("spool_depth", "spool"),
    ):
        if status.get(key) is not None:
            parts.append(f"{label} {status[key]:,}")
    parts.append(f"quarantined {int(status.get('lake_quarantined') or 0):,}")
    if status.get("spark_quarantined_files") is not None:
        parts.append(f"spark quarantined {int(status['spark_quarantined_files']):,}")
    if status.get("newest_window"):
        parts.append(f"newest window {status['newest_window']}")
    return "healthy: " + ", ".join(parts)
