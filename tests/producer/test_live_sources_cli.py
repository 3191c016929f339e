"""`musicnft produce --source x` and `musicnft x-rules sync` against a local X protocol server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from musicnft.adapters.local_stream import LocalStream
from tests.support.fake_x import TOKEN, FakeX, line, tweet
from tests.support.paths import cli

pytestmark = pytest.mark.slow


@pytest.fixture
def fake() -> FakeX:
    server = FakeX()
    yield server
    server.close()


def _env(cli_env: dict[str, str], fake: FakeX) -> dict[str, str]:
    return dict(
        cli_env, MUSICNFT_X_API_BASE=fake.url, X_BEARER_TOKEN=TOKEN, MUSICNFT_LOG_LEVEL="DEBUG"
    )


def test_produce_from_x_until_sigterm(fake: FakeX, cli_env: dict[str, str], data_dir: Path) -> None:
    # GIVEN a stream of five posts (one delivered twice) and then a dropped connection
    fake.scripts = [[("chunk", b"".join(line(tweet(i)) for i in (1, 2, 3, 3, 4, 5))), ("drop",)]]
    fake.scripts += [[("chunk", b"\r\n"), ("sleep", 30)]]
    env = _env(cli_env, fake)
    proc = subprocess.Popen(
        cli("produce", "--source", "x", "--stall-seconds", "5"),
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stream_path = data_dir / "stream" / "musicnft-posts.sqlite"
        deadline = time.monotonic() + 60
        on_stream = 0
        while time.monotonic() < deadline and on_stream < 6:
            if stream_path.exists():
                with LocalStream(stream_path, readers=()) as s:
                    on_stream = s.total_appended()
            time.sleep(0.2)
        # THEN the posts reach the stream while the source is quiet (the batch does not wait
        # for a next post that may not come for minutes)
        assert on_stream == 6
        # AND a second producer is refused: X allows one connection per app
        second = subprocess.run(
            cli("produce", "--source", "x"), env=env, capture_output=True, text=True
        )
        assert second.returncode == 2 and "another producer holds the X stream" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    with LocalStream(stream_path, readers=()) as s:
        keys = [r.partition_key for r in s.read(0, 100)]
    # THEN every post is on the stream; the duplicate is the source's, removed downstream by id
    assert sorted(set(keys)) == [f"x:{1466000000000000000 + i}" for i in (1, 2, 3, 4, 5)]
    assert len(keys) == 6
    assert "X stream disconnected" in err and TOKEN not in err
    status = json.loads(
        subprocess.run(cli("status", "--json"), env=env, capture_output=True, text=True).stdout
    )
    assert status["x_posts_read"] == 6
    assert status["x_estimated_spend_usd"] == pytest.approx(0.03)


def test_missing_token_is_a_clear_error(cli_env: dict[str, str]) -> None:
    env = {
        k: v for k, v in cli_env.items() if k not in ("X_BEARER_TOKEN", "MUSICNFT_X_BEARER_TOKEN")
    }
    proc = subprocess.run(cli("produce", "--source", "x"), env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "X_BEARER_TOKEN is not set" in proc.stderr


def test_x_rules_sync_cli(fake: FakeX, cli_env: dict[str, str]) -> None:
    env = _env(cli_env, fake)
    dry = subprocess.run(
        cli("x-rules", "sync", "--dry-run"), env=env, capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stderr
    assert "would add    musicnft:music: music OR #music" in dry.stdout
    assert fake.rules == []
    subprocess.run(cli("x-rules", "sync"), env=env, check=True, capture_output=True)
    assert len(fake.rules) == 5
    again = subprocess.run(cli("x-rules", "sync"), env=env, capture_output=True, text=True)
    assert "rules already in sync" in again.stdout
    bad = subprocess.run(
        cli("x-rules", "sync"), env=dict(env, X_BEARER_TOKEN="nope"), capture_output=True, text=True
    )
    assert bad.returncode == 2 and "HTTP 401" in bad.stderr and TOKEN not in bad.stderr + bad.stdout
    os.environ.pop("X_BEARER_TOKEN", None)


def test_produce_from_bluesky_until_sigterm(cli_env: dict[str, str], data_dir: Path) -> None:
    from tests.support.fake_jetstream import FakeJetstream, post_event

    with FakeJetstream() as server:
        env = dict(cli_env, MUSICNFT_JETSTREAM_URL=server.url)
        proc = subprocess.Popen(
            cli("produce", "--source", "bluesky"), env=env, stderr=subprocess.PIPE, text=True
        )
        try:
            server.wait_for_connections(1, timeout=30)
            # GIVEN tracked and untracked posts on the firehose
            server.publish(
                post_event(1_725_911_162_000_001, "a1", "New music NFT drop on OpenSea"),
                post_event(1_725_911_162_000_002, "a2", "lunch was great"),
                post_event(1_725_911_162_000_003, "a3", "gas fees on ETH again"),
            )
            stream_path = data_dir / "stream" / "musicnft-posts.sqlite"
            on_stream, deadline = 0, time.monotonic() + 30
            while time.monotonic() < deadline and on_stream < 2:
                if stream_path.exists():
                    with LocalStream(stream_path, readers=()) as s:
                        on_stream = s.total_appended()
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
    # THEN only the tracked posts reach the stream, and the cursor is saved for a restart
    assert proc.returncode == 0, err[-2000:]
    with LocalStream(stream_path, readers=()) as s:
        keys = sorted(r.partition_key for r in s.read(0, 10))
    assert [k.rsplit("/", 1)[-1] for k in keys] == ["a1", "a3"]
    assert (data_dir / "bluesky" / "cursor").exists()
