"""Bluesky deletes through the real producer (issue 19): a Jetstream fake sends posts and their
deletes; deletes of posts the producer stored go on the stream as tombstones (others are skipped:
Jetstream deletes every post on Bluesky), also after a restart; the consumer then takes the post
out of posts_hot, and a post redelivered after its tombstone is never inserted."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_stream import LocalStream
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.tombstone import from_stream_record, is_tombstone_record
from musicnft.hotpath.consumer import handle_kinesis_event
from musicnft.hotpath.deadletter import DeadLetter
from musicnft.local.consumer_loop import kinesis_event
from musicnft.settings import DEFAULT_KEYWORDS
from producer.bluesky import JetstreamSource
from producer.bluesky_deletes import DeletionAwareNormalizer, TrackedPosts
from producer.replay import Pacer
from producer.runner import Producer
from producer.sinks import LocalStreamSink
from tests.support.fake_jetstream import (
    DID,
    POST,
    FakeJetstream,
    delete_of,
    post_event,
    wait_until,
)

SECOND = 1_000_000


def uri(rkey: str) -> str:
    return f"bsky:at://{DID}/{POST}/{rkey}"


def produce(
    fake: FakeJetstream, tmp: Path, stream: LocalStream, events: list[dict[str, Any]]
) -> Any:
    """Run the producer (wired as `musicnft produce --source bluesky`) until it has processed
    every event, then stop it; returns its stats."""
    stop = threading.Event()
    producer = Producer(
        LocalStreamSink(stream),
        KeywordMatcher(DEFAULT_KEYWORDS),
        DeadLetter(tmp / "dl", "producer"),
        stop=stop,
    )
    source = JetstreamSource(
        fake.url, tmp / "cursor", stop, sleep=lambda s: None, durable_acks=True
    )
    producer.on_durable = source.acknowledge
    normalize = DeletionAwareNormalizer(TrackedPosts(tmp / "tracked"))
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(producer.run(source, Pacer(None), normalize=normalize)),
        daemon=True,
    )
    thread.start()
    fake.wait_for_connections(1)
    for event in events:
        fake.publish(event)
    last = events[-1]["time_us"]
    wait_until(lambda: source.cursor == last and producer.stats.lines >= len(events), 10, "events")
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    normalize.close()
    source.close()
    return result[0]


def test_deletes_become_tombstones_only_for_posts_we_stored(tmp_path: Path) -> None:
    base = int(time.time()) * SECOND
    tracked_a = post_event(base + 1 * SECOND, "3l3qoaaaaaaaa", "my music NFT drop")
    untracked = post_event(base + 2 * SECOND, "3l3qobbbbbbbb", "coffee then a walk")
    tracked_c = post_event(base + 3 * SECOND, "3l3qocccccccc", "web3 music on OpenSea")
    stream = LocalStream(tmp_path / "stream.sqlite")
    with FakeJetstream() as fake:
        stats = produce(
            fake,
            tmp_path,
            stream,
            [
                tracked_a,
                untracked,
                tracked_c,
                delete_of(tracked_a, base + 4 * SECOND),  # ours: a tombstone
                delete_of(untracked, base + 5 * SECOND),  # never stored: skipped
            ],
        )
    assert (stats.produced, stats.tombstones) == (3, 1)  # 2 posts + 1 tombstone on the stream
    records = stream.read(after=0, limit=100)
    tombstones = [from_stream_record(r.data) for r in records if is_tombstone_record(r.data)]
    assert [(t.post_id, t.action, t.source) for t in tombstones] == [
        (uri("3l3qoaaaaaaaa"), "delete", "bluesky")
    ]
    assert records[-1].partition_key == uri("3l3qoaaaaaaaa")  # the post's own shard
    # WHEN the consumer reads the stream (Lambda's events), then the post is redelivered
    wh = EmbeddedWarehouse(tmp_path / "warehouse")
    assert handle_kinesis_event(kinesis_event(records, "s"), wh) == {"batchItemFailures": []}
    post_a = next(
        r
        for r in records
        if not is_tombstone_record(r.data) and json.loads(r.data)["post_id"] == uri("3l3qoaaaaaaaa")
    )
    handle_kinesis_event(kinesis_event([post_a], "s"), wh)
    # THEN posts_hot holds only the post still alive; the tombstone is recorded
    assert wh.query("SELECT post_id FROM posts_hot").column(0).to_pylist() == [uri("3l3qocccccccc")]
    assert wh.query("SELECT post_id FROM deletions").column(0).to_pylist() == [uri("3l3qoaaaaaaaa")]


def test_tracked_posts_survive_a_restart(tmp_path: Path) -> None:
    base = int(time.time()) * SECOND
    post = post_event(base + 1 * SECOND, "3l3qoddddddd1", "music NFT")
    stream = LocalStream(tmp_path / "stream.sqlite")
    with FakeJetstream() as fake:
        assert produce(fake, tmp_path, stream, [post]).tombstones == 0
    # WHEN a new producer process (same data dir, so the same tracked file) sees the delete
    with FakeJetstream() as fake:
        stats = produce(fake, tmp_path, stream, [delete_of(post, base + 9 * SECOND)])
    # THEN it still knows the post was ours, and tombstones it
    assert stats.tombstones == 1
    last = stream.read(after=0, limit=100)[-1]
    assert from_stream_record(last.data).post_id == uri("3l3qoddddddd1")
