"""The Looker Studio views: checked-in SQL in sync, and every view's numbers on a known fixture.

The views run on the local BigQuery emulator over tables created with the same DDL as BigQuery
(`bigquery_ddl.table_ddl`), filled with hand-made rows whose answers are worked out below by hand:
weighted averages must weight by posts (not average the averages), top posts must rank and link
as the dashboard does, and freshness must ignore windows without posts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from dashboard.queries import post_url
from musicnft.adapters.bigquery import ddl as bigquery_ddl
from musicnft.adapters.bigquery.looker_views import DESCRIPTIONS, VIEWS, render_views, view_ddl
from musicnft.contract.tables import TABLES
from musicnft.devtools.bq_emulator import PROJECT, bigquery_emulator

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DATASET = "looker_ds"

NOW = datetime.now(UTC).replace(microsecond=0)
W1 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
W2 = datetime(2024, 5, 1, 10, 15, tzinfo=UTC)
W3 = datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
W4 = datetime(2024, 5, 2, 9, 0, tzinfo=UTC)  # written by the schedule, but no posts
UPDATED = {
    W1: NOW - timedelta(hours=3),
    W2: NOW - timedelta(hours=2),
    W3: NOW - timedelta(minutes=10),
    W4: NOW - timedelta(minutes=1),
}
# window -> keyword -> (posts, avg_followers, avg_sentiment, pos, neu, neg, engagement, repost_share)
METRICS: dict[datetime, dict[str, tuple[Any, ...]]] = {
    W1: {
        "all": (10, 100.0, 0.2, 5, 3, 2, 20, 0.1),
        "music": (4, 80.0, 0.5, 3, 1, 0, 8, 0.25),
        "nft": (6, None, None, 2, 2, 2, 12, 0.0),
    },
    W2: {
        "all": (20, 400.0, -0.1, 6, 6, 8, 10, 0.5),
        "music": (0, None, None, 0, 0, 0, 0, None),
        "nft": (20, 400.0, -0.1, 6, 6, 8, 10, 0.5),
    },
    W3: {
        "all": (30, 200.0, 0.3, 20, 5, 5, 30, 0.2),
        "music": (30, 200.0, 0.3, 20, 5, 5, 30, 0.2),
        "nft": (0, None, None, 0, 0, 0, 0, None),
    },
    W4: {kw: (0, None, None, 0, 0, 0, 0, None) for kw in ("all", "music", "nft")},
}
HASHTAGS = {W1: {"nft": 8, "music": 5}, W2: {"nft": 12, "web3": 3}, W3: {"opensea": 7}}
LOCATIONS = {W1: {"Berlin": 3, "Lagos": 2}, W3: {"Berlin": 4, "Seoul": 1}}
BSKY = "bsky:at://did:plc:abc/app.bsky.feed.post/3k2"
# post_id, handle, window, (reply, repost, like, quote), followers, engagement_rate, keywords
POSTS: list[tuple[Any, ...]] = [
    ("x:1", "alice", W1, (1, 0, 5, 0), 100, 6.0, ["music"]),
    ("x:2", "bob", W1, (0, 0, 10, 0), 1000, 1.0, ["nft"]),
    ("x:4", None, W2, (0, 2, 3, 1), 50, 12.0, ["nft", "music"]),
    (BSKY, "carol.bsky.social", W3, (0, 0, 7, 0), None, None, ["music"]),
    ("replay:9", "eve", W3, (None, None, None, None), 10, None, []),
]
# window -> (lake_count, hot_count, missing, duplicates, repaired, checked_at)
RECONCILIATION = {
    W1: (10, 11, 1, 2, 3, NOW - timedelta(hours=3)),
    W2: (20, 20, 0, 0, 0, NOW - timedelta(hours=2)),
    W3: (30, 28, 2, 0, 1, NOW - timedelta(minutes=9)),
}


def _ts(t: datetime) -> str:
    return t.isoformat()


def _metric_rows() -> list[dict[str, Any]]:
    rows = []
    for window, by_keyword in METRICS.items():
        for kw, (n, fol, sent, pos, neu, neg, eng, rs) in by_keyword.items():
            rows.append(
                {
                    "window_start": _ts(window),
                    "keyword": kw,
                    "post_count": n,
                    "unique_authors": max(n - 1, 0),
                    "avg_followers": fol,
                    "avg_sentiment": sent,
                    "positive_count": pos,
                    "neutral_count": neu,
                    "negative_count": neg,
                    "total_engagement": eng,
                    "avg_engagement_rate": None if n == 0 else 2.5,
                    "repost_share": rs,
                    "updated_at": _ts(UPDATED[window]),
                }
            )
    return rows


def _post_rows() -> list[dict[str, Any]]:
    rows = []
    for pid, handle, window, (reply, repost, like, quote), followers, rate, kws in POSTS:
        rows.append(
            {
                "post_id": pid,
                "platform": pid.split(":")[0].replace("bsky", "bluesky"),
                "created_at": _ts(window + timedelta(minutes=3)),
                "ingested_at": _ts(window + timedelta(minutes=4)),
                "text": f"post {pid}",
                "author_handle": handle,
                "author_followers": followers,
                "reply_count": reply,
                "repost_count": repost,
                "like_count": like,
                "quote_count": quote,
                "hashtags": ["nft"],
                "matched_keywords": kws,
                "schema_version": 1,
                "sentiment_compound": 0.5,
                "sentiment_label": "positive",
                "engagement_rate": rate,
                "window_start": _ts(window),
            }
        )
    return rows


FIXTURE: dict[str, list[dict[str, Any]]] = {
    "window_metrics_15m": _metric_rows(),
    "hashtag_counts_15m": [
        {"window_start": _ts(w), "hashtag": tag, "post_count": n}
        for w, tags in HASHTAGS.items()
        for tag, n in tags.items()
    ],
    "location_counts_15m": [
        {"window_start": _ts(w), "location": loc, "post_count": n}
        for w, locs in LOCATIONS.items()
        for loc, n in locs.items()
    ],
    "posts": _post_rows(),
    "reconciliation_15m": [
        {
            "window_start": _ts(w),
            "lake_count": lake,
            "hot_count": hot,
            "missing": missing,
            "duplicates": dup,
            "repaired": repaired,
            "checked_at": _ts(checked),
        }
        for w, (lake, hot, missing, dup, repaired, checked) in RECONCILIATION.items()
    ],
}


def test_checked_in_sql_matches_render() -> None:
    checked_in = (ROOT / "infra" / "bigquery" / "looker_views.sql").read_text()
    assert checked_in == render_views(), (
        "infra/bigquery/looker_views.sql is stale: regenerate it from render_views()"
    )


def test_render_shape() -> None:
    assert set(VIEWS) == set(DESCRIPTIONS)
    assert all(name.startswith("looker_") for name in VIEWS)
    text = render_views("ds")
    assert text.startswith("-- Generated by `musicnft bigquery ddl`")
    statements = [s for s in text.split(";\n") if s.strip()]
    assert len(statements) == len(VIEWS)
    for name in VIEWS:
        assert f"CREATE OR REPLACE VIEW `ds.{name}`" in text
        assert "{dataset}" not in view_ddl(name, "ds")


@pytest.fixture(scope="module")
def client() -> Iterator[bigquery.Client]:
    with bigquery_emulator() as endpoint:
        bq = bigquery.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=endpoint),
        )
        bq.create_dataset(DATASET, exists_ok=True)
        for table in TABLES:
            run(bq, bigquery_ddl.table_ddl(table, DATASET))
        for table, rows in FIXTURE.items():
            errors = bq.insert_rows_json(f"{PROJECT}.{DATASET}.{table}", rows)
            assert not errors, errors
            # The emulator never reports row errors: check every row landed.
            assert query(bq, f"SELECT COUNT(*) AS n FROM {table}") == [{"n": len(rows)}]
        for _ in range(2):  # applying the views again must be harmless
            for name in VIEWS:
                run(bq, view_ddl(name, DATASET))
        yield bq


def run(bq: bigquery.Client, sql: str) -> None:
    config = bigquery.QueryJobConfig(default_dataset=f"{PROJECT}.{DATASET}")
    bq.query(sql, job_config=config).result()


def query(bq: bigquery.Client, sql: str) -> list[dict[str, Any]]:
    config = bigquery.QueryJobConfig(default_dataset=f"{PROJECT}.{DATASET}")
    job = bq.query(sql, job_config=config)
    return job.result().to_arrow(create_bqstorage_client=False).to_pylist()


def test_views_exist_once(client: bigquery.Client) -> None:
    names = [t.table_id for t in client.list_tables(DATASET)]
    assert sorted(n for n in names if n.startswith("looker_")) == sorted(VIEWS)


def test_window_metrics(client: bigquery.Client) -> None:
    rows = query(
        client,
        "SELECT * FROM looker_window_metrics WHERE window_start < TIMESTAMP '2024-05-01 10:30:00' "
        "ORDER BY window_start, keyword",
    )
    assert [(r["window_start"], r["keyword"]) for r in rows] == [
        (w, kw) for w in (W1, W2) for kw in ("all", "music", "nft")
    ]
    music = rows[1]
    assert music["hour"] == W1 and music["day"] == date(2024, 5, 1)
    assert (music["posts"], music["positive"], music["neutral"], music["negative"]) == (4, 3, 1, 0)
    assert music["positive_share"] == pytest.approx(0.75)
    assert music["neutral_share"] == pytest.approx(0.25)
    assert music["negative_share"] == pytest.approx(0.0)
    assert music["engagement"] == 8 and music["reposts"] == 1
    assert music["followers_sum"] == pytest.approx(320.0) and music["followers_weight"] == 4
    assert music["sentiment_sum"] == pytest.approx(2.0) and music["sentiment_weight"] == 4
    assert music["updated_at"] == UPDATED[W1]
    nft_w1 = rows[2]  # posts but no known followers or sentiment: weight 0, not 6
    assert nft_w1["followers_sum"] is None and nft_w1["followers_weight"] == 0
    assert nft_w1["sentiment_sum"] is None and nft_w1["sentiment_weight"] == 0
    music_w2 = rows[4]  # no posts: shares unknown rather than a division error
    assert music_w2["posts"] == 0 and music_w2["positive_share"] is None


def test_weighted_average_reaggregates(client: bigquery.Client) -> None:
    """What a Looker scorecard computes: SUM(sentiment_sum) / SUM(sentiment_weight)."""
    for view in ("looker_window_metrics", "looker_hourly"):
        row = query(
            client,
            "SELECT SUM(posts) AS posts, SUM(sentiment_sum) / SUM(sentiment_weight) AS sentiment, "
            f"SUM(followers_sum) / SUM(followers_weight) AS followers FROM {view} "
            "WHERE keyword = 'all'",
        )[0]
        # (0.2*10 - 0.1*20 + 0.3*30) / 60 and (100*10 + 400*20 + 200*30) / 60
        assert row["posts"] == 60
        assert row["sentiment"] == pytest.approx(0.15)
        assert row["followers"] == pytest.approx(250.0)


def test_hourly(client: bigquery.Client) -> None:
    rows = query(client, "SELECT * FROM looker_hourly ORDER BY hour, keyword")
    by_key = {(r["hour"], r["keyword"]): r for r in rows}
    h10, h11, next_day = W1, W3, W4
    assert set(by_key) == {(h, kw) for h in (h10, h11, next_day) for kw in ("all", "music", "nft")}

    all10 = by_key[(h10, "all")]
    assert all10["day"] == date(2024, 5, 1)
    assert (all10["window_count"], all10["first_window"], all10["last_window"]) == (2, W1, W2)
    assert (all10["posts"], all10["positive"], all10["neutral"], all10["negative"]) == (
        30,
        11,
        9,
        10,
    )
    assert all10["engagement"] == 30 and all10["reposts"] == 11  # 0.1*10 + 0.5*20
    assert all10["avg_sentiment"] == pytest.approx(0.0)  # (0.2*10 - 0.1*20) / 30
    assert all10["avg_followers"] == pytest.approx(300.0)  # (100*10 + 400*20) / 30
    assert all10["positive_share"] == pytest.approx(11 / 30)
    assert all10["updated_at"] == UPDATED[W2]

    # nft's first window has posts but no averages: weighted over the 20 posts that have them.
    nft10 = by_key[(h10, "nft")]
    assert nft10["posts"] == 26
    assert nft10["followers_weight"] == 20 and nft10["avg_followers"] == pytest.approx(400.0)
    assert nft10["sentiment_weight"] == 20 and nft10["avg_sentiment"] == pytest.approx(-0.1)

    music10 = by_key[(h10, "music")]
    assert (music10["posts"], music10["avg_sentiment"]) == (4, pytest.approx(0.5))
    assert (music10["first_window"], music10["last_window"]) == (W1, W1)

    assert by_key[(h11, "all")]["avg_sentiment"] == pytest.approx(0.3)
    empty = by_key[(next_day, "all")]
    assert (empty["posts"], empty["window_count"], empty["first_window"]) == (0, 1, None)
    assert empty["avg_sentiment"] is None and empty["avg_followers"] is None
    assert empty["day"] == date(2024, 5, 2)


def test_sentiment_rows(client: bigquery.Client) -> None:
    rows = query(
        client,
        "SELECT sentiment, MIN(sentiment_order) AS sentiment_order, SUM(posts) AS posts "
        "FROM looker_sentiment WHERE keyword = 'all' GROUP BY 1 ORDER BY 2",
    )
    assert rows == [  # 5+6+20, 3+6+5, 2+8+5
        {"sentiment": "positive", "sentiment_order": 1, "posts": 31},
        {"sentiment": "neutral", "sentiment_order": 2, "posts": 14},
        {"sentiment": "negative", "sentiment_order": 3, "posts": 15},
    ]
    count = query(client, "SELECT COUNT(*) AS n FROM looker_sentiment")
    assert count == [{"n": 3 * len(FIXTURE["window_metrics_15m"])}]
    w1_music = query(
        client,
        "SELECT sentiment, posts, hour FROM looker_sentiment WHERE keyword = 'music' "
        "AND window_start = TIMESTAMP '2024-05-01 10:00:00' ORDER BY sentiment_order",
    )
    assert [(r["sentiment"], r["posts"], r["hour"]) for r in w1_music] == [
        ("positive", 3, W1),
        ("neutral", 1, W1),
        ("negative", 0, W1),
    ]


def test_hashtags_and_locations(client: bigquery.Client) -> None:
    tags = query(
        client,
        "SELECT hashtag, MIN(hashtag_label) AS label, SUM(posts) AS posts FROM looker_hashtags "
        "WHERE window_start >= TIMESTAMP '2024-05-01 10:00:00' "
        "AND window_start < TIMESTAMP '2024-05-01 11:00:00' GROUP BY 1 ORDER BY 3 DESC, 1",
    )
    assert tags == [
        {"hashtag": "nft", "label": "#nft", "posts": 20},
        {"hashtag": "music", "label": "#music", "posts": 5},
        {"hashtag": "web3", "label": "#web3", "posts": 3},
    ]
    locations = query(
        client,
        "SELECT location, SUM(posts) AS posts FROM looker_locations GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    assert locations == [
        {"location": "Berlin", "posts": 7},
        {"location": "Lagos", "posts": 2},
        {"location": "Seoul", "posts": 1},
    ]
    seoul = query(client, "SELECT hour, day FROM looker_locations WHERE location = 'Seoul'")
    assert seoul == [{"hour": W3, "day": date(2024, 5, 1)}]


def top_posts(client: bigquery.Client, keyword: str) -> list[dict[str, Any]]:
    return query(
        client,
        "SELECT post_id, author_handle, engagement, engagement_rate, url, keywords, likes, "
        f"replies, reposts, quotes FROM looker_top_posts WHERE keyword = '{keyword}' "
        "ORDER BY engagement DESC, engagement_rate DESC NULLS LAST, post_id",
    )


def test_top_posts(client: bigquery.Client) -> None:
    everything = top_posts(client, "all")
    # engagement = reply + repost + like + quote; ties broken by engagement rate
    assert [(r["post_id"], r["engagement"]) for r in everything] == [
        ("x:2", 10),
        (BSKY, 7),
        ("x:4", 6),
        ("x:1", 6),
        ("replay:9", 0),
    ]
    for row in everything:
        assert row["url"] == post_url(row["post_id"], row["author_handle"])
    urls = {r["post_id"]: r["url"] for r in everything}
    assert urls == {
        "x:2": "https://x.com/bob/status/2",
        BSKY: "https://bsky.app/profile/did:plc:abc/post/3k2",
        "x:4": "https://x.com/i/web/status/4",
        "x:1": "https://x.com/alice/status/1",
        "replay:9": None,
    }
    x4 = everything[2]
    assert (x4["replies"], x4["reposts"], x4["likes"], x4["quotes"]) == (0, 2, 3, 1)
    assert x4["keywords"] == "nft, music" and x4["engagement_rate"] == pytest.approx(12.0)
    assert everything[4]["likes"] == 0  # NULL counts read as 0

    assert [r["post_id"] for r in top_posts(client, "music")] == [BSKY, "x:4", "x:1"]
    assert [r["post_id"] for r in top_posts(client, "nft")] == ["x:2", "x:4"]
    total = query(client, "SELECT COUNT(*) AS n FROM looker_top_posts")
    assert total == [{"n": 5 + 1 + 1 + 2 + 1}]  # once for 'all', once per matched keyword


def test_freshness(client: bigquery.Client) -> None:
    # The fixture's times are relative to when the module was imported; the view compares them
    # with the query's own clock, so the expectation is bracketed by the time around the query.
    before = datetime.now(UTC)
    rows = query(client, "SELECT * FROM looker_freshness")
    after = datetime.now(UTC)
    assert len(rows) == 1
    row = rows[0]
    # W4 was written later but holds no posts: it neither updates nor extends the coverage.
    assert row["last_updated"] == UPDATED[W3]
    assert (row["first_window"], row["last_window"]) == (W1, W3)
    age_before, age_after = (t - UPDATED[W3] for t in (before, after))
    assert age_before // timedelta(minutes=1) <= row["minutes_since_update"]
    # (+1: the emulator's DuckDB counts minute boundaries crossed; BigQuery counts whole minutes)
    assert row["minutes_since_update"] <= age_after // timedelta(minutes=1) + 1
    # (the view compares whole seconds, and a second boundary can fall between the query's
    # CURRENT_TIMESTAMP and `before`: within a second of 20 minutes either answer is right)
    if age_after <= timedelta(minutes=20):
        assert row["freshness"] == "fresh"
    elif age_before > timedelta(minutes=20, seconds=1):
        assert row["freshness"] == "stale"
    assert row["windows_checked"] == 3 and row["windows_with_gaps"] == 2
    assert row["last_checked_at"] == RECONCILIATION[W3][5]
    assert (row["lake_posts"], row["hot_posts"]) == (60, 59)
    assert (row["missing_total"], row["duplicates_total"], row["repaired_total"]) == (3, 2, 4)
    assert row["unrepaired_total"] == 1  # W3: 2 missing, 1 repaired
    assert row["reconciliation_status"] == "unrepaired"
