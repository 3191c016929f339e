"""Lake files as real Firehose writes them: INT96 timestamps (Hive's Parquet writer), read back naive.

Every reader of the lake (footer stats for the index, the window's read with its time filter, the
sensor's fallback read) must take them as UTC, like the microsecond files our delivery writes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.adapters.local_stream import LocalStream
from musicnft.batch import window_pipeline as wp
from musicnft.batch.lake_index import LakeIndex, read_file_stats, read_table
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import format_timestamp, to_json_record
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.local.delivery import DeliveryLoop
from musicnft.settings import DEFAULT_KEYWORDS
from tests.support.records import x_message

WINDOW = datetime(2021, 12, 1, 1, 30, tzinfo=UTC)


def _lake_with_one_drop(tmp_path: Path, int96: bool) -> tuple[LocalLake, str, list[dict]]:
    stream = LocalStream(tmp_path / "stream.sqlite")
    lake = LocalLake(tmp_path / "lake")
    matcher = KeywordMatcher(DEFAULT_KEYWORDS)
    posts = [
        normalize_x_message(
            x_message(i + 10, created=format_timestamp(WINDOW + timedelta(minutes=5 * i))),
            matcher,
            WINDOW + timedelta(hours=1),
        )
        for i in range(-2, 5)  # two before the window, three in it, two after
    ]
    stream.put_records([(p["post_id"], json.dumps(to_json_record(p)).encode()) for p in posts])
    loop = DeliveryLoop(stream, lake, "musicnft-posts", int96_timestamps=int96)
    loop.run_once()
    (key,) = list(lake.list("raw/"))
    return lake, key, posts


def test_delivery_writes_int96_timestamps_as_firehose_does(tmp_path: Path) -> None:
    _lake, key, _ = _lake_with_one_drop(tmp_path, int96=True)
    # pyarrow reads an INT96 column back as a naive timestamp: the shape real Firehose files have
    raw = pq.read_table(tmp_path / "lake" / key)
    assert raw.schema.field("created_at").type.tz is None
    assert pq.ParquetFile(tmp_path / "lake" / key).schema.column(2).physical_type == "INT96"


@pytest.mark.parametrize("int96", [True, False], ids=["int96", "micros"])
def test_every_lake_reader_takes_both_timestamp_encodings(tmp_path: Path, int96: bool) -> None:
    # GIVEN a drop with posts before, in and after one window
    lake, key, posts = _lake_with_one_drop(tmp_path, int96)
    obj = next(o for o in lake.list_objects("raw/") if o.key == key)
    # THEN the footer stats are aware UTC and match the posts
    stats = read_file_stats(lake, obj)
    assert stats.min_created_at == min(p["created_at"] for p in posts)
    assert stats.max_created_at == max(p["created_at"] for p in posts)
    # AND a read filtered to the window (aware bounds) returns exactly its posts, as UTC
    table = read_table(
        lake,
        key,
        ["post_id", "created_at"],
        [("created_at", ">=", WINDOW), ("created_at", "<", WINDOW + timedelta(minutes=15))],
    )
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert sorted(table.column("post_id").to_pylist()) == sorted(
        p["post_id"] for p in posts if WINDOW <= p["created_at"] < WINDOW + timedelta(minutes=15)
    )
    # AND the window builds from it
    warehouse = EmbeddedWarehouse(tmp_path / "warehouse")
    LakeIndex(warehouse).record([stats])
    result = wp.build_posts(lake, warehouse, WINDOW)
    assert result.unique_posts == 3
