"""Deletions honoured everywhere (issue 19): the consumer records tombstones and keeps deleted
posts out of posts_hot (also when the post comes after its tombstone); the purge pass rewrites
the lake's files, deletes from posts_hot and posts and names the windows to rebuild; the rebuilt
windows' aggregates no longer count the deleted posts; everything is idempotent.

GIVEN a lake file and the hot path over one window, WHEN tombstones arrive before, during and
after their posts, THEN no table, file or aggregate shows the deleted posts."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.batch import deletions
from musicnft.batch.lake_index import LakeIndex, read_file_stats
from musicnft.batch.window_pipeline import build_aggregate, build_posts, reconcile
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.lake_layout import DELETIONS_PREFIX, raw_key
from musicnft.contract.schema import POST_SCHEMA, to_json_record, to_table
from musicnft.contract.tombstone import Tombstone
from musicnft.hotpath.consumer import handle_firehose_event, handle_kinesis_event
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.local.consumer_loop import kinesis_event
from musicnft.ports import StreamRecord
from musicnft.settings import DEFAULT_KEYWORDS
from tests.support.records import x_message

WINDOW = datetime(2021, 12, 1, 0, 0, tzinfo=UTC)
NOW = datetime(2021, 12, 1, 1, 0, tzinfo=UTC)
KEYWORDS = list(DEFAULT_KEYWORDS)


def post(i: int, author: str = "42", location: str | None = "Berlin") -> dict[str, Any]:
    created = (WINDOW + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    msg = x_message(i, created=created)
    msg["data"]["author_id"] = author
    msg["includes"]["users"][0]["id"] = author
    msg["includes"]["users"][0]["location"] = location
    return normalize_x_message(
        msg, KeywordMatcher(KEYWORDS), WINDOW + timedelta(minutes=i, seconds=5)
    )


def post_bytes(p: dict[str, Any]) -> bytes:

    return json.dumps(to_json_record(p)).encode()


def tomb(
    post_id: str | None = None, author_id: str | None = None, action: str = "delete"
) -> Tombstone:
    return Tombstone(post_id, author_id, action, "bluesky", NOW)


def event(items: list[bytes], first_seq: int = 1) -> dict[str, Any]:
    records = [
        StreamRecord(seq=first_seq + n, shard=0, partition_key="k", data=d, arrival=NOW.timestamp())
        for n, d in enumerate(items)
    ]
    return kinesis_event(records, "musicnft-posts")


@pytest.fixture
def env(tmp_path: Path) -> tuple[LocalLake, EmbeddedWarehouse]:
    return LocalLake(tmp_path / "lake"), EmbeddedWarehouse(tmp_path / "warehouse")


def put_lake_file(lake: LocalLake, wh: EmbeddedWarehouse, posts: list[dict[str, Any]]) -> str:
    buf = io.BytesIO()
    pq.write_table(to_table(posts, POST_SCHEMA), buf)
    key = raw_key("musicnft-posts", NOW)
    lake.put(key, buf.getvalue())
    obj = next(o for o in lake.list_objects("raw/") if o.key == key)
    LakeIndex(wh).record([read_file_stats(lake, obj)])
    return key


def materialize(lake: LocalLake, wh: EmbeddedWarehouse) -> None:
    build_posts(lake, wh, WINDOW)
    for table in ("window_metrics_15m", "hashtag_counts_15m", "location_counts_15m"):
        build_aggregate(wh, table, WINDOW, KEYWORDS)
    reconcile(wh, WINDOW)


def ids(wh: EmbeddedWarehouse, table: str) -> list[str]:
    return sorted(wh.query(f"SELECT post_id FROM {table}").column(0).to_pylist())


def all_count(wh: EmbeddedWarehouse) -> int:
    rows = wh.query(
        "SELECT post_count FROM window_metrics_15m WHERE keyword = 'all' AND window_start = ?",
        [WINDOW],
    ).to_pylist()
    return rows[0]["post_count"] if rows else 0


def lake_ids(lake: LocalLake) -> list[str]:
    out: list[str] = []
    for key in lake.list("raw/"):
        out += pq.read_table(lake.root / key).column("post_id").to_pylist()
    return sorted(out)


def test_tombstones_before_during_and_after_their_posts(env: Any) -> None:
    lake, wh = env
    posts = [post(i) for i in range(1, 6)]
    pid = [p["post_id"] for p in posts]
    # GIVEN posts 1-3 reached the hot path and the lake, and their window was materialized
    assert handle_kinesis_event(event([post_bytes(p) for p in posts[:3]]), wh) == {
        "batchItemFailures": []
    }
    put_lake_file(lake, wh, posts[:3])
    materialize(lake, wh)
    assert all_count(wh) == 3
    # WHEN post 2 is deleted after it arrived, post 4 in the same batch as its tombstone (the
    # tombstone first), and post 5's tombstone comes before the post (late post)
    out = handle_kinesis_event(
        event(
            [
                tomb(pid[1]).to_stream_record(),
                tomb(pid[3]).to_stream_record(),
                post_bytes(posts[3]),
                tomb(pid[4]).to_stream_record(),
            ],
            first_seq=10,
        ),
        wh,
    )
    assert out == {"batchItemFailures": []}
    assert handle_kinesis_event(event([post_bytes(posts[4])], first_seq=20), wh) == {
        "batchItemFailures": []
    }
    # THEN posts_hot dropped post 2 at once and never took posts 4 and 5
    assert ids(wh, "posts_hot") == [pid[0], pid[2]]
    # the late posts still reach the lake (Firehose does not know): the window hides them
    put_lake_file(lake, wh, posts[3:])
    assert deletions.counts(wh) == (3, 3)
    # WHEN the purge pass runs
    result = deletions.apply_deletions(lake, wh)
    assert result.applied == 3 and result.pending == 0
    assert result.windows == [WINDOW]
    assert len(result.files_rewritten) == 2
    assert lake_ids(lake) == [pid[0], pid[2]]
    assert ids(wh, "posts") == [pid[0], pid[2]]
    # the hot path's tombstones reached only the table: the pass keeps the lake's record too
    logged = [
        json.loads(line)["post_id"]
        for key in lake.list(DELETIONS_PREFIX)
        for line in lake.get(key).decode().splitlines()
    ]
    assert sorted(logged) == sorted([pid[1], pid[3], pid[4]])
    # the aggregates still count the deleted post until the window is rebuilt (the check sees it)
    assert deletions.stale_windows(wh) == [WINDOW]
    materialize(lake, wh)
    assert all_count(wh) == 2
    assert deletions.stale_windows(wh) == []
    assert ids(wh, "posts_hot") == [pid[0], pid[2]]  # reconciliation did not bring them back
    assert deletions.visible(wh) == {}
    assert deletions.counts(wh) == (3, 0)
    # AND a second pass changes nothing (idempotent)
    again = deletions.apply_deletions(lake, wh)
    assert again.applied == 0 and again.files_rewritten == []
    # AND a redelivered post after everything is applied stays out
    handle_kinesis_event(event([post_bytes(posts[1])], first_seq=30), wh)
    assert ids(wh, "posts_hot") == [pid[0], pid[2]]


def test_author_delete_and_geo_scrub(env: Any) -> None:
    lake, wh = env
    posts = [post(1, author="7"), post(2, author="7"), post(3, author="8"), post(4, author="9")]
    pid = [p["post_id"] for p in posts]
    handle_kinesis_event(event([post_bytes(p) for p in posts]), wh)
    put_lake_file(lake, wh, posts)
    materialize(lake, wh)
    located = (
        wh.query("SELECT sum(post_count) FROM location_counts_15m WHERE window_start = ?", [WINDOW])
        .column(0)[0]
        .as_py()
    )
    assert located == 4
    new = deletions.record_tombstones(
        wh, lake, [tomb(author_id="7"), tomb(pid[2], action="scrub_geo")], NOW
    )
    assert new == 2
    # recording the same tombstones again records nothing
    assert deletions.record_tombstones(wh, lake, [tomb(author_id="7")], NOW) == 0
    assert len(list(lake.list(DELETIONS_PREFIX))) == 1
    result = deletions.apply_deletions(lake, wh, now=NOW)
    assert result.applied == 2
    assert result.rows_removed["lake"] == 2 and result.rows_scrubbed["lake"] == 1
    assert ids(wh, "posts_hot") == [pid[2], pid[3]]
    assert lake_ids(lake) == [pid[2], pid[3]]
    rows = {r["post_id"]: r for r in wh.query("SELECT * FROM posts").to_pylist()}
    assert rows[pid[2]]["author_location"] is None
    assert rows[pid[3]]["author_location"] == "Berlin"
    materialize(lake, wh)
    assert all_count(wh) == 2
    located = (
        wh.query("SELECT sum(post_count) FROM location_counts_15m WHERE window_start = ?", [WINDOW])
        .column(0)[0]
        .as_py()
    )
    assert located == 1
    assert deletions.counts(wh) == (2, 0)


def test_firehose_drops_tombstones_and_applies_them(env: Any) -> None:
    import base64

    _lake, wh = env
    p1, p2 = post(1), post(2)
    handle_kinesis_event(event([post_bytes(p1)]), wh)
    records = [
        {
            "recordId": "a",
            "data": base64.b64encode(tomb(p1["post_id"]).to_stream_record()).decode(),
        },
        {"recordId": "b", "data": base64.b64encode(post_bytes(p2)).decode()},
        {
            "recordId": "c",
            "data": base64.b64encode(b'{"tombstone": 1, "action": "delete"}').decode(),
        },
    ]
    answers = handle_firehose_event({"records": records}, wh)["records"]
    assert [a["result"] for a in answers] == ["Dropped", "Ok", "ProcessingFailed"]
    assert ids(wh, "posts_hot") == [p2["post_id"]]


def test_purge_waits_for_the_streaming_buffer(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """BigQuery refuses DELETE on rows still in its streaming buffer: the tombstone stays
    pending (status shows it) and a later pass applies it."""
    lake, wh = env
    p1 = post(1)
    wh.insert_rows("posts_hot", [deletions_row(p1)], [p1["post_id"]])
    deletions.record_tombstones(wh, lake, [tomb(p1["post_id"])], NOW)
    real_query = wh.query

    def refusing(sql: str, params: Any = None, read_only: bool = True, at: Any = None) -> Any:
        if sql.startswith("DELETE"):
            raise RuntimeError(
                "UPDATE or DELETE statement over table posts_hot would affect rows in the "
                "streaming buffer, which is not supported"
            )
        return real_query(sql, params, read_only=read_only, at=at)

    monkeypatch.setattr(wh, "query", refusing)
    first = deletions.apply_deletions(lake, wh, now=NOW)
    assert first.applied == 0 and first.pending == 1
    assert deletions.counts(wh) == (1, 1)
    monkeypatch.setattr(wh, "query", real_query)
    second = deletions.apply_deletions(lake, wh, now=NOW + timedelta(minutes=30))
    assert second.applied == 1 and second.pending == 0
    assert deletions.counts(wh) == (1, 0)
    assert ids(wh, "posts_hot") == []


def deletions_row(p: dict[str, Any]) -> dict[str, Any]:
    from musicnft.contract.schema import HOT_FIELDS, conform
    from musicnft.hotpath.enrich import enrich

    return conform(enrich(p), HOT_FIELDS)


def test_delivery_keeps_tombstones_under_deletions_not_raw(tmp_path: Path) -> None:
    """Local delivery (Firehose's role): a tombstone on the stream is neither a lake row nor a
    conversion error; it lands as a JSON line under deletions/."""
    from musicnft.adapters.local_stream import LocalStream
    from musicnft.contract.tombstone import from_json
    from musicnft.local.delivery import DeliveryLoop

    stream = LocalStream(tmp_path / "s.sqlite")
    lake = LocalLake(tmp_path / "lake")
    p1, p2 = post(1), post(2)
    stream.put_records(
        [
            (p1["post_id"], post_bytes(p1)),
            (p2["post_id"], tomb(p2["post_id"]).to_stream_record()),
            (p2["post_id"], post_bytes(p2)),
        ]
    )
    result = DeliveryLoop(stream, lake, "musicnft-posts").run_once()
    assert (result.records, result.rows, result.errors) == (3, 2, 0)
    keys = list(lake.list(DELETIONS_PREFIX))
    assert len(keys) == 1 and not list(lake.list("errors/"))
    lines = lake.get(keys[0]).decode().splitlines()

    assert [from_json(json.loads(line)).post_id for line in lines] == [p2["post_id"]]


def test_consumer_without_pyarrow_never_fails_a_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Lambda bundle has no pyarrow: query results cannot be read there. The consumer still
    records tombstones and inserts posts (the purge pass removes late ones), and never fails."""
    from musicnft.adapters.embedded_warehouse import DuckDBDialect
    from musicnft.hotpath import tombstones as hot_tombstones

    class NoArrowWarehouse:
        dialect = DuckDBDialect()

        def __init__(self) -> None:
            self.inserted: dict[str, list[str]] = {}

        def insert_rows(self, table: str, rows: Any, row_ids: Any) -> Any:
            self.inserted.setdefault(table, []).extend(row_ids)

        def query(self, *args: Any, **kwargs: Any) -> Any:
            raise ValueError("The pyarrow library is not installed")

    monkeypatch.setattr(hot_tombstones, "_can_read_results", lambda: False)
    wh = NoArrowWarehouse()
    p1, p2 = post(1), post(2)
    batch = [tomb(p1["post_id"]).to_stream_record(), post_bytes(p2)]
    assert handle_kinesis_event(event(batch), wh) == {"batchItemFailures": []}
    assert wh.inserted == {
        "deletions": [f"tombstone:delete|post:{p1['post_id']}"],
        "posts_hot": [p2["post_id"]],
    }


def test_a_lake_file_that_cannot_be_rewritten_keeps_the_tombstone_pending(env: Any) -> None:
    from musicnft.batch.lake_index import FileStats

    lake, wh = env
    p1 = post(1)
    handle_kinesis_event(event([post_bytes(p1)]), wh)
    good = put_lake_file(lake, wh, [p1])
    broken = raw_key("musicnft-posts", NOW)
    lake.put(broken, b"not parquet at all")
    at = p1["created_at"]
    LakeIndex(wh).record([FileStats(broken, at, at, 1, 18, NOW)])
    deletions.record_tombstones(wh, lake, [tomb(p1["post_id"])])
    first = deletions.apply_deletions(lake, wh)
    # the good file is purged, the broken one is named, and the tombstone stays pending
    assert first.files_rewritten == [good] and first.files_failed == [broken]
    assert (first.applied, first.pending) == (0, 1)
    assert deletions.counts(wh) == (1, 1)
    lake.put(broken, lake.get(good))  # (whatever made it unreadable is repaired)
    second = deletions.apply_deletions(lake, wh)
    assert second.applied == 1 and second.files_failed == []
    assert deletions.counts(wh) == (1, 0)


def test_late_lake_copies_found_by_the_sensor_window_or_the_daily_sweep(env: Any) -> None:
    """A tombstone already applied, then its post lands in the lake: no table shows it (the
    windows hide it), the minute pass finds it among the files indexed since its last tick, and
    the daily full sweep finds any copy left."""
    lake, wh = env
    p1, p2, p3 = post(1), post(2), post(3)
    deletions.record_tombstones(wh, lake, [tomb(p1["post_id"]), tomb(p3["post_id"])])
    assert deletions.apply_deletions(lake, wh).applied == 2  # nothing anywhere yet
    before = datetime.now(UTC)
    late = put_lake_file(lake, wh, [p1, p2])
    assert deletions.apply_deletions(lake, wh).files_rewritten == []  # nothing pending
    ticked = deletions.apply_deletions(lake, wh, since=before - timedelta(seconds=60))
    assert ticked.files_rewritten == [late] and ticked.applied == 0
    # a copy in a file the index never saw: only the sweep reads every file
    unindexed = raw_key("musicnft-posts", NOW)
    buf = io.BytesIO()
    pq.write_table(to_table([p3, p2], POST_SCHEMA), buf)
    lake.put(unindexed, buf.getvalue())
    swept = deletions.apply_deletions(lake, wh, full_scan=True)
    assert swept.files_rewritten == [unindexed]
    assert lake_ids(lake) == [p2["post_id"], p2["post_id"]]


def test_a_purge_pass_reaches_the_scored_copies_in_the_posts_hour_folders(env: Any) -> None:
    """Spark files a scored post under its created_at hour (`scored/YYYY/MM/DD/HH/`, and
    `scored/_versions/<V>/YYYY/MM/DD/HH/` for a re-score): the pass that purges the post from
    posts_hot, posts and raw/ rewrites those files too, not only the daily sweep."""
    lake, wh = env
    posts = [post(i) for i in range(1, 4)]
    pid = [p["post_id"] for p in posts]
    handle_kinesis_event(event([post_bytes(p) for p in posts]), wh)
    put_lake_file(lake, wh, posts)
    hour = f"{WINDOW:%Y/%m/%d/%H}"
    scored = pa.table(
        {
            "post_id": pid,
            "created_at": [p["created_at"] for p in posts],
            "sentiment_compound": [0.1, 0.2, 0.3],
        }
    )
    stream_key = f"scored/{hour}/part-b000000000000-00000.parquet"
    version_key = f"scored/_versions/m2/{hour}/part-b000000000000-00000.parquet"
    other_hour = (
        f"scored/{WINDOW + timedelta(hours=1):%Y/%m/%d/%H}/part-b000000000001-00000.parquet"
    )
    for key in (stream_key, version_key, other_hour):
        buf = io.BytesIO()
        pq.write_table(scored, buf)
        lake.put(key, buf.getvalue())
    # WHEN post 2 is forgotten and one (non-sweep) pass runs
    deletions.record_tombstones(wh, lake, [tomb(pid[1])])
    result = deletions.apply_deletions(lake, wh)
    # THEN both scored copies in its hour folder lost it; a file of another hour was not read
    assert result.applied == 1
    for key in (stream_key, version_key):
        assert pq.read_table(lake.root / key).column("post_id").to_pylist() == [pid[0], pid[2]]
        assert key in result.files_rewritten
    assert other_hour not in result.files_rewritten
