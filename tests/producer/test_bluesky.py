"""Bluesky: Jetstream messages → posts, the reconnecting websocket source, and both through the
real producer. Contracts: DESIGN.md "Post", REFERENCE.md "Bluesky Jetstream".

The source tests run against `tests.fake_jetstream`, a real websocket server on 127.0.0.1 that
honours `wantedCollections` and `cursor` like Jetstream, so reconnects and resumes are exercised
over real sockets; only backoff waits are injected, so nothing here sleeps for real.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from musicnft.adapters.local_stream import LocalStream, LocalStreamSink
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import MAX_TEXT_CHARS, POST_COLUMNS
from musicnft.hotpath.deadletter import DeadLetter, read_entries
from musicnft.hotpath.decode import RejectedRecord, SkipRecord
from musicnft.hotpath.normalize_bluesky import jetstream_cursor, normalize_jetstream_event
from musicnft.settings import DEFAULT_KEYWORDS
from producer.bluesky import JetstreamSource
from producer.replay import Pacer
from producer.runner import Producer
from tests.support.fake_jetstream import (
    DID,
    OTHER_DID,
    POST,
    FakeJetstream,
    account_event,
    delete_event,
    identity_event,
    like_event,
    post_event,
    wait_until,
)

# A source that stops delivering must fail its test, not hang it (next() has no timeout).
pytestmark = pytest.mark.timeout(30)

INGESTED_AT = datetime(2024, 9, 9, 19, 46, 5, 500_000, tzinfo=UTC)
MATCHER = KeywordMatcher(DEFAULT_KEYWORDS)
TIME_US = 1725911162329308
SECOND = 1_000_000

Event = dict[str, Any]


def raw(event: Event) -> bytes:
    return json.dumps(event).encode("utf-8")


def full_post_event() -> Event:
    """A post the way the Bluesky app writes one: tag, mention and link facets, a link card."""
    text = "Minting my new #MusicNFT on OpenSea with @artist.bsky.social #Web3 example.com/drop"
    return post_event(
        TIME_US,
        "3l3qo2vutsw2b",
        text,
        langs=["en", "pt"],
        createdAt="2024-09-09T19:46:02.102Z",
        facets=[
            {
                "index": {"byteStart": 15, "byteEnd": 24},
                "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "MusicNFT"}],
            },
            {
                "index": {"byteStart": 41, "byteEnd": 60},
                "features": [{"$type": "app.bsky.richtext.facet#mention", "did": OTHER_DID}],
            },
            {
                "index": {"byteStart": 61, "byteEnd": 66},
                "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "Web3"}],
            },
            {
                "index": {"byteStart": 67, "byteEnd": 83},
                "features": [
                    {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/drop"}
                ],
            },
        ],
        embed={
            "$type": "app.bsky.embed.external",
            "external": {
                "uri": "https://opensea.io/collection/drop",
                "title": "Drop",
                "description": "",
            },
        },
    )


# -- normalization -------------------------------------------------------------------------------


def test_full_post_becomes_a_bluesky_post() -> None:
    # GIVEN a create of a post with tag, mention and link facets, two langs and a link card
    event = full_post_event()
    # WHEN it is normalized
    post = normalize_jetstream_event(raw(event), MATCHER, INGESTED_AT)
    # THEN every contract field is filled from it, and only what Jetstream cannot know is null
    assert list(post) == list(POST_COLUMNS)
    assert post == {
        "post_id": f"bsky:at://{DID}/app.bsky.feed.post/3l3qo2vutsw2b",
        "platform": "bluesky",
        "created_at": datetime(2024, 9, 9, 19, 46, 2, 102_000, tzinfo=UTC),
        "ingested_at": INGESTED_AT,
        "text": event["commit"]["record"]["text"],
        "lang": "en",
        "author_id": DID,
        "author_handle": None,
        "author_followers": None,
        "author_verified": None,
        "author_location": None,
        "is_repost": False,
        "reply_count": None,
        "repost_count": None,
        "like_count": None,
        "quote_count": None,
        "hashtags": ["musicnft", "web3"],
        "mentions": [OTHER_DID],
        "urls": ["https://example.com/drop", "https://opensea.io/collection/drop"],
        "matched_keywords": ["web3", "opensea"],
        "matching_rules": ["jetstream"],
        "schema_version": 1,
    }


def test_reply_is_a_post_not_a_repost() -> None:
    # GIVEN a reply (its record names the root and the parent) in a record-with-media embed card
    parent = {"cid": "bafyreib2rxk3rh6kzwq", "uri": f"at://{OTHER_DID}/{POST}/3l3qnzzyzkc2x"}
    event = post_event(
        TIME_US,
        "3l3qo4bbxyz2a",
        "Agreed, music on-chain is the future",
        reply={"root": parent, "parent": parent},
        embed={
            "$type": "app.bsky.embed.recordWithMedia",
            "record": {"record": parent},
            "media": {
                "$type": "app.bsky.embed.external",
                "external": {"uri": "https://sound.xyz/x", "title": "", "description": ""},
            },
        },
    )
    # WHEN it is normalized
    post = normalize_jetstream_event(raw(event), MATCHER, INGESTED_AT)
    # THEN it is an ordinary tracked post of its author, with the card's link
    assert post["post_id"] == f"bsky:at://{DID}/{POST}/3l3qo4bbxyz2a"
    assert post["is_repost"] is False
    assert post["author_id"] == DID
    assert post["matched_keywords"] == ["music"]
    assert post["urls"] == ["https://sound.xyz/x"]


def test_untracked_post_is_skipped() -> None:
    # GIVEN a well-formed post that mentions none of the tracked keywords ("NFTs" is not "NFT")
    event = post_event(TIME_US, "3l3qo2vutsw2c", "Lovely sunset over the NFTs-free harbour #photo")
    # WHEN / THEN it is skipped (counted), not rejected (dead-lettered)
    with pytest.raises(SkipRecord, match="no tracked keyword"):
        normalize_jetstream_event(raw(event), MATCHER, INGESTED_AT)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (delete_event(TIME_US, "3l3qo2vutsw2b"), f"delete of at://{DID}/{POST}/3l3qo2vutsw2b"),
        (
            post_event(TIME_US, "3l3qo2vutsw2b", "edited: music NFT", operation="update"),
            f"update of at://{DID}/{POST}/3l3qo2vutsw2b",
        ),
        (identity_event(TIME_US), "identity event"),
        (account_event(TIME_US), "account event"),
        (like_event(TIME_US, "3l3qo2vutsw2b"), "create of app.bsky.feed.like"),
        (
            delete_event(TIME_US, "3l3qo2vulike1", collection="app.bsky.feed.like"),
            "delete of app.bsky.feed.like",
        ),
        ({"did": DID, "time_us": TIME_US, "kind": "sync"}, "unhandled kind 'sync'"),
    ],
    ids=["delete", "update", "identity", "account", "like", "unlike", "unknown-kind"],
)
def test_messages_that_are_not_new_posts_are_skipped(event: Event, reason: str) -> None:
    # GIVEN a well-formed Jetstream message that is not the creation of a post
    # WHEN it is normalized
    with pytest.raises(SkipRecord) as info:
        normalize_jetstream_event(raw(event), MATCHER, INGESTED_AT)
    # THEN it is skipped with a reason naming what it was
    assert info.value.reason == reason


def _with(change: Callable[[Event], None]) -> bytes:
    event = post_event(TIME_US, "3l3qo2vutsw2b", "my music NFT")
    change(event)
    return raw(event)


def _set(path: str, value: Any) -> Callable[[Event], None]:
    def change(event: Event) -> None:
        *parents, last = path.split(".")
        target = event
        for key in parents:
            target = target[key]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return change


_DELETE = object()

MALFORMED: list[tuple[str, bytes | str, str]] = [
    ("invalid-utf8", b'{"did": "did:plc:a\xff"}', "invalid UTF-8 at byte 18"),
    ("bad-json", b'{"did": "did:plc:abc", "time_us": 1', "invalid JSON"),
    ("not-an-object", b'["did:plc:abc"]', "not a JSON object (got list)"),
    ("empty-object", b"{}", "message has no 'did'"),
    ("did-not-string", _with(_set("did", 42)), "message 'did' is a int, expected a string"),
    ("did-malformed", _with(_set("did", "alice.bsky.social")), "malformed did 'alice.bsky.social'"),
    (
        "time_us-string",
        _with(_set("time_us", "1725911162329308")),
        "'time_us' is a str, expected an integer",
    ),
    ("kind-missing", _with(_set("kind", _DELETE)), "message has no 'kind'"),
    (
        "kind-not-string",
        _with(_set("kind", ["commit"])),
        "message 'kind' is a list, expected a string",
    ),
    ("commit-missing", _with(_set("commit", _DELETE)), "'commit' is a null, expected an object"),
    ("commit-string", _with(_set("commit", "x")), "'commit' is a str, expected an object"),
    ("operation-missing", _with(_set("commit.operation", _DELETE)), "commit has no 'operation'"),
    (
        "operation-unknown",
        _with(_set("commit.operation", "upsert")),
        "unknown commit operation 'upsert'",
    ),
    ("collection-missing", _with(_set("commit.collection", _DELETE)), "commit has no 'collection'"),
    ("rkey-missing", _with(_set("commit.rkey", _DELETE)), "commit has no 'rkey'"),
    ("rkey-not-string", _with(_set("commit.rkey", 7)), "commit 'rkey' is a int, expected a string"),
    ("rkey-malformed", _with(_set("commit.rkey", "a/b")), "malformed rkey 'a/b'"),
    (
        "record-missing",
        _with(_set("commit.record", _DELETE)),
        "record is a null, expected an object",
    ),
    ("record-list", _with(_set("commit.record", [])), "record is a list, expected an object"),
    (
        "record-type",
        _with(_set("commit.record.$type", "app.bsky.feed.like")),
        "record $type is 'app.bsky.feed.like'",
    ),
    ("text-missing", _with(_set("commit.record.text", _DELETE)), "has no text"),
    (
        "text-not-string",
        _with(_set("commit.record.text", {"t": "music"})),
        "text is a dict, expected a string",
    ),
    (
        "createdAt-garbage",
        _with(_set("commit.record.createdAt", "yesterday")),
        "createdAt: not an ISO-8601 timestamp",
    ),
    (
        "createdAt-number",
        _with(_set("commit.record.createdAt", 1725911162)),
        "createdAt is a int, expected a string",
    ),
    (
        "lone-surrogate",
        json.dumps(post_event(1, "3l3q", "music @@"), ensure_ascii=True).replace("@@", "\\ud800"),
        "unpaired surrogate",
    ),
]


@pytest.mark.parametrize(
    ("line", "reason"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_messages_are_rejected_with_a_reason(line: bytes | str, reason: str) -> None:
    # GIVEN a broken message WHEN it is normalized THEN it is rejected, the reason naming the fault
    with pytest.raises(RejectedRecord) as info:
        normalize_jetstream_event(line, MATCHER, INGESTED_AT)
    assert reason in info.value.reason


def test_keyword_matched_through_a_hashtag_facet_only() -> None:
    # GIVEN posts whose text has no tracked word, but a tag facet (or the record's extra `tags`)
    # does: the tag value, not the displayed text, is the hashtag
    by_facet = post_event(
        TIME_US,
        "3l3qo2vutsw2d",
        "new drop today ✨",
        facets=[
            {
                "index": {"byteStart": 15, "byteEnd": 18},
                "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "#NFT"}],
            }
        ],
    )
    by_tags = post_event(TIME_US, "3l3qo2vutsw2e", "new drop today", tags=["Web3", 5])
    # WHEN they are normalized
    post_a = normalize_jetstream_event(raw(by_facet), MATCHER, INGESTED_AT)
    post_b = normalize_jetstream_event(raw(by_tags), MATCHER, INGESTED_AT)
    # THEN the tag is the match, stored lower-case without '#'
    assert (post_a["matched_keywords"], post_a["hashtags"]) == (["nft"], ["nft"])
    assert (post_b["matched_keywords"], post_b["hashtags"]) == (["web3"], ["web3"])
    # AND without the tag the same text would have been skipped
    del by_facet["commit"]["record"]["facets"]
    with pytest.raises(SkipRecord):
        normalize_jetstream_event(raw(by_facet), MATCHER, INGESTED_AT)


def test_without_facets_hashtags_come_from_the_text_by_xs_rule() -> None:
    # GIVEN a record without facets (a client that does not write them), tags only in the text
    event = post_event(
        TIME_US,
        "3l3qo2vutsw2g",
        "gm #Web3 frens, a#b &#39; #2024 #Web3 #café",
        tags=["NFT"],
    )
    # WHEN it is normalized
    post = normalize_jetstream_event(raw(event), MATCHER, INGESTED_AT)
    # THEN the hashtags are read from the text (X's rule), plus the record's extra tags
    assert post["hashtags"] == ["web3", "café", "nft"]
    assert post["matched_keywords"] == ["nft", "web3"]
    # AND facets, when present, stay authoritative (here: they name no tag)
    event["commit"]["record"]["facets"] = []
    post = normalize_jetstream_event(raw(event), MATCHER, INGESTED_AT)
    assert post["hashtags"] == ["nft"]


def test_text_over_the_limit_is_rejected() -> None:
    # GIVEN a tracked post with text just over the contract's limit
    text = ("music " * (MAX_TEXT_CHARS // 6 + 1))[: MAX_TEXT_CHARS + 1]
    event = post_event(TIME_US, "3l3qo2vutsw2f", text)
    # WHEN / THEN it is rejected by the schema gate, naming the length
    with pytest.raises(RejectedRecord, match=rf"too long \({MAX_TEXT_CHARS + 1} chars"):
        normalize_jetstream_event(raw(event), MATCHER, INGESTED_AT)
    # AND at exactly the limit it is a post
    event["commit"]["record"]["text"] = text[:MAX_TEXT_CHARS]
    assert (
        len(normalize_jetstream_event(raw(event), MATCHER, INGESTED_AT)["text"]) == MAX_TEXT_CHARS
    )


def test_created_at_falls_back_to_time_us_then_ingested_at() -> None:
    # GIVEN a post without createdAt
    event = post_event(TIME_US, "3l3qo2vutsw2g", "music")
    del event["commit"]["record"]["createdAt"]
    # WHEN / THEN Jetstream's time_us is used, and without that the ingest time
    post = normalize_jetstream_event(event, MATCHER, INGESTED_AT)
    assert post["created_at"] == datetime(2024, 9, 9, 19, 46, 2, 329_308, tzinfo=UTC)
    del event["time_us"]
    assert normalize_jetstream_event(event, MATCHER, INGESTED_AT)["created_at"] == INGESTED_AT
    # AND a createdAt with an offset and nanoseconds is read as UTC
    event["commit"]["record"]["createdAt"] = "2024-09-09T21:46:02.123456789+02:00"
    assert normalize_jetstream_event(event, MATCHER, INGESTED_AT)["created_at"] == datetime(
        2024, 9, 9, 19, 46, 2, 123_456, tzinfo=UTC
    )


def test_optional_fields_of_the_wrong_type_become_null_not_rejections() -> None:
    # GIVEN a post whose decorations are all the wrong shape
    event = post_event(
        TIME_US,
        "3l3qo2vutsw2h",
        "music",
        langs="en",
        facets=[None, {"features": "x"}, {"features": [{"$type": "app.bsky.richtext.facet#tag"}]}],
        embed={"$type": "app.bsky.embed.external", "external": []},
    )
    # WHEN it is normalized (as str and as an already-decoded mapping)
    for form in (raw(event).decode(), copy.deepcopy(event)):
        post = normalize_jetstream_event(form, MATCHER, INGESTED_AT)
        # THEN the post survives, with those fields empty
        assert (post["lang"], post["hashtags"], post["urls"], post["mentions"]) == (
            None,
            [],
            [],
            [],
        )


def test_jetstream_cursor_reads_time_us_and_never_raises() -> None:
    assert jetstream_cursor(raw(account_event(TIME_US))) == TIME_US
    assert jetstream_cursor(json.dumps({"time_us": 5})) == 5
    assert jetstream_cursor({"time_us": 5}) == 5
    for bad in (
        b"\xff",
        b"nope",
        b"[1]",
        b'{"time_us": "5"}',
        b'{"time_us": true}',
        b'{"time_us": -1}',
        b"{}",
    ):
        assert jetstream_cursor(bad) is None


# -- the source against the fake Jetstream -------------------------------------------------------


class Consumer:
    """Iterates a source in a thread, as the producer does, keeping what it yields."""

    def __init__(self, source: JetstreamSource) -> None:
        self.source = source
        self.items: list[tuple[str, bytes]] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for item in self.source:
                self.items.append(item)
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def time_us(self) -> list[int | None]:
        return [jetstream_cursor(data) for _, data in self.items]

    def wait_for(self, n: int, timeout: float = 5.0) -> None:
        wait_until(lambda: len(self.items) >= n, timeout, f"{n} messages (have {len(self.items)})")

    def join(self, timeout: float = 5.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "source did not stop"
        if self.error is not None:
            raise self.error


def posts(base: int, first: int, last: int) -> list[Event]:
    """Tracked posts numbered first..last, one a second of Jetstream time after `base`."""
    return [
        post_event(base + i * SECOND, f"3l3qo{i:08d}", f"music NFT #{i}")
        for i in range(first, last + 1)
    ]


NewStop = Callable[[], threading.Event]


@pytest.fixture
def new_stop() -> Iterator[NewStop]:
    """Stop events, all set when the test ends: a failed test leaves no source thread
    reconnecting in the background (with injected no-op sleeps it would spin)."""
    events: list[threading.Event] = []

    def make() -> threading.Event:
        events.append(threading.Event())
        return events[-1]

    yield make
    for event in events:
        event.set()


@pytest.fixture
def base_us() -> int:
    # Near the real clock: the source ignores cursors from the far future.
    return int(time.time()) * SECOND


def test_source_receives_wanted_collections_live(
    new_stop: NewStop, tmp_path: Path, base_us: int
) -> None:
    with FakeJetstream() as fake:
        # GIVEN a source with no cursor yet, connected to Jetstream
        stop = new_stop()
        consumer = Consumer(JetstreamSource(fake.url, tmp_path / "cursor", stop))
        fake.wait_for_connections(1)
        # WHEN posts, a like, identity and account events and a binary frame are published
        fake.publish(*posts(base_us, 1, 2))
        fake.publish(like_event(base_us + 3 * SECOND, "3l3qo00000001"))
        fake.publish(identity_event(base_us + 4 * SECOND), account_event(base_us + 5 * SECOND))
        fake.publish_raw(raw(account_event(base_us + 6 * SECOND)), base_us + 6 * SECOND, text=False)
        consumer.wait_for(5)
        stop.set()
        consumer.join()
    # THEN it subscribed live (no cursor) to posts only, so the like never came
    assert [c.path for c in fake.connections] == ["/subscribe?wantedCollections=app.bsky.feed.post"]
    assert consumer.time_us() == [base_us + i * SECOND for i in (1, 2, 4, 5, 6)]
    # AND every item is (ref named by time_us, the frame's bytes), binary frames included
    assert [ref for ref, _ in consumer.items] == [
        f"jetstream:{base_us + i * SECOND}" for i in (1, 2, 4, 5, 6)
    ]
    assert all(isinstance(data, bytes) for _, data in consumer.items)
    assert json.loads(consumer.items[-1][1])["kind"] == "account"


def test_dropped_connection_resumes_from_cursor_minus_rewind(
    new_stop: NewStop, tmp_path: Path, base_us: int
) -> None:
    with FakeJetstream(drop_after={0: 5}) as fake:
        # GIVEN a source whose first connection the network cuts after 5 messages
        stop = new_stop()
        delays: list[float] = []

        def sleep(seconds: float) -> None:
            # WHILE it is disconnected, Jetstream carries on
            if not delays:
                fake.publish(*posts(base_us, 9, 10))
            delays.append(seconds)

        source = JetstreamSource(
            fake.url, tmp_path / "cursor", stop, rewind_seconds=2.5, sleep=sleep
        )
        consumer = Consumer(source)
        fake.wait_for_connections(1)
        # WHEN 8 posts are published
        fake.publish(*posts(base_us, 1, 8))
        wait_until(lambda: set(consumer.time_us()) >= {base_us + i * SECOND for i in range(1, 11)})
        stop.set()
        consumer.join()
    # THEN it reconnected once, after 1 s, asking for 2.5 s before the last message it had
    assert delays == [1.0]
    assert fake.connections[0].dropped
    assert [c.cursor for c in fake.connections] == [None, base_us + 5 * SECOND - 2_500_000]
    # AND nothing was missed; the only duplicates are the rewind window (posts 3..5)
    seen = Counter(consumer.time_us())
    assert set(seen) == {base_us + i * SECOND for i in range(1, 11)}
    assert {t for t, n in seen.items() if n > 1} == {base_us + i * SECOND for i in (3, 4, 5)}
    assert source.disconnects == 1 and source.connects == 2


def test_restart_resumes_from_the_persisted_cursor_without_a_gap(
    new_stop: NewStop, tmp_path: Path, base_us: int
) -> None:
    cursor_file = tmp_path / "state" / "jetstream.cursor"
    with FakeJetstream() as fake:
        # GIVEN a source that got posts 1..5 and was stopped
        stop1 = new_stop()
        first = Consumer(JetstreamSource(fake.url, cursor_file, stop1, rewind_seconds=2.5))
        fake.wait_for_connections(1)
        fake.publish(*posts(base_us, 1, 5))
        first.wait_for(5)
        stop1.set()
        first.join()
        assert cursor_file.read_text().strip() == str(base_us + 5 * SECOND)
        # AND posts 6..9 were published while nothing was running
        fake.publish(*posts(base_us, 6, 9))
        # WHEN a new source starts with the same cursor file
        stop2 = new_stop()
        second = Consumer(JetstreamSource(fake.url, cursor_file, stop2, rewind_seconds=2.5))
        wait_until(lambda: set(second.time_us()) >= {base_us + i * SECOND for i in range(6, 10)})
        stop2.set()
        second.join()
    # THEN it asked for the persisted cursor minus the rewind, and together they saw everything
    assert fake.connections[1].cursor == base_us + 5 * SECOND - 2_500_000
    assert set(first.time_us()) | set(second.time_us()) == {
        base_us + i * SECOND for i in range(1, 10)
    }
    assert sorted(second.time_us()) == [base_us + i * SECOND for i in range(3, 10)]
    assert cursor_file.read_text().strip() == str(base_us + 9 * SECOND)
    assert sorted(p.name for p in cursor_file.parent.iterdir()) == ["jetstream.cursor"]


def test_backoff_doubles_to_the_cap_and_resets_after_a_healthy_message(
    new_stop: NewStop, tmp_path: Path, base_us: int
) -> None:
    from websockets.sync.client import connect as ws_connect

    with FakeJetstream(drop_after={0: 1, 1: 0}) as fake:
        # GIVEN Jetstream that refuses 5 connects, then serves one message and drops (fake
        # connection 0), refuses 2 more, accepts and drops before any message (connection 1),
        # and then works (connection 2)
        fake.publish(*posts(base_us, 1, 1))
        refused = {1, 2, 3, 4, 5, 7, 8}
        urls: list[str] = []

        def connect(url: str) -> Any:
            urls.append(url)
            if len(urls) in refused:
                raise ConnectionRefusedError(111, "Connection refused (scripted)")
            return ws_connect(url, open_timeout=5)

        stop = new_stop()
        delays: list[float] = []
        source = JetstreamSource(
            fake.url,
            tmp_path / "cursor",
            stop,
            rewind_seconds=2.5,
            sleep=delays.append,
            connect=connect,
            max_backoff=8.0,
        )
        started_us = int(time.time() * SECOND)
        # WHEN the source runs until the third connection is up
        consumer = Consumer(source)
        fake.wait_for_connections(3)
        consumer.wait_for(2)
        stop.set()
        consumer.join()
    # THEN the waits double up to the cap, start over after the message, and keep doubling
    # after a connection that delivered nothing
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 1.0, 2.0, 4.0, 8.0]
    assert len(urls) == 10
    # AND even before its first message, retries resume from when it started, not from "now"
    assert "cursor" not in urls[0]
    first_cursor = int(urls[1].rsplit("cursor=", 1)[1])
    assert started_us - 2_500_000 - SECOND < first_cursor <= started_us
    assert urls[9].endswith(f"cursor={base_us + SECOND - 2_500_000}")
    assert consumer.time_us() == [base_us + SECOND] * 2


def test_stop_ends_iteration_promptly_when_idle_and_during_backoff(
    new_stop: NewStop, tmp_path: Path
) -> None:
    with FakeJetstream() as fake:
        # GIVEN a source connected to a quiet stream
        stop = new_stop()
        idle = Consumer(JetstreamSource(fake.url, tmp_path / "a", stop))
        fake.wait_for_connections(1)
        # WHEN stop is set THEN iteration ends within a poll interval
        started = time.monotonic()
        stop.set()
        idle.join(timeout=2)
        assert time.monotonic() - started < 1.0

    # GIVEN a source whose connects all fail, waiting out its backoff with the default sleep
    def refuse(url: str) -> Any:
        raise ConnectionRefusedError(111, "Connection refused (scripted)")

    stop = new_stop()
    backing_off = Consumer(
        JetstreamSource("ws://127.0.0.1:9/subscribe", tmp_path / "b", stop, connect=refuse)
    )
    time.sleep(0.3)
    # WHEN stop is set in the middle of a 1 s wait THEN it does not wait it out
    started = time.monotonic()
    stop.set()
    backing_off.join(timeout=2)
    assert time.monotonic() - started < 0.5
    assert not (tmp_path / "b").exists()  # nothing was handed over, so no cursor either


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_cursor_is_persisted_at_most_once_a_second_and_on_stop(
    tmp_path: Path, base_us: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="musicnft.produce.bluesky")
    cursor_file = tmp_path / "cursor"
    cursor_file.write_text(f"{base_us}\n")
    with FakeJetstream() as fake:
        # GIVEN history after the persisted cursor, and a source on a clock the test moves
        fake.publish(*posts(base_us, 1, 4))
        clock = FakeClock(base_us / SECOND)
        source = JetstreamSource(
            fake.url, cursor_file, threading.Event(), rewind_seconds=0, clock=clock
        )
        items = iter(source)
        # WHEN messages are taken within the same second THEN the file is not rewritten
        assert next(items)[0] == f"jetstream:{base_us + SECOND}"
        next(items)
        assert cursor_file.read_text().strip() == str(base_us)
        # WHEN a second has passed THEN the next resume persists the last message handed over
        clock.now += 1.0
        next(items)
        assert cursor_file.read_text().strip() == str(base_us + 2 * SECOND)
        # WHEN 30 s have passed THEN a rate line is logged (and the cursor saved again)
        clock.now += 30.0
        next(items)
        assert cursor_file.read_text().strip() == str(base_us + 3 * SECOND)
        assert "jetstream: 3 messages in 31 s (0.1/s)" in caplog.text
        # WHEN iteration stops THEN the last message handed over is the cursor
        items.close()  # type: ignore[attr-defined]
        assert cursor_file.read_text().strip() == str(base_us + 4 * SECOND)
    assert fake.connections[0].cursor == base_us


def test_bad_frames_are_yielded_not_fatal(new_stop: NewStop, tmp_path: Path, base_us: int) -> None:
    with FakeJetstream() as fake:
        # GIVEN a live source
        stop = new_stop()
        consumer = Consumer(JetstreamSource(fake.url, tmp_path / "cursor", stop))
        fake.wait_for_connections(1)
        # WHEN Jetstream sends invalid UTF-8 in a text frame, non-JSON, binary junk, then a post
        fake.publish_raw(b'{"did": "\xff\xfe"}', base_us)
        fake.publish_raw(b"not json", base_us)
        fake.publish_raw(b"\x00\x01\x02", base_us, text=False)
        fake.publish(*posts(base_us, 1, 1))
        consumer.wait_for(4)
        stop.set()
        consumer.join()
    # THEN all four came through as bytes on one connection, for the normalizer to judge
    assert [data for _, data in consumer.items[:3]] == [
        b'{"did": "\xff\xfe"}',
        b"not json",
        b"\x00\x01\x02",
    ]
    assert [ref for ref, _ in consumer.items[:3]] == [
        f"jetstream:after-None#{i}" for i in (1, 2, 3)
    ]
    assert consumer.items[3][0] == f"jetstream:{base_us + SECOND}"
    assert len(fake.connections) == 1


def test_unreadable_cursor_file_starts_live_and_url_is_built_from_ours(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a cursor file that is not a number, and a URL that already carries parameters
    (tmp_path / "cursor").write_text("garbage")
    source = JetstreamSource(
        "wss://jetstream2.us-east.bsky.network/subscribe?compress=false&cursor=1&wantedCollections=x",
        tmp_path / "cursor",
        threading.Event(),
        collections=("app.bsky.feed.post", "app.bsky.feed.repost"),
    )
    # THEN it starts live, says so, and subscribes with its own collections and no stale cursor
    assert source.cursor is None
    assert "posts may be missed" in caplog.text
    assert source.subscribe_url() == (
        "wss://jetstream2.us-east.bsky.network/subscribe?compress=false"
        "&wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.feed.repost"
    )
    # AND a URL that is not a websocket is refused at once, not retried for ever
    with pytest.raises(ValueError, match="ws://"):
        JetstreamSource("https://example.com", tmp_path / "c", threading.Event())


# -- end to end through the producer -------------------------------------------------------------


def test_jetstream_through_the_producer_into_the_local_stream(
    new_stop: NewStop, tmp_path: Path, base_us: int
) -> None:
    # Jetstream's time_us grows with publication order: message k is stamped base + k s.
    def at(k: int) -> int:
        return base_us + k * SECOND

    def tracked(k: int) -> Event:
        return post_event(at(k), f"3l3qo{k:08d}", f"my music NFT drop #{k}")

    malformed = b'{"did": "did:plc:broken", "time_us": 17259, "kind": "commit", "commit": '
    duplicate = tracked(3)
    script: list[tuple[str, Event | bytes]] = [
        ("tracked", tracked(1)),
        ("tracked", tracked(2)),
        ("tracked", duplicate),
        ("tracked", duplicate),  # Jetstream is at-least-once: the same message twice
        ("skip", post_event(at(4), "3l3qounrel04", "Coffee, then a long walk")),
        ("unsent", like_event(at(5), "3l3qo00000001")),  # not in wantedCollections
        ("skip", delete_event(at(6), "3l3qo00000001")),
        ("skip", post_event(at(7), "3l3qo00000002", "music NFT (edited)", operation="update")),
        ("malformed", malformed),
        ("skip", identity_event(at(9))),
        ("tracked", tracked(10)),
        ("skip", post_event(at(11), "3l3qounrel11", "new NFTs? no")),
        ("skip", account_event(at(12))),
        ("tracked", tracked(13)),
        ("tracked", tracked(14)),
        ("skip", account_event(at(15))),  # the last message: the test waits for it
    ]
    category = {(e if isinstance(e, bytes) else raw(e)): c for c, e in script}
    with FakeJetstream(drop_after={0: 8}) as fake:
        # GIVEN the real producer writing to a local stream, reading a Jetstream source whose
        # first connection will be cut after 8 messages (just after the broken frame)
        stop = new_stop()
        stream = LocalStream(tmp_path / "stream.sqlite")
        dead_letter = DeadLetter(tmp_path / "dl", "producer")
        producer = Producer(
            LocalStreamSink(stream), KeywordMatcher(DEFAULT_KEYWORDS), dead_letter, stop=stop
        )
        source = JetstreamSource(
            fake.url,
            tmp_path / "cursor",
            stop,
            rewind_seconds=4.5,
            sleep=lambda s: None,
            durable_acks=True,
        )
        # (wired as `musicnft produce` wires them)
        producer.on_durable = source.acknowledge
        producer.on_dead_letter = source.dead_lettered
        result: list[Any] = []
        thread = threading.Thread(
            target=lambda: result.append(
                producer.run(source, Pacer(None), normalize=normalize_jetstream_event)
            ),
            daemon=True,
        )
        thread.start()
        fake.wait_for_connections(1)
        # WHEN Jetstream sends tracked and untracked posts, a duplicate, a like, a delete, an
        # update, identity and account events and a broken frame
        for i, (_, event) in enumerate(script):
            if isinstance(event, bytes):
                fake.publish_raw(event, at(i))
            else:
                fake.publish(event)
        # (the producer is done with the last message once it asks the source for the next)
        wait_until(
            lambda: (
                source.cursor == at(15)
                and producer.stats.lines == source.messages - source.replayed_dead_letters
            ),
            timeout=10,
            what="the last message to be processed",
        )
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()
    stats = result[0]
    first, second = fake.connections
    sent = [frame.payload for conn in fake.connections for frame in conn.sent]
    sent_categories = Counter(category[payload] for payload in sent)

    # THEN the connection was cut and resumed from the last good message (the update at 7 s)
    # minus the rewind; the like was never sent
    assert first.dropped and len(first.sent) == 8
    assert second.cursor == at(7) - 4_500_000
    assert sent_categories["unsent"] == 0
    # AND every message the server sent was processed: posts produced, the rest skipped, the
    # broken frame dead-lettered once (its replay was recognised and not handed over again)
    assert stats.lines == len(sent) - 1
    assert source.replayed_dead_letters == 1
    assert (stats.produced, stats.skipped, stats.dead_letter) == (
        sent_categories["tracked"],
        sent_categories["skip"],
        1,
    )
    records = stream.read(after=0, limit=1000)
    ids = Counter(json.loads(r.data)["post_id"] for r in records)
    assert set(ids) == {f"bsky:at://{DID}/{POST}/3l3qo{k:08d}" for k in (1, 2, 3, 10, 13, 14)}
    # AND the only duplicates are the deliberate one and the posts inside the rewind window
    # (3 s and later): post 3 four times (twice per connection), posts 1 and 2 once
    assert ids == Counter(
        {
            f"bsky:at://{DID}/{POST}/3l3qo{k:08d}": n
            for k, n in ((1, 1), (2, 1), (3, 4), (10, 1), (13, 1), (14, 1))
        }
    )
    assert sent_categories["malformed"] == 2  # sent before the cut and again in the replay
    entries = read_entries(tmp_path / "dl" / "producer.jsonl")
    assert [e["raw"] for e in entries] == [malformed.decode()]
    assert entries[0]["reason"].startswith("invalid JSON")
    assert entries[0]["ref"].startswith("jetstream:after-")
    # AND the cursor left behind is the last message handed over, all of them durable
    source.close()
    assert (tmp_path / "cursor").read_text().strip() == str(at(15))
    stream.close()


# -- hostile frames and durable cursors (issue #12 items 3 and 13) ----------------------------------


class ScriptedConnection:
    """A connection that hands out scripted frames (str or bytes), then idles."""

    def __init__(self, frames: list[str | bytes]) -> None:
        self.frames = list(frames)

    def __enter__(self) -> ScriptedConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def recv(self, timeout: float | None = None, decode: bool | None = None) -> str | bytes:
        if not self.frames:
            time.sleep(timeout or 0)
            raise TimeoutError
        return self.frames.pop(0)


def test_no_frame_raises_out_of_the_source_and_absurd_time_us_never_become_the_cursor(
    tmp_path: Path, base_us: int
) -> None:
    # GIVEN frames a websocket library could hand over: a str with a lone surrogate, time_us
    # from far in the future or the past, not an int, out of range, and huge or deep JSON
    def future(k: int) -> Event:
        return post_event(base_us + 86_400 * SECOND, f"3l3qofut{k:05d}", "music NFT")

    frames: list[str | bytes] = [
        '{"did": "\ud800", "time_us": 5}',
        raw(future(1)),
        raw(post_event(12345, "3l3qopast0001", "music NFT from 1970")),
        raw(post_event(base_us, "3l3qo00000001", "music NFT")),
        raw({**post_event(base_us, "3l3qo00000002", "x"), "time_us": str(base_us + SECOND)}),
        raw({**post_event(base_us, "3l3qo00000003", "x"), "time_us": 2**64}),
        b'{"time_us": ' + b"9" * 5000 + b"}",
        b"[" * 100_000,
        raw(post_event(base_us + 2 * SECOND, "3l3qo00000004", "music NFT")),
    ]
    stop = threading.Event()
    source = JetstreamSource(
        "ws://127.0.0.1:9/subscribe",
        tmp_path / "cursor",
        stop,
        connect=lambda url: ScriptedConnection(frames),
    )
    # WHEN it reads them all
    items = []
    for item in source:
        items.append(item)
        if len(items) == len(frames):
            stop.set()
    # THEN every frame was handed over as bytes (the normalizer judges them) and only the
    # plausible time_us moved the cursor
    assert [data for _, data in items[1:]] == frames[1:]
    assert items[0][1] == b'{"did": "\xed\xa0\x80", "time_us": 5}'  # kept, not a crash
    assert source.cursor == base_us + 2 * SECOND
    assert (tmp_path / "cursor").read_text().strip() == str(base_us + 2 * SECOND)
    # AND each of them through the producer is a post or a dead-letter, never an exception
    for ref, data in items:
        with contextlib.suppress(RejectedRecord, SkipRecord):
            normalize_jetstream_event(data, MATCHER, INGESTED_AT)
        assert ref.startswith("jetstream:")


def test_with_durable_acks_the_cursor_waits_for_the_consumer(
    new_stop: NewStop, tmp_path: Path, base_us: int
) -> None:
    cursor_file = tmp_path / "cursor"
    frames: list[str | bytes] = [raw(e) for e in posts(base_us, 1, 3)]
    stop = new_stop()
    clock = FakeClock(base_us / SECOND - 5)
    source = JetstreamSource(
        "ws://127.0.0.1:9/subscribe",
        cursor_file,
        stop,
        clock=clock,
        connect=lambda url: ScriptedConnection(frames),
        durable_acks=True,
    )
    items = iter(source)
    # GIVEN a fresh start: the moment it connected is saved at once as where to resume from
    next(items)
    assert cursor_file.read_text().strip() == str(base_us - 5 * SECOND)
    next(items)
    next(items)
    # WHEN nothing handed over is acknowledged yet THEN the cursor on disk does not move
    clock.now += 10
    source.save_cursor()
    assert cursor_file.read_text().strip() == str(base_us - 5 * SECOND)
    assert source.cursor == base_us + 3 * SECOND  # (a reconnect resumes from what it has)
    # WHEN the first two are durable THEN the cursor is the second's, never the third's
    source.acknowledge(2)
    source.save_cursor()
    assert cursor_file.read_text().strip() == str(base_us + 2 * SECOND)
    # AND what becomes durable after iteration (the producer's final flush) is saved on close
    source.acknowledge(3)
    source.close()
    assert cursor_file.read_text().strip() == str(base_us + 3 * SECOND)


def test_a_replayed_frame_already_dead_lettered_is_not_handed_over_again(
    new_stop: NewStop, tmp_path: Path, base_us: int
) -> None:
    broken = b'{"did": "did:plc:broken", "kind": "commit", "commit": '
    good = raw(posts(base_us, 1, 1)[0])
    # GIVEN a source that handed over a broken frame the producer dead-lettered, then stopped
    first = JetstreamSource(
        "ws://127.0.0.1:9/subscribe",
        tmp_path / "cursor",
        new_stop(),
        connect=lambda url: ScriptedConnection([good, broken]),
        durable_acks=True,
    )
    items = iter(first)
    assert next(items)[1] == good
    ref, data = next(items)
    first.dead_lettered(ref, data)
    # WHEN a new source (a restart) is sent the same frames again by the rewind
    stop = new_stop()
    second = JetstreamSource(
        "ws://127.0.0.1:9/subscribe",
        tmp_path / "cursor",
        stop,
        connect=lambda url: ScriptedConnection([good, broken, good]),
    )
    got = []
    for _, data in second:
        got.append(data)
        if len(got) == 2:
            stop.set()
    # THEN the good post comes again (duplicates are harmless) and the broken frame does not
    assert got == [good, good]
    assert second.replayed_dead_letters == 1


def test_dead_lettered_digests_are_forgotten_after_the_rewind_window(
    new_stop: NewStop, tmp_path: Path, base_us: int
) -> None:
    # GIVEN a frame dead-lettered early on, and one more than the rewind window + 60 s later
    late = base_us + 100 * SECOND
    frames: list[str | bytes] = [
        raw(posts(base_us, 1, 1)[0]),
        b"broken 1",
        raw(post_event(late, "3l3qo00000099", "music NFT")),
        b"broken 2",
    ]
    source = JetstreamSource(
        "ws://127.0.0.1:9/subscribe",
        tmp_path / "cursor",
        new_stop(),
        rewind_seconds=10,
        clock=FakeClock(base_us / SECOND),
        connect=lambda url: ScriptedConnection(frames),
        durable_acks=True,
    )
    items = iter(source)
    next(items)
    source.dead_lettered(*next(items))
    assert len((tmp_path / "cursor.dead-lettered").read_text().splitlines()) == 1
    next(items)
    source.acknowledge(3)
    source.save_cursor()
    # WHEN the second is dead-lettered THEN only it is remembered: the first can no longer be
    # replayed by a rewind from the durable cursor
    source.dead_lettered(*next(items))
    lines = (tmp_path / "cursor.dead-lettered").read_text().splitlines()
    assert [int(line.split()[0]) for line in lines] == [late]
