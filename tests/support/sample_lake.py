"""A sample lake for the window tests: ~3,000 generated lines cut into Firehose-like drops.

The re-deliveries the sample contains get a later ingest (and fresher like counts, so "latest ingest
wins" is visible); the drops straddle window boundaries, and one late drop re-delivers posts of the
target window from a much later hour folder. Expectations are computed from the Parquet files.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.batch import window_pipeline as wp
from musicnft.batch.backfill import index_lake
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.lake_layout import raw_key
from musicnft.contract.schema import (
    HOT_FIELDS,
    POST_SCHEMA,
    conform,
    format_timestamp,
    to_table,
)
from musicnft.contract.windows import WINDOW, parse_window_key
from musicnft.devtools.sample import generate_lines
from musicnft.hotpath.decode import ControlMessage, RejectedRecord
from musicnft.hotpath.enrich import enrich
from musicnft.hotpath.entities import with_entities
from musicnft.hotpath.normalize_x import normalize_x_line, normalize_x_message
from musicnft.settings import DEFAULT_KEYWORDS
from tests.support.records import x_message

KEYWORDS = ["music", "nft", "eth", "web3", "opensea"]
MATCHER = KeywordMatcher(DEFAULT_KEYWORDS)
STREAM = "musicnft-posts"
SAMPLE_START = datetime(2021, 12, 1, tzinfo=UTC)
INGEST_START = SAMPLE_START + timedelta(seconds=30)
KEY = "2021-12-01-01:30"  # a busy window in the middle of the sample
WINDOW_START = parse_window_key(KEY)
EMPTY_KEY = "2021-11-15-12:00"  # inside the partitions, before the sample: no posts
ASSET_NAMES = {"posts", *wp.AGGREGATE_TABLES, "reconciliation_15m"}
CHECKS = {
    "posts.post_id_unique",
    "posts.schema_v1",
    "reconciliation_15m.lake_matches_warehouse",
}
VOLATILE = ("updated_at", "checked_at", "inserted_at")


# ---------------------------------------------------------------------------------------------
# The lake, built once
# ---------------------------------------------------------------------------------------------


@dataclass
class Lake:
    lake_root: Path
    base_warehouse: Path  # lake_files filled by index_lake; copied per test
    rows: list[dict[str, Any]]  # every row of every lake file, as stored
    file_ranges: dict[str, tuple[datetime, datetime, int]]  # key -> (min, max, rows)


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(to_table(rows, POST_SCHEMA), buf)
    return buf.getvalue()


def _put(lake: LocalLake, rows: list[dict[str, Any]], modified: datetime) -> str:
    key = raw_key(STREAM, min(r["ingested_at"] for r in rows))
    lake.put(key, _parquet(rows))
    os.utime(lake.root / key, (modified.timestamp(), modified.timestamp()))
    return key


def build_sample_lake(root: Path) -> Lake:
    """The lake, built once per module by the `sample_lake` fixture (tests/conftest.py)."""
    lake = LocalLake(root / "lake")
    posts: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, line in enumerate(generate_lines(3000, seed=11, posts_per_hour=1200)):
        ingested = INGEST_START + timedelta(milliseconds=3500 * i)
        try:
            post = normalize_x_line(line, MATCHER, ingested)
        except (RejectedRecord, ControlMessage):
            continue  # keep-alives and malformed lines never reach the lake
        if post["post_id"] in seen:
            # a re-delivery: later ingest, fresher metrics (the copy a window must keep)
            post["like_count"] = (post["like_count"] or 0) + 1000 + i
        seen.add(post["post_id"])
        posts.append(post)
    # Firehose-like drops of 120 records in arrival order: they straddle window boundaries
    for n in range(0, len(posts), 120):
        chunk = posts[n : n + 120]
        _put(lake, chunk, chunk[-1]["ingested_at"] + timedelta(seconds=60))
    # a late drop, six hours on: re-deliveries of 15 posts of the target window
    in_window = [p for p in posts if WINDOW_START <= p["created_at"] < WINDOW_START + WINDOW]
    late_at = INGEST_START + timedelta(hours=6)
    late = [
        p
        | {"ingested_at": late_at + timedelta(seconds=j), "like_count": 5000 + j, "reply_count": 7}
        for j, p in enumerate(in_window[::17][:15])
    ]
    _put(lake, late, late_at + timedelta(minutes=1))

    # What the lake holds, read back from the files (the truth the expectations use)
    rows: list[dict[str, Any]] = []
    ranges: dict[str, tuple[datetime, datetime, int]] = {}
    for key in lake.list("raw/"):
        table = pq.read_table(root / "lake" / key).to_pylist()
        rows += table
        created = [r["created_at"] for r in table]
        ranges[key] = (min(created), max(created), len(table))
    warehouse = root / "warehouse"
    assert index_lake(lake, EmbeddedWarehouse(warehouse)) == len(ranges)
    return Lake(root / "lake", warehouse, rows, ranges)


def in_window(created: datetime, window: datetime = WINDOW_START) -> bool:
    return window <= created < window + WINDOW


def expected_posts(lake: Lake, window: datetime = WINDOW_START) -> dict[str, dict[str, Any]]:
    """post_id -> the window's post as `posts` must hold it: the latest ingest, enriched."""
    latest: dict[str, dict[str, Any]] = {}
    for row in lake.rows:
        if in_window(row["created_at"], window):
            kept = latest.get(row["post_id"])
            if kept is None or row["ingested_at"] > kept["ingested_at"]:
                latest[row["post_id"]] = row
    return {
        pid: with_entities(conform(enrich(row), HOT_FIELDS)) | {"window_start": window}
        for pid, row in latest.items()
    }


def hot_row(post: dict[str, Any]) -> dict[str, Any]:
    """A `posts` row as the hot path writes it to `posts_hot` (no window_start)."""
    return {k: v for k, v in post.items() if k != "window_start"}


def extra_post(i: int, created: datetime) -> dict[str, Any]:
    """A post the lake never received (only the hot path wrote it)."""
    msg = x_message(900_000 + i, created=format_timestamp(created))
    post = normalize_x_message(msg, MATCHER, created + timedelta(seconds=1))
    return with_entities(conform(enrich(post), HOT_FIELDS))
