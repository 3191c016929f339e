"""The hot path's model columns: in process from the promoted artifact, or through the SageMaker
endpoint (a local fake of its runtime API, reached by boto3) in batches, with VADER-only rows,
counted, when the endpoint times out or fails; the batch path then scores those rows."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from musicnft import wiring
from musicnft.adapters.local_lake import LocalLake
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import to_json_record
from musicnft.hotpath import model_scoring
from musicnft.hotpath.consumer import enrich_rows, handle_kinesis_event
from musicnft.hotpath.model_scoring import (
    EndpointScoring,
    InProcessScoring,
    PromotedScoring,
    ScoringStats,
    score_rows,
)
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.hotpath.sentiment_model import SentimentModel
from musicnft.model.artifact import promote, write_artifact
from musicnft.model.gold import load_gold
from musicnft.model.train import TrainConfig, train
from musicnft.settings import DEFAULT_KEYWORDS, Settings
from tests.support.fake_sagemaker import FakeSageMaker
from tests.support.records import x_message

TOY = SentimentModel(
    version="toy-1",
    weights={"w good": (1.0, 0.6), "w bad": (1.0, -0.6)},
    dense_coef=(0.5, 0.0, 0.0, 0.0),
    intercept=0.0,
)
MATCHER = KeywordMatcher(DEFAULT_KEYWORDS)


def posts(n: int, text: str = "good music NFT drop {i}") -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        normalize_x_message(x_message(i, text=text.format(i=i)), MATCHER, now) for i in range(n)
    ]


def kinesis_event(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "kinesis": {
                    "data": base64.b64encode(json.dumps(to_json_record(p)).encode()).decode(),
                    "sequenceNumber": f"{i:021d}",
                    "partitionKey": p["post_id"],
                },
                "eventSource": "aws:kinesis",
            }
            for i, p in enumerate(items)
        ]
    }


class Warehouse:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def insert_rows(self, table: str, rows: Any, row_ids: Any) -> None:
        self.rows.extend(rows)


@pytest.fixture(autouse=True)
def _uninstall():
    yield
    model_scoring.install(None)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def endpoint_settings(fake: FakeSageMaker, timeout: float = 0.5) -> Settings:
    return Settings(
        sentiment_endpoint=fake.endpoint,
        sagemaker_endpoint_url=fake.url,
        sentiment_endpoint_timeout=timeout,
    )


def test_without_a_model_the_columns_stay_null_and_vader_is_untouched() -> None:
    rows = enrich_rows(posts(3))
    assert all(r["model_score"] is None and r["model_label"] is None for r in rows)
    assert all(r["model_version"] is None for r in rows)
    assert all(r["sentiment_label"] is not None for r in rows)


def test_in_process_scoring_fills_the_columns_from_vaders_scores_in_the_row() -> None:
    model_scoring.install(InProcessScoring(TOY))
    batch = posts(2, "good good {i}") + posts(1, "bad bad {i}")
    rows = enrich_rows(batch)
    assert [r["model_label"] for r in rows] == ["positive", "positive", "negative"]
    assert all(r["model_version"] == "toy-1" and -1 <= r["model_score"] <= 1 for r in rows)
    vader_only = [{k: v for k, v in r.items() if not k.startswith("model_")} for r in rows]
    model_scoring.install(None)
    assert vader_only == [
        {k: v for k, v in r.items() if not k.startswith("model_")} for r in enrich_rows(batch)
    ]


def test_the_consumer_scores_with_the_lakes_promoted_model(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    scoring = wiring.model_scoring(Settings(lake_backend="local"), lake)
    assert isinstance(scoring, PromotedScoring)
    assert scoring.score(["good"], [(0.0, 1.0, 0.0, 0.0)]) == [None]  # nothing promoted yet
    result = train(load_gold(), [], TrainConfig(), cv=False)
    _key, card = write_artifact(lake, result, "abc")
    promote(lake, result.model.version, card)
    model_scoring.install(PromotedScoring(lake, recheck_seconds=0))
    warehouse = Warehouse()
    answer = handle_kinesis_event(kinesis_event(posts(5, "what a wonderful song {i}")), warehouse)
    assert answer == {"batchItemFailures": []}
    assert {r["model_version"] for r in warehouse.rows} == {result.model.version}
    assert all(r["model_label"] == "positive" for r in warehouse.rows)


def test_model_scoring_off_and_a_broken_setup_leave_the_columns_null(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert wiring.model_scoring(Settings(sentiment_model="off")) is None
    model_scoring.install(InProcessScoring(TOY))

    def no_lake(settings: Settings) -> None:
        raise RuntimeError("lake unreachable")

    monkeypatch.setattr(wiring, "open_lake", no_lake)
    wiring.install_model_scoring(Settings())  # logs the reason, never stops the consumer
    assert model_scoring.installed() is None
    rows = enrich_rows(posts(1))
    assert rows[0]["sentiment_compound"] is not None and rows[0]["model_score"] is None


def test_endpoint_scores_in_batches_of_100(aws_env: None) -> None:
    with FakeSageMaker(TOY) as fake:
        scoring = wiring.model_scoring(endpoint_settings(fake))
        assert isinstance(scoring, EndpointScoring)
        scoring.stats = ScoringStats()
        model_scoring.install(scoring)
        warehouse = Warehouse()
        handle_kinesis_event(kinesis_event(posts(250, "good {i}")), warehouse)
    assert [len(c["body"]["instances"]) for c in fake.calls] == [100, 100, 50]
    assert all(c["content_type"] == "application/json" for c in fake.calls)
    assert len(warehouse.rows) == 250
    assert all(
        r["model_label"] == "positive" and r["model_version"] == "toy-1" for r in warehouse.rows
    )
    assert scoring.stats.fallback_rows == 0 and scoring.stats.endpoint_calls == 3


@pytest.mark.parametrize("mode", ["slow", "error", "throttle", "malformed"])
def test_endpoint_failures_fall_back_to_vader_only_rows_counted(aws_env: None, mode: str) -> None:
    with FakeSageMaker(TOY) as fake:
        fake.mode = mode
        fake.delay = 2.0
        scoring = wiring.model_scoring(endpoint_settings(fake, timeout=0.3))
        assert isinstance(scoring, EndpointScoring)
        scoring.stats = ScoringStats()
        model_scoring.install(scoring)
        warehouse = Warehouse()
        answer = handle_kinesis_event(kinesis_event(posts(120, "good {i}")), warehouse)
        calls = len(fake.calls)
    assert answer == {"batchItemFailures": []}  # the batch is never failed for the model
    assert len(warehouse.rows) == 120
    assert all(r["model_score"] is None and r["model_version"] is None for r in warehouse.rows)
    assert all(r["sentiment_label"] is not None for r in warehouse.rows)
    assert scoring.stats.fallback_rows == 120 and scoring.stats.endpoint_failures == 2
    assert calls == 2  # one attempt per batch: no SDK retries stretch the Lambda's time


def test_a_slow_endpoint_costs_about_the_timeout_per_batch(aws_env: None) -> None:
    import time

    with FakeSageMaker(TOY) as fake:
        fake.mode, fake.delay = "slow", 3.0
        scoring = wiring.model_scoring(endpoint_settings(fake, timeout=0.3))
        assert isinstance(scoring, EndpointScoring)
        scoring.stats = ScoringStats()
        started = time.monotonic()
        results = scoring.score(["good"] * 10, [(0.0, 1.0, 0.0, 0.0)] * 10)
        elapsed = time.monotonic() - started
    assert results == [None] * 10
    assert elapsed < 2.0


def test_non_text_rows_are_not_sent_and_stay_null(aws_env: None) -> None:
    with FakeSageMaker(TOY) as fake:
        scoring = EndpointScoring(wiring.sagemaker_invoker(endpoint_settings(fake)), fake.endpoint)
        rows = [
            {
                "text": "good",
                "sentiment_neg": 0.0,
                "sentiment_neu": 0.0,
                "sentiment_pos": 1.0,
                "sentiment_compound": 0.4404,
            },
            {"text": None},
        ]
        score_rows(rows, scoring)
    assert [len(c["body"]["instances"]) for c in fake.calls] == [1]
    assert rows[0]["model_label"] == "positive" and rows[1]["model_score"] is None


def test_the_batch_path_rescores_rows_the_hot_path_left_vader_only(tmp_path: Path) -> None:
    """build_posts scores the window's posts from the promoted model, whatever posts_hot got."""
    from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
    from musicnft.batch.backfill import index_lake
    from musicnft.batch.window_pipeline import build_posts, window_posts
    from tests.support.model_lake import build_model_lake

    lake = build_model_lake(tmp_path / "lake", posts_per_file=6, files=1)
    warehouse = EmbeddedWarehouse(tmp_path / "warehouse")
    index_lake(lake, warehouse)
    window = datetime(2021, 12, 1, tzinfo=UTC)
    build_posts(lake, warehouse, window)
    assert {r["model_score"] for r in window_posts(warehouse, window)} == {None}  # no model yet
    result = train(load_gold(), [], TrainConfig(), cv=False)
    _key, card = write_artifact(lake, result, "abc")
    promote(lake, result.model.version, card)
    build_posts(lake, warehouse, window)
    rows = window_posts(warehouse, window)
    assert len(rows) == 6
    assert {r["model_version"] for r in rows} == {result.model.version}
    assert all(-1 <= r["model_score"] <= 1 for r in rows)
    by_text = {r["text"].split(" #")[0]: r["model_label"] for r in rows}
    assert by_text["worst drop ever, refund please, total scam"] == "negative"
    assert by_text["love this track, minted two editions, to the moon"] == "positive"
