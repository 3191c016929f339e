"""Spike alerts against a local fake webhook (http.server in a thread): retries, one alert per
window and key, never twice, and the URL never in the logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from musicnft.adapters.local_lake import LocalLake
from musicnft.batch.alerts import PREFIX, SpikeAlerter
from tests.support.fake_webhook import SECRET_PATH, FakeWebhook

WINDOW = datetime(2021, 12, 1, 6, 15, tzinfo=UTC)


@pytest.fixture
def hook() -> Iterator[FakeWebhook]:
    h = FakeWebhook()
    yield h
    h.close()


def spike(key: str, is_spike: bool = True, dimension: str = "entity") -> dict:
    return {
        "window_start": WINDOW,
        "dimension": dimension,
        "key": key,
        "post_count": 50,
        "baseline": 10.0,
        "score": 12.6,
        "is_spike": is_spike,
    }


def alerter(lake: LocalLake, url: str, sleeps: list[float] | None = None) -> SpikeAlerter:
    record = sleeps if sleeps is not None else []
    return SpikeAlerter(lake, url, attempts=4, backoff=0.5, timeout=5, sleep=record.append)


def test_one_alert_per_spike_with_its_posts_and_never_twice(
    hook: FakeWebhook, tmp_path: Path
) -> None:
    lake = LocalLake(tmp_path / "lake")
    rows = [spike("bayc"), spike("bts", is_spike=False), spike("nft", dimension="hashtag")]
    posts = [{"author_handle": "ana", "text": "BAYC x Kingship\nis here"}]
    result = alerter(lake, hook.url).send(rows, lambda s: posts)
    assert result.sent == ["entity:bayc@2021-12-01-06:15", "hashtag:nft@2021-12-01-06:15"]
    assert len(hook.bodies) == 2
    text = hook.bodies[0]["text"]
    assert "`bayc`" in text and "50 posts" in text and "@ana: BAYC x Kingship is here" in text
    # WHEN the window runs again (a re-run, a retry, a backfill) and in a new process
    again = alerter(LocalLake(tmp_path / "lake"), hook.url).send(rows)
    # THEN nothing is sent twice
    assert again.sent == [] and len(again.skipped) == 2
    assert len(hook.bodies) == 2
    entries = [json.loads(lake.get(k)) for k in lake.list(PREFIX)]
    assert sorted(e["status"] for e in entries) == ["sent", "sent"]


def test_retries_5xx_and_429_then_delivers_once(hook: FakeWebhook, tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    hook.script = [500, 429, 503]
    hook.headers[429] = {"Retry-After": "3"}
    sleeps: list[float] = []
    result = alerter(lake, hook.url, sleeps).send([spike("bayc")])
    assert result.sent == ["entity:bayc@2021-12-01-06:15"]
    assert len(hook.bodies) == 4  # three refusals, then the delivery
    assert sleeps == [0.5, 3.0, 2.0]  # exponential backoff; Retry-After honoured
    (entry,) = [json.loads(lake.get(k)) for k in lake.list(PREFIX)]
    assert entry["status"] == "sent" and entry["attempts"] == 4


def test_refused_alert_is_retried_by_a_later_run_but_a_client_error_is_not_looped(
    hook: FakeWebhook, tmp_path: Path
) -> None:
    lake = LocalLake(tmp_path / "lake")
    hook.script = [500, 500, 500, 500]
    first = alerter(lake, hook.url).send([spike("bayc")])
    assert first.failed and not first.sent and len(hook.bodies) == 4
    # every attempt was answered with an error: nothing was delivered, so the next run tries again
    second = alerter(lake, hook.url).send([spike("bayc")])
    assert second.sent and len(hook.bodies) == 5
    # a 4xx other than 429 is not retried within the run
    hook.script = [404]
    third = alerter(lake, hook.url).send([spike("umg")])
    assert third.failed and len(hook.bodies) == 6


def test_unanswered_alert_is_never_resent_and_the_url_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake = LocalLake(tmp_path / "lake")
    # a port nobody listens on: connection refused, no answer
    dead = f"http://127.0.0.1:9{SECRET_PATH}"
    caplog.set_level(logging.DEBUG)
    first = alerter(lake, dead).send([spike("bayc")])
    assert first.failed
    (entry,) = [json.loads(lake.get(k)) for k in lake.list(PREFIX)]
    assert entry["status"] == "unknown"
    assert alerter(lake, dead).send([spike("bayc")]).skipped  # never a second post
    assert "SeCrEtToKeN" not in caplog.text
    assert "SeCrEtToKeN" not in json.dumps(entry)
    assert "SeCrEtToKeN" not in repr(alerter(lake, dead))
