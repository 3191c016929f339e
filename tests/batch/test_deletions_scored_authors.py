"""An author-level tombstone (a Bluesky account deleted) reaches `scored/`: the Spark job's files
hold no author_id, so the purge pass removes from them the post ids it removed from `raw/` and
the tables for that author, in those posts' `created_at` hour folders (docs/deletions.md)."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.batch import deletions
from musicnft.batch.lake_index import LakeIndex, read_file_stats
from musicnft.contract.lake_layout import raw_key
from musicnft.contract.schema import POST_SCHEMA, to_table
from musicnft.hotpath.consumer import handle_kinesis_event
from tests.batch.test_deletions import NOW, WINDOW, event, post, post_bytes, put_lake_file, tomb


@pytest.fixture
def env(tmp_path: Path) -> tuple[LocalLake, EmbeddedWarehouse]:
    return LocalLake(tmp_path / "lake"), EmbeddedWarehouse(tmp_path / "warehouse")


def _scored(lake: LocalLake, key: str, posts: list[dict[str, Any]]) -> str:
    table = pa.table(
        {
            "post_id": [p["post_id"] for p in posts],
            "created_at": [p["created_at"] for p in posts],
            "sentiment_compound": [0.5] * len(posts),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    lake.put(key, buf.getvalue())
    return key


def _ids(lake: LocalLake, key: str) -> list[str]:
    return sorted(pq.read_table(lake.root / key).column("post_id").to_pylist())


def test_an_author_tombstone_removes_the_author_s_posts_from_scored(env: Any) -> None:
    lake, wh = env
    # GIVEN author 7's posts 1 and 2 through the hot path and in raw/, author 42's post 3 too
    mine = [post(1, author="7"), post(2, author="7")]
    theirs = post(3, author="42")
    handle_kinesis_event(event([post_bytes(p) for p in [*mine, theirs]]), wh)
    put_lake_file(lake, wh, [*mine, theirs])
    # AND author 7's post 4, two hours later, only in a raw drop (the hot path never saw it)
    late = post(4, author="7")
    late["created_at"] = WINDOW + timedelta(hours=2, minutes=4)
    buf = io.BytesIO()
    pq.write_table(to_table([late], POST_SCHEMA), buf)
    late_key = raw_key("musicnft-posts", NOW + timedelta(minutes=1), "late")
    lake.put(late_key, buf.getvalue())
    obj = next(o for o in lake.list_objects("raw/") if o.key == late_key)
    LakeIndex(wh).record([read_file_stats(lake, obj)])
    # AND the Spark job's scored copies: the stream's and a re-score version's, in each hour
    hour = f"{WINDOW:%Y/%m/%d/%H}"
    later = f"{WINDOW + timedelta(hours=2):%Y/%m/%d/%H}"
    scored = [
        _scored(lake, f"scored/{hour}/part-b000000000000-00000.parquet", [*mine, theirs]),
        _scored(lake, f"scored/_versions/m2/{hour}/part-b000000000000-00000.parquet", mine),
        _scored(lake, f"scored/{later}/part-b000000000001-00000.parquet", [late]),
    ]
    # WHEN the account is deleted and one (non-sweep) pass runs
    deletions.record_tombstones(wh, lake, [tomb(author_id="7")])
    result = deletions.apply_deletions(lake, wh)
    # THEN no scored file holds any of author 7's posts; author 42's post stays
    assert result.applied == 1
    assert _ids(lake, scored[0]) == [theirs["post_id"]]
    assert _ids(lake, scored[1]) == []
    assert _ids(lake, scored[2]) == []
    assert set(scored) <= set(result.files_rewritten)
    assert result.rows_removed["lake"] == 3 + 5  # raw: posts 1, 2, 4; scored: 1, 2 twice, 4
    # AND a second pass finds nothing more to do
    again = deletions.apply_deletions(lake, wh, full_scan=True)
    assert again.files_rewritten == []
