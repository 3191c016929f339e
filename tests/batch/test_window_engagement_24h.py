"""Engagement at 24 h in `window_metrics_15m` (issue 18 item 4): `engagement_24h_posts` and
`avg_engagement_24h`, with `engagement_15m`'s definition (replies + reposts + likes + quotes of
the posts read `ok` 24 h after posting), whether the window was materialized before the +24 h
snapshots arrived (the re-read run updates it) or after (the window pipeline fills it), stable on
re-runs, and with every other column of the row left as it was."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.batch import window_pipeline as wp
from musicnft.batch.engagement import BlueskyReader, XReader, refresh_window_metrics, run_rereads
from musicnft.contract.tables import TABLES, WINDOW_METRICS_SCHEMA
from musicnft.contract.windows import window_key, window_start
from tests.support.fake_rereads import TOKEN, FakeRereadServer

CREATED = datetime(2021, 12, 1, 10, 3, tzinfo=UTC)
WINDOW = window_start(CREATED)
AT_1H = CREATED + timedelta(hours=1, minutes=5)
AT_24H = CREATED + timedelta(hours=24, minutes=5)
BUILT = datetime(2021, 12, 1, 10, 20, tzinfo=UTC)
KEYWORDS = ["music", "nft", "eth"]
PRICE = 0.005
N = 12  # Bluesky posts tagged music; post 5 is deleted before it turns 24 h old
LIKES_1H = 1  # every post had one like at +1 h


def bsky_id(i: int) -> str:
    return f"bsky:at://did:plc:author{i % 3}/app.bsky.feed.post/rk{i}"


def post(pid: str, keywords: list[str]) -> dict:
    return {
        "post_id": pid,
        "platform": "bluesky" if pid.startswith("bsky") else "x",
        "created_at": CREATED,
        "ingested_at": CREATED,
        "text": "t",
        "author_id": pid[-3:],
        "matched_keywords": keywords,
        "like_count": 0,
        "schema_version": 1,
        "window_start": WINDOW,
        "sentiment_label": "neutral",
    }


def counts_24h(i: int) -> dict:
    return {"likeCount": 2 * i, "repostCount": 1, "replyCount": 1, "quoteCount": i % 2}


# the 11 posts still there at 24 h: mean of likes + reposts + replies + quotes
EXPECTED_24H = [2 * i + 1 + 1 + i % 2 for i in range(N) if i != 5]
EXPECTED_AVG = sum(EXPECTED_24H) / len(EXPECTED_24H)


@pytest.fixture
def server() -> Iterator[FakeRereadServer]:
    s = FakeRereadServer()
    yield s
    s.close()


@pytest.fixture
def wh(tmp_path: Path) -> EmbeddedWarehouse:
    warehouse = EmbeddedWarehouse(tmp_path / "warehouse")
    posts = [post(bsky_id(i), ["music"]) for i in range(N)]
    posts.append(post("x:77", ["nft"]))  # X re-reads are off (no budget): never read
    warehouse.replace_partition(
        "posts", window_key(WINDOW), pa.Table.from_pylist(posts, schema=TABLES["posts"])
    )
    return warehouse


def readers(server: FakeRereadServer) -> tuple[BlueskyReader, XReader]:
    kw = {"attempts": 2, "backoff": 0.01, "sleep": lambda _: None}
    return BlueskyReader(server.url, **kw), XReader(server.url, TOKEN, **kw)


def read_at(wh: EmbeddedWarehouse, server: FakeRereadServer, now: datetime, age: str):
    for i in range(N):
        uri = bsky_id(i)[5:]
        if age == "1h":
            server.bluesky[uri] = {"likeCount": LIKES_1H}
        elif i == 5:
            server.bluesky.pop(uri, None)  # deleted at the source
        else:
            server.bluesky[uri] = counts_24h(i)
    return run_rereads(wh, now, *readers(server), PRICE, 0)


def metrics(wh: EmbeddedWarehouse) -> dict[str, dict]:
    rows = wh.query("SELECT * FROM window_metrics_15m WHERE window_start = ?", [WINDOW]).to_pylist()
    return {r["keyword"]: r for r in rows}


def assert_filled(rows: dict[str, dict]) -> None:
    assert rows["all"]["engagement_24h_posts"] == 11  # the deleted post is `missing`, not 0
    assert rows["all"]["avg_engagement_24h"] == pytest.approx(EXPECTED_AVG)
    assert rows["music"]["engagement_24h_posts"] == 11
    assert rows["music"]["avg_engagement_24h"] == pytest.approx(EXPECTED_AVG)
    # the X post was never re-read (no budget), and no post matched eth
    for keyword in ("nft", "eth"):
        assert rows[keyword]["engagement_24h_posts"] == 0
        assert rows[keyword]["avg_engagement_24h"] is None


def test_the_columns_are_nullable_and_appended_to_the_schema() -> None:
    names = WINDOW_METRICS_SCHEMA.names
    assert names[-2:] == ["engagement_24h_posts", "avg_engagement_24h"]
    assert all(WINDOW_METRICS_SCHEMA.field(n).nullable for n in names[-2:])
    # engagement_15m is a contract: it keeps its columns
    assert TABLES["engagement_15m"].names == [
        "window_start", "keyword", "post_count", "read_1h", "engagement_1h", "read_24h",
        "engagement_24h", "updated_at",
    ]  # fmt: skip


def test_a_window_materialized_before_the_24h_snapshots_gets_them_from_the_reread(
    wh: EmbeddedWarehouse, server: FakeRereadServer
) -> None:
    # GIVEN the window materialized while its posts were minutes old
    wp.build_aggregate(wh, "window_metrics_15m", WINDOW, KEYWORDS, now=BUILT)
    before = metrics(wh)
    assert before["all"]["engagement_24h_posts"] == 0
    assert before["all"]["avg_engagement_24h"] is None
    # WHEN the +1 h re-read runs, THEN the 24 h columns stay empty and nothing is rewritten
    first = read_at(wh, server, AT_1H, "1h")
    assert first.read == {"bluesky 1h": N} and first.metrics_updated == set()
    assert metrics(wh) == before
    # WHEN the +24 h re-read runs, THEN the window's rows get engagement at 24 h
    second = read_at(wh, server, AT_24H, "24h")
    assert second.read == {"bluesky 24h": N} and second.metrics_updated == {WINDOW}
    after = metrics(wh)
    assert_filled(after)
    # every other column is as the window pipeline wrote it (updated_at too: the deletion pass
    # reads it as the time the window's posts were last counted)
    for keyword, row in after.items():
        for column in WINDOW_METRICS_SCHEMA.names[:-2]:
            assert row[column] == before[keyword][column], (keyword, column)
    assert after["all"]["updated_at"] == BUILT
    # engagement_15m agrees: same posts, same total
    (e15,) = wh.query(
        "SELECT read_24h, engagement_24h FROM engagement_15m WHERE window_start = ? "
        "AND keyword = 'all'",
        [WINDOW],
    ).to_pylist()
    assert e15["read_24h"] == after["all"]["engagement_24h_posts"]
    assert e15["engagement_24h"] == pytest.approx(
        after["all"]["avg_engagement_24h"] * after["all"]["engagement_24h_posts"]
    )
    # WHEN run again, THEN nothing is read, nothing is written, and the values stay
    again = read_at(wh, server, AT_24H + timedelta(minutes=15), "24h")
    assert again.read == {} and again.metrics_updated == set()
    assert refresh_window_metrics(wh, WINDOW) is False
    assert metrics(wh) == after


def test_a_window_materialized_after_the_24h_snapshots_includes_them(
    wh: EmbeddedWarehouse, server: FakeRereadServer
) -> None:
    # GIVEN the re-reads ran before the window was ever materialized (a late file, a backfill)
    read_at(wh, server, AT_1H, "1h")
    result = read_at(wh, server, AT_24H, "24h")
    assert result.metrics_updated == set()  # no window rows yet: the pipeline's to write
    assert metrics(wh) == {}
    # WHEN the window pipeline materializes it, THEN the columns are filled
    wp.build_aggregate(wh, "window_metrics_15m", WINDOW, KEYWORDS, now=BUILT)
    first = metrics(wh)
    assert_filled(first)
    # WHEN it is materialized again (and the re-read asset runs), THEN the values are the same
    later = BUILT + timedelta(days=1)
    wp.build_aggregate(wh, "window_metrics_15m", WINDOW, KEYWORDS, now=later)
    assert refresh_window_metrics(wh, WINDOW) is False
    second = metrics(wh)
    assert_filled(second)
    for keyword in first:
        for column in ("engagement_24h_posts", "avg_engagement_24h", "post_count"):
            assert second[keyword][column] == first[keyword][column]


def test_the_1h_reading_alone_leaves_the_24h_columns_empty(
    wh: EmbeddedWarehouse, server: FakeRereadServer
) -> None:
    read_at(wh, server, AT_1H, "1h")
    wp.build_aggregate(wh, "window_metrics_15m", WINDOW, KEYWORDS, now=BUILT)
    rows = metrics(wh)
    assert rows["all"]["post_count"] == N + 1
    assert rows["all"]["engagement_24h_posts"] == 0
    assert rows["all"]["avg_engagement_24h"] is None


def test_a_run_that_stopped_before_updating_the_window_is_caught_up_by_the_next(
    wh: EmbeddedWarehouse, server: FakeRereadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from musicnft.batch import engagement

    wp.build_aggregate(wh, "window_metrics_15m", WINDOW, KEYWORDS, now=BUILT)
    # GIVEN a +24 h run that stored its snapshots and stopped before updating window_metrics
    monkeypatch.setattr(engagement, "refresh_window_metrics", lambda wh, window: False)
    assert read_at(wh, server, AT_24H, "24h").read == {"bluesky 24h": N}
    monkeypatch.undo()
    assert metrics(wh)["all"]["engagement_24h_posts"] == 0
    # WHEN the next run comes (nothing left to read), THEN it updates the window
    caught_up = read_at(wh, server, AT_24H + timedelta(minutes=15), "24h")
    assert caught_up.read == {} and caught_up.metrics_updated == {WINDOW}
    assert_filled(metrics(wh))
    # AND once the snapshots are older than the lookback, runs no longer look at the window
    later = read_at(wh, server, AT_24H + engagement.REFRESH_LOOKBACK * 2, "24h")
    assert later.metrics_updated == set()
    assert engagement.recent_24h_windows(wh, AT_24H + engagement.REFRESH_LOOKBACK * 2) == set()
