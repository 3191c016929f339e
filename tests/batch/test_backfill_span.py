"""A lake file whose posts span decades (one post stamped 2099 beside today's) makes a backfill
run the windows its posts are in, not every window between them (issue #12 item 14)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.batch.backfill import index_lake, windows_with_posts
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.lake_layout import raw_key
from musicnft.contract.schema import POST_SCHEMA, format_timestamp, to_table
from musicnft.contract.windows import window_start
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.settings import DEFAULT_KEYWORDS
from tests.support.records import x_message

MATCHER = KeywordMatcher(DEFAULT_KEYWORDS)


def _post(i: int, created: datetime) -> dict:
    msg = x_message(i, created=format_timestamp(created))
    return normalize_x_message(msg, MATCHER, created)


def test_a_file_spanning_decades_backfills_only_the_windows_its_posts_are_in(
    tmp_path: Path,
) -> None:
    lake = LocalLake(tmp_path / "lake")
    wh = EmbeddedWarehouse(tmp_path / "wh")
    now = datetime(2024, 5, 1, 12, 7, tzinfo=UTC)
    far = datetime(2099, 12, 31, 23, 59, tzinfo=UTC)
    # GIVEN one drop holding two posts of today and one stamped 2099, and a normal drop
    buf = io.BytesIO()
    rows = [_post(1, now), _post(2, now + timedelta(minutes=20)), _post(3, far)]
    pq.write_table(to_table(rows, POST_SCHEMA), buf)
    lake.put(raw_key("s", now), buf.getvalue())
    buf = io.BytesIO()
    pq.write_table(to_table([_post(4, now + timedelta(hours=1))], POST_SCHEMA), buf)
    lake.put(raw_key("s", now + timedelta(hours=1)), buf.getvalue())
    assert index_lake(lake, wh) == 2
    # WHEN the backfill lists the windows with posts
    windows = windows_with_posts(wh, lake=lake)
    # THEN exactly the four windows holding posts, not the ~2.6 million between them
    assert windows == sorted(
        window_start(t) for t in (now, now + timedelta(minutes=20), far, now + timedelta(hours=1))
    )
