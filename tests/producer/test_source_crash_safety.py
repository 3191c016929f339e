"""`musicnft produce --source x|bluesky` killed with SIGKILL and restarted: no post is lost.

Issue #12: a source persists its resume position (Jetstream's cursor, X's newest post id) only
once the messages up to it are durably on the stream or in the dead-letter, no frame can stop a
source or make it crash-loop on a restart, and a frame already dead-lettered is not dead-lettered
again when a rewind replays it. Each test runs the real CLI against a local protocol server
(tests/support/fake_x.py, fake_jetstream.py); the kills fall at seeded random moments, and every
wait is bounded, so a failure is a timeout with a message, never a hang.
"""

from __future__ import annotations

import base64
import json
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from musicnft.adapters.local_stream import LocalStream
from musicnft.hotpath.deadletter import read_entries
from tests.support.fake_jetstream import DID, POST, FakeJetstream, post_event
from tests.support.fake_x import TOKEN, FakeX, tweet
from tests.support.paths import cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def stream_keys(data_dir: Path) -> list[str]:
    path = data_dir / "stream" / "musicnft-posts.sqlite"
    if not path.exists():
        return []
    with LocalStream(path, readers=()) as stream:
        return [r.partition_key for r in stream.read(0, stream.total_appended() + 1000)]


def dead_letters(data_dir: Path) -> list[bytes]:
    """The raw lines in the producer's dead-letter, as bytes."""
    out = []
    for entry in read_entries(data_dir / "dead_letter" / "producer.jsonl"):
        raw = entry.get("raw")
        out.append(raw.encode() if raw is not None else base64.b64decode(entry["raw_b64"]))
    return out


class Producers:
    """Starts `musicnft produce` subprocesses (stderr to a file each) and never leaks one."""

    def __init__(self, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.args, self.env, self.logs = args, env, logs
        self.started = 0
        self.proc: subprocess.Popen[str] | None = None
        self._err: IO[str] | None = None

    def start(self) -> None:
        self.started += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        self._err = open(self.logs / f"produce-{self.started}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cli("produce", *self.args), env=self.env, stderr=self._err, text=True
        )

    def kill_9(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no flush, no cleanup
        self.proc.wait(timeout=30)
        self._close_log()

    def stop(self) -> int:
        """SIGTERM, wait, the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self._close_log()
        return code

    def log(self) -> str:
        return (self.logs / f"produce-{self.started}.log").read_text()[-3000:]

    def _close_log(self) -> None:
        if self._err is not None:
            self._err.close()
            self._err = None

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._close_log()


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    server = FakeX()
    server.live = True
    yield server
    server.close()


def x_id(i: int) -> str:
    return f"x:{1466000000000000000 + i}"


def test_x_killed_at_random_moments_loses_no_post(
    fake_x: FakeX, cli_env: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    # GIVEN a live X stream and a producer with --catch-up
    env = dict(cli_env, MUSICNFT_X_API_BASE=fake_x.url, X_BEARER_TOKEN=TOKEN)
    producers = Producers(
        ["--source", "x", "--catch-up", "--stall-seconds", "5"], env, tmp_path / "logs"
    )
    rng = random.Random(20261130)
    n = 0
    try:
        # WHEN it is killed with SIGKILL at random moments while posts arrive, and posts keep
        # coming while it is down, several times over
        for round_ in range(4):
            producers.start()
            wait_for(lambda r=round_: fake_x.live_connects > r, "the producer to connect")
            for _ in range(rng.randint(3, 8)):
                n += 1
                fake_x.publish(tweet(n))
                time.sleep(rng.uniform(0, 0.3))
            time.sleep(rng.uniform(0, 0.8))
            producers.kill_9()
            for _ in range(rng.randint(1, 4)):
                n += 1
                fake_x.publish(tweet(n))  # missed by the stream: only recent search has them
        # AND a last run, stopped normally once a last post has come
        producers.start()
        wait_for(lambda: fake_x.live_connects > 4, "the last producer to connect")
        n += 1
        fake_x.publish(tweet(n))
        expected = {x_id(i) for i in range(1, n + 1)}
        wait_for(
            lambda: expected <= set(stream_keys(data_dir)),
            f"all {n} posts on the stream",
        )
        code = producers.stop()
    finally:
        producers.cleanup()
    # THEN every post X published reaches the stream (duplicates allowed, no gap)
    assert code == 0, producers.log()
    assert expected <= set(stream_keys(data_dir))
    # AND the newest durable post id is kept in the data dir, the restarts recorded as gaps
    state = json.loads((data_dir / "x" / "x_state.json").read_text())
    assert state["last_id"] == x_id(n).removeprefix("x:")
    gaps = [json.loads(g) for g in (data_dir / "x" / "x_gaps.jsonl").read_text().splitlines()]
    assert [g["cause"] for g in gaps].count("producer restart") >= 3


def test_x_catch_up_after_a_restart_fills_the_time_it_was_down(
    fake_x: FakeX, cli_env: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    # GIVEN a producer that put posts 1-2 on the stream and was stopped
    env = dict(cli_env, MUSICNFT_X_API_BASE=fake_x.url, X_BEARER_TOKEN=TOKEN)
    producers = Producers(["--source", "x", "--catch-up"], env, tmp_path / "logs")
    try:
        producers.start()
        wait_for(lambda: fake_x.live_connects > 0, "the producer to connect")
        fake_x.publish(tweet(1), tweet(2))
        wait_for(lambda: {x_id(1), x_id(2)} <= set(stream_keys(data_dir)), "posts 1-2")
        assert producers.stop() == 0, producers.log()
        # AND posts 3-4 were published while nothing ran
        fake_x.publish(tweet(3), tweet(4))
        # WHEN it starts again and the stream stays quiet (keep-alives only)
        producers.start()
        # THEN the catch-up does not wait for a next post: 3 and 4 arrive from recent search
        wait_for(lambda: {x_id(3), x_id(4)} <= set(stream_keys(data_dir)), "posts 3-4")
        assert producers.stop() == 0, producers.log()
    finally:
        producers.cleanup()
    keys = stream_keys(data_dir)
    assert sorted(keys) == [x_id(i) for i in (1, 2, 3, 4)]  # since_id: nothing fetched twice


# -- Bluesky -----------------------------------------------------------------------------------

SECOND = 1_000_000


class Clock:
    """Strictly increasing time_us near the real clock (the source ignores absurd ones)."""

    def __init__(self) -> None:
        self.last = 0

    def __call__(self, offset_s: float = 0.0) -> int:
        self.last = max(self.last + 1, int((time.time() + offset_s) * SECOND))
        return self.last


def bsky_id(rkey: str) -> str:
    return f"bsky:at://{DID}/{POST}/{rkey}"


def test_bluesky_killed_at_random_moments_loses_no_post(
    cli_env: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    rng = random.Random(1312)
    now_us = Clock()
    published: list[str] = []
    with FakeJetstream() as server:
        env = dict(cli_env, MUSICNFT_JETSTREAM_URL=server.url)
        producers = Producers(["--source", "bluesky"], env, tmp_path / "logs")

        def publish(untracked: bool = False) -> None:
            rkey = f"3l3qo{len(published):08d}{'u' if untracked else ''}"
            text = "lunch was great" if untracked else f"music NFT drop {len(published)}"
            server.publish(post_event(now_us(), rkey, text))
            if not untracked:
                published.append(rkey)

        try:
            # WHEN the producer is killed with SIGKILL at random moments while Jetstream
            # publishes tracked and untracked posts, and Jetstream goes on while it is down
            for round_ in range(4):
                producers.start()
                server.wait_for_connections(round_ + 1, timeout=60)
                for _ in range(rng.randint(3, 10)):
                    publish(untracked=rng.random() < 0.3)
                    time.sleep(rng.uniform(0, 0.3))
                time.sleep(rng.uniform(0, 1.5))
                producers.kill_9()
                for _ in range(rng.randint(1, 4)):
                    publish()
            producers.start()
            publish()
            expected = {bsky_id(rkey) for rkey in published}
            wait_for(lambda: expected <= set(stream_keys(data_dir)), "every tracked post")
            code = producers.stop()
        finally:
            producers.cleanup()
    # THEN every tracked post Jetstream sent is on the stream (duplicates allowed, no gap)
    assert code == 0, producers.log()
    assert expected <= set(stream_keys(data_dir))
    assert not any(k.endswith("u") for k in stream_keys(data_dir))


def test_bluesky_cursor_waits_for_the_batch_to_be_on_the_stream(
    cli_env: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    now_us = Clock()
    with FakeJetstream() as server:
        env = dict(cli_env, MUSICNFT_JETSTREAM_URL=server.url)
        producers = Producers(["--source", "bluesky"], env, tmp_path / "logs")
        stream_path = data_dir / "stream" / "musicnft-posts.sqlite"
        lock: sqlite3.Connection | None = None
        try:
            producers.start()
            server.wait_for_connections(1, timeout=60)
            server.publish(post_event(now_us(), "3l3qo00000000", "music NFT: the first"))
            wait_for(lambda: len(stream_keys(data_dir)) == 1, "the first post")
            # GIVEN a stream that cannot take a batch right now (another writer holds it)
            lock = sqlite3.connect(stream_path, isolation_level=None, timeout=30)
            lock.execute("BEGIN IMMEDIATE")
            # WHEN a tracked post is accepted, and then a firehose of untracked messages (over
            # more than the 10 s rewind of Jetstream time) keeps the source moving
            tracked_us = now_us()
            server.publish(post_event(tracked_us, "3l3qo00000001", "music NFT: in the batch"))
            for i in range(20):
                server.publish(post_event(now_us(15 + i), f"3l3qounrel{i:02d}", "lunch"))
            wait_for(lambda: server.total_sent() >= 22, "the firehose to be sent")
            time.sleep(2.5)  # more than the source's persist interval
            cursor_file = data_dir / "bluesky" / "cursor"
            # THEN the cursor on disk is not past the post that is not on the stream yet
            assert int(cursor_file.read_text()) < tracked_us
            # AND a kill -9 now, before the batch is put, loses nothing after a restart
            producers.kill_9()
            lock.execute("ROLLBACK")
            lock.close()
            lock = None
            producers.start()
            server.publish(post_event(now_us(40), "3l3qo00000002", "music NFT: after"))
            expected = {bsky_id(f"3l3qo{i:08d}") for i in range(3)}
            wait_for(lambda: expected <= set(stream_keys(data_dir)), "all three tracked posts")
            code = producers.stop()
        finally:
            if lock is not None:
                lock.close()
            producers.cleanup()
    assert code == 0, producers.log()


BAD_FRAMES: list[tuple[str, bytes, bool]] = [
    # (what, payload, sent as a text frame)
    ("invalid JSON", b'{"did": "did:plc:broken", "kind": "commit", "commit": ', True),
    ("invalid UTF-8", b'{"did": "\xff\xfe", "time_us": 1}', True),
    ("binary junk", b"\x00\x01\x02\x03", False),
    ("huge integer", b'{"time_us": ' + b"9" * 5000 + b"}", True),
    ("deeply nested", b"[" * 100_000, True),
    ("not an object", b"[1, 2, 3]", True),
]


def _bad_post(time_us: object) -> bytes:
    event: dict[str, Any] = post_event(1, "3l3qobadtime", "music NFT with a broken time")
    event["time_us"] = time_us
    return json.dumps(event).encode()


def test_bluesky_bad_frames_are_dead_lettered_once_across_a_kill_and_restart(
    cli_env: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    now_us = Clock()
    bad = [payload for _, payload, _ in BAD_FRAMES]
    bad += [_bad_post("1725911162329308"), _bad_post(2**64), _bad_post(-5), _bad_post(1.5)]
    with FakeJetstream() as server:
        env = dict(cli_env, MUSICNFT_JETSTREAM_URL=server.url)
        producers = Producers(["--source", "bluesky"], env, tmp_path / "logs")
        try:
            producers.start()
            server.wait_for_connections(1, timeout=60)
            # GIVEN bad frames of every kind between good posts, and a good post whose time_us is
            # absurd (a day ahead): kept as a post, but never the cursor
            server.publish(post_event(now_us(), "3l3qo00000000", "music NFT 0"))
            for i, (_, payload, text) in enumerate(BAD_FRAMES):
                server.publish_raw(payload, now_us(), text=text)
                server.publish(post_event(now_us(), f"3l3qo{i + 1:08d}", f"music NFT {i + 1}"))
            for payload in bad[len(BAD_FRAMES) :]:
                server.publish_raw(payload, now_us())
            future = post_event(now_us() + 86_400 * SECOND, "3l3qofuture01", "music NFT later")
            server.publish_raw(json.dumps(future).encode(), now_us())
            last_good_us = now_us()
            server.publish(post_event(last_good_us, "3l3qo00000099", "music NFT 99"))
            good = {bsky_id(f"3l3qo{i:08d}") for i in (*range(len(BAD_FRAMES) + 1), 99)}
            good.add(bsky_id("3l3qofuture01"))
            # WHEN the producer has handled them all
            wait_for(lambda: good <= set(stream_keys(data_dir)), "the good posts")
            wait_for(lambda: len(dead_letters(data_dir)) == len(bad), "the bad frames")
            cursor_file = data_dir / "bluesky" / "cursor"
            # THEN the cursor moves past the bad frames (and ignores the absurd time_us)
            wait_for(
                lambda: cursor_file.exists() and int(cursor_file.read_text()) == last_good_us,
                "the cursor to reach the last good post",
            )
            # WHEN it is killed with SIGKILL and restarted: the 10 s rewind replays everything
            producers.kill_9()
            producers.start()
            server.wait_for_connections(2, timeout=60)
            server.publish(post_event(now_us(), "3l3qo00000100", "music NFT 100"))
            good.add(bsky_id("3l3qo00000100"))
            wait_for(lambda: good <= set(stream_keys(data_dir)), "the post after the restart")
            code = producers.stop()
        finally:
            producers.cleanup()
        replayed = server.connections[1]
    # THEN the restart replayed the bad frames (from the cursor minus the rewind) without
    # crashing, and each bad frame is in the dead-letter exactly once, with a reason
    assert replayed.cursor is not None and replayed.cursor <= last_good_us - 10 * SECOND
    assert code == 0, producers.log()
    assert sorted(dead_letters(data_dir)) == sorted(bad)
    reasons = [e["reason"] for e in read_entries(data_dir / "dead_letter" / "producer.jsonl")]
    assert all(reasons) and not any(r.startswith("unexpected") for r in reasons), reasons
    assert good <= set(stream_keys(data_dir))
