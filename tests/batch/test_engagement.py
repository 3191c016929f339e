"""Engagement re-reads at +1 h and +24 h against local fakes of Bluesky's AppView and X's API:
batching, missing and deleted posts, 429, the X budget, and the window table they feed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.batch.engagement import (
    BlueskyReader,
    XReader,
    run_rereads,
    x_spend_today,
)
from musicnft.contract.tables import TABLES
from musicnft.contract.windows import window_key, window_start
from musicnft.settings import Settings
from tests.support.fake_rereads import TOKEN, FakeRereadServer

CREATED = datetime(2021, 12, 1, 10, 3, tzinfo=UTC)
WINDOW = window_start(CREATED)
AT_1H = CREATED + timedelta(hours=1, minutes=5)
AT_24H = CREATED + timedelta(hours=24, minutes=5)
PRICE = 0.005


def bsky_id(i: int) -> str:
    return f"bsky:at://did:plc:author{i % 3}/app.bsky.feed.post/rk{i}"


def post(pid: str, keywords: list[str]) -> dict:
    return {
        "post_id": pid,
        "platform": "bluesky" if pid.startswith("bsky") else "x",
        "created_at": CREATED,
        "ingested_at": CREATED,
        "text": "t",
        "matched_keywords": keywords,
        "like_count": 0,
        "schema_version": 1,
        "window_start": WINDOW,
    }


@pytest.fixture
def server() -> Iterator[FakeRereadServer]:
    s = FakeRereadServer()
    yield s
    s.close()


@pytest.fixture
def wh(tmp_path: Path) -> EmbeddedWarehouse:
    return EmbeddedWarehouse(tmp_path / "warehouse")


def seed(wh: EmbeddedWarehouse, server: FakeRereadServer, n_bsky: int, n_x: int) -> None:
    posts = [post(bsky_id(i), ["music"]) for i in range(n_bsky)]
    posts += [post(f"x:{1000 + i}", ["nft"]) for i in range(n_x)]
    wh.replace_partition(
        "posts", window_key(WINDOW), pa.Table.from_pylist(posts, schema=TABLES["posts"])
    )
    for i in range(n_bsky):
        if i % 10 != 9:  # every tenth Bluesky post is deleted
            server.bluesky[bsky_id(i)[5:]] = {
                "likeCount": i,
                "repostCount": 1,
                "replyCount": 0,
                "quoteCount": 0,
            }
    for i in range(n_x):
        if i != 3:  # one X post is gone
            server.x[str(1000 + i)] = {
                "retweet_count": 1,
                "reply_count": 1,
                "like_count": 2,
                "quote_count": 0,
            }


def readers(server: FakeRereadServer, sleeps: list[float]) -> tuple[BlueskyReader, XReader]:
    kw = {"attempts": 3, "backoff": 0.1, "sleep": sleeps.append}
    return BlueskyReader(server.url, **kw), XReader(server.url, TOKEN, **kw)


def snapshots(wh: EmbeddedWarehouse) -> list[dict]:
    return wh.query("SELECT * FROM engagement_snapshots ORDER BY age, post_id").to_pylist()


def test_bluesky_batches_of_25_missing_posts_and_window_metrics(
    wh: EmbeddedWarehouse, server: FakeRereadServer
) -> None:
    seed(wh, server, n_bsky=60, n_x=0)
    bsky, x = readers(server, [])
    # too early: nothing is due before 1 h
    assert run_rereads(wh, CREATED + timedelta(minutes=50), bsky, x, PRICE, 0).read == {}
    result = run_rereads(wh, AT_1H, bsky, x, PRICE, 0)
    assert result.read == {"bluesky 1h": 60}
    assert [len(ids) for _, ids in server.batches] == [25, 25, 10]
    assert result.missing == 6
    snaps = snapshots(wh)
    assert len(snaps) == 60 and {s["age"] for s in snaps} == {"1h"}
    gone = [s for s in snaps if s["status"] == "missing"]
    assert len(gone) == 6 and all(s["engagement"] is None for s in gone)
    # a second run at the same age reads nothing again
    assert run_rereads(wh, AT_1H + timedelta(minutes=15), bsky, x, PRICE, 0).read == {}
    # at 24 h each post is read once more
    assert run_rereads(wh, AT_24H, bsky, x, PRICE, 0).read == {"bluesky 24h": 60}
    rows = {
        r["keyword"]: r
        for r in wh.query(
            "SELECT * FROM engagement_15m WHERE window_start = ?", [WINDOW]
        ).to_pylist()
    }
    expected = sum(i + 1 for i in range(60) if i % 10 != 9)
    assert rows["all"]["read_24h"] == 54 and rows["all"]["engagement_24h"] == expected
    assert rows["music"]["engagement_1h"] == expected and rows["music"]["post_count"] == 60


def test_posts_older_than_the_grace_period_are_not_read_as_1h(
    wh: EmbeddedWarehouse, server: FakeRereadServer
) -> None:
    seed(wh, server, n_bsky=3, n_x=0)
    bsky, x = readers(server, [])
    result = run_rereads(wh, CREATED + timedelta(hours=8), bsky, x, PRICE, 0)
    assert result.read == {}  # past 1 h + 6 h grace, before 24 h


def test_x_is_off_without_a_budget(wh: EmbeddedWarehouse, server: FakeRereadServer) -> None:
    seed(wh, server, n_bsky=0, n_x=10)
    bsky, x = readers(server, [])
    result = run_rereads(wh, AT_1H, bsky, x, PRICE, 0)
    assert result.read == {} and result.x_skipped == 10 and server.batches == []


def test_x_batches_of_100_deleted_posts_and_the_budget_cap(
    wh: EmbeddedWarehouse, server: FakeRereadServer
) -> None:
    seed(wh, server, n_bsky=0, n_x=250)
    bsky, x = readers(server, [])
    # a budget of $1.00 at $0.005 a post: 200 posts today, then stop
    result = run_rereads(wh, AT_1H, bsky, x, PRICE, 1.00)
    assert [len(ids) for _, ids in server.batches] == [100, 100]
    assert result.read == {"x 1h": 200} and result.budget_exhausted and result.x_skipped == 50
    assert result.x_spend_usd == pytest.approx(1.00)
    assert x_spend_today(wh, AT_1H, PRICE) == (200, pytest.approx(1.00))
    assert sum(1 for s in snapshots(wh) if s["status"] == "missing") == 1  # x:1003 is gone
    # later the same day: still exhausted, nothing is called
    again = run_rereads(wh, AT_1H + timedelta(minutes=15), bsky, x, PRICE, 1.00)
    assert again.budget_exhausted and len(server.batches) == 2
    # the next UTC day has a new budget: the rest are read (now at their 24 h age)
    next_day = run_rereads(wh, AT_24H, bsky, x, PRICE, 1.00)
    assert next_day.read == {"x 24h": 200}
    assert server.unauthorized == 0


def test_429_is_retried_then_the_run_stops_and_the_next_continues(
    wh: EmbeddedWarehouse, server: FakeRereadServer
) -> None:
    seed(wh, server, n_bsky=30, n_x=0)
    sleeps: list[float] = []
    bsky, x = readers(server, sleeps)
    server.script = [429]
    first = run_rereads(wh, AT_1H, bsky, x, PRICE, 0)
    assert first.read == {"bluesky 1h": 30} and sleeps == [2.0]  # Retry-After honoured
    # a source that keeps refusing: the run keeps what it read and stops
    seed(wh, server, n_bsky=30, n_x=0)
    server.script = [429, 429, 429]
    stopped = run_rereads(wh, AT_24H, bsky, x, PRICE, 0)
    assert stopped.errors and "429" in stopped.errors[0] and stopped.read == {}
    resumed = run_rereads(wh, AT_24H + timedelta(minutes=15), bsky, x, PRICE, 0)
    assert resumed.read == {"bluesky 24h": 30}


def test_settings() -> None:
    s = Settings.from_env({"MUSICNFT_X_REREAD_BUDGET_USD": "2.5"})
    assert s.x_reread_budget_usd == 2.5
    assert Settings.from_env({}).x_reread_budget_usd == 0.0
    assert Settings.from_env({}).bluesky_appview_url == "https://public.api.bsky.app"
    assert TOKEN not in repr(XReader("http://h", TOKEN))


def test_status_shows_the_days_x_spend(
    wh: EmbeddedWarehouse, server: FakeRereadServer, tmp_path: Path
) -> None:
    from musicnft.adapters.local_lake import LocalLake
    from musicnft.app.status import collect_status, format_status

    seed(wh, server, n_bsky=0, n_x=40)
    bsky, x = readers(server, [])
    now = datetime.now(UTC)
    # posts created just over an hour ago, read now within a $0.10 budget (20 posts)
    posts = [
        post(f"x:{1000 + i}", ["nft"]) | {"created_at": now - timedelta(hours=1, minutes=1)}
        for i in range(40)
    ]
    w = window_start(posts[0]["created_at"])
    wh.replace_partition(
        "posts",
        window_key(w),
        pa.Table.from_pylist([p | {"window_start": w} for p in posts], schema=TABLES["posts"]),
    )
    assert run_rereads(wh, now, bsky, x, PRICE, 0.10).read == {"x 1h": 20}
    settings = Settings(data_dir=tmp_path / "data", x_reread_budget_usd=0.10)
    status = collect_status(settings, LocalLake(tmp_path / "lake"), wh)
    assert status["x_reread_posts_today"] == 20
    assert status["x_reread_spend_usd_today"] == pytest.approx(0.10)
    assert "X engagement re-reads today: 20 posts, $0.10 of $0.10 a day" in format_status(status)
