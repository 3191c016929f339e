"""Each dashboard panel's query on fixture tables with known answers, on both warehouses: the
same fixture written through the port to the embedded warehouse and to BigQuery (the emulator)
must give the same numbers, because the queries are the same."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dashboard import queries as q
from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from tests.support import dashboard_fixture as fx

DAY1 = (datetime(2021, 12, 1, tzinfo=UTC), datetime(2021, 12, 2, tzinfo=UTC))
BOTH = (datetime(2021, 12, 1, tzinfo=UTC), datetime(2021, 12, 3, tzinfo=UTC))


@pytest.fixture(
    scope="module", params=["embedded", pytest.param("bigquery", marks=pytest.mark.slow)]
)
def wh(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if request.param == "embedded":
        return fx.build(tmp_path_factory.mktemp("dash") / "warehouse")
    from tests.support.bq import fresh_warehouse

    return fx.fill(fresh_warehouse(request.getfixturevalue("bq_endpoint"), "dash"))


def test_summary_day_one(wh: EmbeddedWarehouse) -> None:
    s = q.summary(wh, *DAY1)
    assert s.total_posts == 60
    assert s.posts_per_hour == pytest.approx(60 / 1.25)  # 10:00 to the end of 11:00's window
    assert s.avg_followers == pytest.approx(250.0)  # (10*100 + 20*400 + 30*200) / 60
    assert s.avg_sentiment == pytest.approx(0.15)  # (2 - 2 + 9) / 60
    assert (s.positive, s.neutral, s.negative) == (31, 14, 15)
    assert s.total_engagement == 60
    assert (s.first_window, s.last_window) == (fx.W1, fx.W3)


def test_summary_both_days_and_per_keyword(wh: EmbeddedWarehouse) -> None:
    s = q.summary(wh, *BOTH)
    assert s.total_posts == 100
    assert s.posts_per_hour == pytest.approx(100 / 23.25)
    assert s.avg_followers == pytest.approx(170.0)
    assert s.avg_sentiment == pytest.approx(0.09)
    music = q.summary(wh, *BOTH, keyword="music")
    assert music.total_posts == 10
    assert music.avg_followers == pytest.approx((4 * 80 + 6 * 10) / 10)
    assert (music.positive, music.neutral, music.negative) == (5, 5, 0)
    empty = q.summary(wh, datetime(2022, 1, 1, tzinfo=UTC), datetime(2022, 1, 2, tzinfo=UTC))
    assert (empty.total_posts, empty.posts_per_hour, empty.avg_sentiment) == (0, 0.0, None)


def test_hourly_posts_and_sentiment(wh: EmbeddedWarehouse) -> None:
    rows = q.hourly(wh, *DAY1)
    assert [
        (r["hour"].hour, r["posts"], r["positive"], r["neutral"], r["negative"]) for r in rows
    ] == [
        (10, 30, 11, 9, 10),
        (11, 30, 20, 5, 5),
    ]


def test_keyword_volume(wh: EmbeddedWarehouse) -> None:
    rows = q.keyword_volume(wh, *DAY1)
    assert [(r["hour"].hour, r["keyword"], r["posts"]) for r in rows] == [
        (10, "music", 4),
        (10, "nft", 15),
        (11, "music", 6),
    ]
    # the page's DataFrame holds the same rows, made from Arrow in one step
    frame = q.keyword_volume_frame(wh, *DAY1)
    assert list(frame.columns) == ["hour", "keyword", "posts"]
    assert [(h.hour, k, p) for h, k, p in frame.itertuples(index=False)] == [
        (r["hour"].hour, r["keyword"], r["posts"]) for r in rows
    ]
    assert str(frame["hour"].dt.tz) in ("UTC", "Etc/UTC")  # aware, in UTC


def test_hashtags_and_locations(wh: EmbeddedWarehouse) -> None:
    assert q.top_hashtags(wh, *DAY1) == [
        {"hashtag": "nft", "posts": 20},
        {"hashtag": "opensea", "posts": 7},
        {"hashtag": "music", "posts": 5},
        {"hashtag": "web3", "posts": 3},
    ]
    assert q.top_hashtags(wh, *BOTH, limit=1) == [{"hashtag": "nft", "posts": 50}]
    assert q.top_locations(wh, *DAY1) == [
        {"location": "Berlin", "posts": 7},
        {"location": "Lagos", "posts": 2},
        {"location": "Seoul", "posts": 1},
    ]


def test_top_posts_with_links(wh: EmbeddedWarehouse) -> None:
    rows = q.top_posts(wh, *DAY1)
    assert [(r["post_id"], r["engagement"]) for r in rows] == [
        ("x:2", 10),
        ("bsky:at://did:plc:abc/app.bsky.feed.post/3k2", 7),
        ("x:1", 6),
    ]
    assert rows[0]["url"] == "https://x.com/bob/status/2"
    assert rows[1]["url"] == "https://bsky.app/profile/did:plc:abc/post/3k2"
    music = q.top_posts(wh, *DAY1, keyword="music")
    assert [r["post_id"] for r in music] == ["bsky:at://did:plc:abc/app.bsky.feed.post/3k2", "x:1"]
    assert q.post_url("replay:9", None) is None


def test_freshness(wh: EmbeddedWarehouse) -> None:
    f = q.freshness(wh)
    assert f.last_updated == fx.UPDATED
    assert (f.first_window, f.last_window) == (fx.W1, fx.W4)
    assert f.keywords == ["music", "nft"]


def test_panels_read_the_aggregates_not_raw_posts() -> None:
    import inspect

    for name in (
        "summary",
        "hourly",
        "keyword_volume",
        "top_hashtags",
        "top_locations",
        "freshness",
    ):
        source = inspect.getsource(getattr(q, name))
        assert "FROM posts" not in source and "posts_hot" not in source, name


def test_empty_warehouse(tmp_path: Path) -> None:
    wh = EmbeddedWarehouse(tmp_path / "empty")
    f = q.freshness(wh)
    assert f.last_window is None and f.keywords == []
    assert q.summary(wh, *DAY1).total_posts == 0
    assert q.top_posts(wh, *DAY1) == []


def test_top_posts_survive_counts_whose_sum_passes_int64(tmp_path: Path) -> None:
    import pyarrow as pa

    from musicnft.contract.tables import POSTS_SCHEMA
    from musicnft.contract.windows import window_key

    # GIVEN posts whose four counters sum past int64 (a hostile or broken source)
    wh = EmbeddedWarehouse(tmp_path / "wh")
    big = 2**62
    rows = [
        {"post_id": "x:huge", "like_count": big, "repost_count": big, "reply_count": big},
        {"post_id": "x:small", "like_count": 3},
    ]
    for r in rows:
        r.update(platform="x", text="t", created_at=fx.W1, ingested_at=fx.W1, window_start=fx.W1)
        r.update(schema_version=1)
    wh.replace_partition(
        "posts", window_key(fx.W1), pa.Table.from_pylist(rows, schema=POSTS_SCHEMA)
    )
    # WHEN the panel asks for the top posts, THEN it answers (capped, ranked) instead of failing
    top = q.top_posts(wh, *DAY1)
    assert [(r["post_id"], r["engagement"]) for r in top] == [
        ("x:huge", 2**63 - 1),
        ("x:small", 3),
    ]
