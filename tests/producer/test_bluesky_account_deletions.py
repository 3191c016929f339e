"""Bluesky account deletions (issue 19, gap 1): Jetstream `account` events through the real
producer and a Jetstream fake, then the consumer and the purge pass.

GIVEN posts of four authors, WHEN one account is deleted, one taken down before any post of it
arrives, one deactivated and one stays, THEN the deleted author's posts (also one redelivered
later) and the deactivated author's stored posts leave posts_hot, posts, the lake file and the
window's counts; the taken-down account's later post is never produced; the live author's post
stays, and a deactivated author that comes back is collected again."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.adapters.local_stream import LocalStream
from musicnft.batch import deletions
from musicnft.batch.lake_index import LakeIndex, read_file_stats
from musicnft.batch.window_pipeline import build_aggregate, build_posts, reconcile
from musicnft.contract.lake_layout import raw_key
from musicnft.contract.schema import POST_SCHEMA, conform, to_table
from musicnft.contract.tombstone import from_stream_record, is_tombstone_record
from musicnft.contract.windows import window_start
from musicnft.hotpath.consumer import handle_kinesis_event
from musicnft.local.consumer_loop import kinesis_event
from musicnft.settings import DEFAULT_KEYWORDS
from producer.bluesky_deletes import DeletionAwareNormalizer, TrackedPosts
from tests.producer.test_bluesky_deletes import produce
from tests.support.fake_jetstream import (
    DID,
    OTHER_DID,
    POST,
    FakeJetstream,
    account_event,
    post_event,
)

SECOND = 1_000_000
GONE = DID  # deleted account
ALIVE = OTHER_DID
RESTING = "did:plc:restingrestingresting00"  # deactivated, comes back
BANNED = "did:plc:bannedbannedbannedbann0"  # taken down before its post arrives


def uri(did: str, rkey: str) -> str:
    return f"bsky:at://{did}/{POST}/{rkey}"


def posts_of(records: list[Any]) -> list[dict[str, Any]]:
    return [conform(json.loads(r.data)) for r in records if not is_tombstone_record(r.data)]


def count_all(wh: EmbeddedWarehouse, window: Any) -> int:
    rows = wh.query(
        "SELECT post_count FROM window_metrics_15m WHERE keyword = 'all' AND window_start = ?",
        [window],
    ).to_pylist()
    return rows[0]["post_count"] if rows else 0


def materialize(lake: LocalLake, wh: EmbeddedWarehouse, window: Any) -> None:
    build_posts(lake, wh, window)
    build_aggregate(wh, "window_metrics_15m", window, list(DEFAULT_KEYWORDS))
    reconcile(wh, window)


def test_account_events_tombstone_authors_through_producer_consumer_and_purge(
    tmp_path: Path,
) -> None:
    base = int(time.time()) * SECOND

    def at(n: int) -> int:
        return base + n * SECOND

    events = [
        account_event(at(1), did=BANNED, status="takendown"),  # before any post of it
        post_event(at(2), "3l3qogone0001", "my music NFT drop", did=GONE),
        post_event(at(3), "3l3qogone0002", "web3 music on OpenSea", did=GONE),
        post_event(at(4), "3l3qoalive001", "music NFT", did=ALIVE),
        post_event(at(5), "3l3qorest0001", "music NFT mint", did=RESTING),
        post_event(at(6), "3l3qobann0001", "music NFT", did=BANNED),  # after its takedown
        account_event(at(7), did=GONE, status="deleted"),
        account_event(at(8), did=RESTING, status="deactivated"),
        account_event(at(9), did=ALIVE, status="desynchronized"),  # transient: nothing
        account_event(at(10), did=RESTING),  # reactivated
        post_event(at(11), "3l3qorest0002", "music NFT again", did=RESTING),
        post_event(at(12), "3l3qogone0003", "music NFT", did=GONE),  # a late frame of it
    ]
    stream = LocalStream(tmp_path / "stream.sqlite")
    with FakeJetstream() as fake:
        stats = produce(fake, tmp_path, stream, events)
    records = stream.read(after=0, limit=100)
    tombstones = [from_stream_record(r.data) for r in records if is_tombstone_record(r.data)]
    # THEN: one author tombstone for the deleted account, one post tombstone for the
    # deactivated account's stored post; nothing for the takedown of an author we never held
    assert sorted(t.key for t in tombstones) == [
        f"delete|author:{GONE}",
        f"delete|post:{uri(RESTING, '3l3qorest0001')}",
    ]
    assert {t.source for t in tombstones} == {"bluesky"}
    assert stats.tombstones == 2
    produced = [p["post_id"] for p in posts_of(records)]
    assert produced == [
        uri(GONE, "3l3qogone0001"),
        uri(GONE, "3l3qogone0002"),
        uri(ALIVE, "3l3qoalive001"),
        uri(RESTING, "3l3qorest0001"),
        uri(RESTING, "3l3qorest0002"),  # back after reactivation
    ]  # neither the taken-down author's post nor the deleted author's late frame
    assert (tmp_path / "ended_accounts").read_text().split() == [BANNED, GONE]

    # GIVEN the posts reached the lake, posts_hot and a materialized window before the
    # consumer saw the tombstones
    lake, wh = LocalLake(tmp_path / "lake"), EmbeddedWarehouse(tmp_path / "warehouse")
    post_records = [r for r in records if not is_tombstone_record(r.data)]
    tomb_records = [r for r in records if is_tombstone_record(r.data)]
    assert handle_kinesis_event(kinesis_event(post_records, "s"), wh) == {"batchItemFailures": []}
    posts = posts_of(records)
    buf = io.BytesIO()
    pq.write_table(to_table(posts, POST_SCHEMA), buf)
    window = window_start(posts[0]["created_at"])
    assert all(window_start(p["created_at"]) == window for p in posts)
    key = raw_key("musicnft-posts", posts[0]["created_at"])
    lake.put(key, buf.getvalue())
    obj = next(o for o in lake.list_objects("raw/") if o.key == key)
    LakeIndex(wh).record([read_file_stats(lake, obj)])
    materialize(lake, wh, window)
    assert count_all(wh, window) == 5
    # WHEN the consumer reads the tombstones
    assert handle_kinesis_event(kinesis_event(tomb_records, "s"), wh) == {"batchItemFailures": []}
    alive = {uri(ALIVE, "3l3qoalive001"), uri(RESTING, "3l3qorest0002")}
    hot = set(wh.query("SELECT post_id FROM posts_hot").column(0).to_pylist())
    assert hot == alive
    # AND a post of the deleted account is redelivered after its author's tombstone
    handle_kinesis_event(kinesis_event(post_records[:1], "s"), wh)
    assert set(wh.query("SELECT post_id FROM posts_hot").column(0).to_pylist()) == alive
    # WHEN the purge pass runs, THEN posts and the lake lose them, and the window is named
    result = deletions.apply_deletions(lake, wh)
    assert result.applied == 2 and result.pending == 0
    assert set(wh.query("SELECT post_id FROM posts").column(0).to_pylist()) == alive
    assert set(pq.read_table(lake.root / key).column("post_id").to_pylist()) == alive
    assert result.windows == [window]
    materialize(lake, wh, window)
    assert count_all(wh, window) == 2
    assert deletions.counts(wh) == (2, 0)


def test_account_events_after_a_restart_and_malformed_ones(tmp_path: Path) -> None:
    """The author index is rebuilt from the tracked file; a broken account event is
    dead-lettered (it may have been a deletion), a well-formed active one skipped."""
    base = int(time.time()) * SECOND
    stream = LocalStream(tmp_path / "stream.sqlite")
    with FakeJetstream() as fake:
        produce(fake, tmp_path, stream, [post_event(base, "3l3qogone0009", "music NFT", did=GONE)])
    broken = account_event(base + 2 * SECOND, did=GONE, status="deleted")
    broken["account"]["active"] = "no"
    with FakeJetstream() as fake:
        stats = produce(
            fake,
            tmp_path,
            stream,
            [
                account_event(base + SECOND, did=GONE),  # active: skipped
                broken,
                account_event(base + 3 * SECOND, did=GONE, status="suspended"),
            ],
        )
    assert (stats.tombstones, stats.skipped) == (1, 1)
    dead = (tmp_path / "dl" / "producer.jsonl").read_text()
    assert "'active' is not a boolean" in dead
    last = from_stream_record(stream.read(after=0, limit=100)[-1].data)
    assert (last.post_id, last.author_id) == (uri(GONE, "3l3qogone0009"), None)
    normalize = DeletionAwareNormalizer(TrackedPosts(tmp_path / "tracked"))
    assert normalize.tracked.of_author(GONE) == [uri(GONE, "3l3qogone0009")]
    normalize.close()
