"""The scorer's counters reach CloudWatch as metrics: the Lambda prints one Embedded Metric Format
line per invocation in which they moved (SentimentFallbackRows counts posts left with VADER only
because the SageMaker endpoint failed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from musicnft.hotpath import model_scoring
from musicnft.hotpath.scoring_metrics import NAMESPACE, counter_delta, emf_line
from musicnft.local.consumer_loop import load_handler_module
from tests.model.test_hot_path_scoring import TOY, kinesis_event, posts
from tests.support.fake_sagemaker import FakeSageMaker


def test_only_counters_that_moved_are_exported() -> None:
    before = {"endpoint_calls": 2, "endpoint_failures": 1, "fallback_rows": 100, "scored": 9}
    now = {"endpoint_calls": 5, "endpoint_failures": 1, "fallback_rows": 150, "scored": 90}
    assert counter_delta(now, before) == {"endpoint_calls": 3, "fallback_rows": 50}
    assert counter_delta(now, now) == {}
    assert emf_line({}, "fn", 0) is None


def test_the_line_is_valid_embedded_metric_format() -> None:
    line = emf_line({"fallback_rows": 50, "endpoint_failures": 1}, "musicnft-consumer", 1_700_000)
    assert line is not None and "\n" not in line
    doc = json.loads(line)
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert doc["_aws"]["Timestamp"] == 1_700_000
    assert directive["Namespace"] == NAMESPACE
    # every dimension and metric the directive names is a top-level member of the line
    assert all(doc[d] == "musicnft-consumer" for d in directive["Dimensions"][0])
    names = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert names == {"SentimentFallbackRows": "Count", "SentimentEndpointFailures": "Count"}
    assert doc["SentimentFallbackRows"] == 50 and doc["SentimentEndpointFailures"] == 1


def _emf_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in text.splitlines() if x.startswith('{"_aws"')]


def test_the_lambda_prints_the_fallback_rows_of_each_invocation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "musicnft-consumer-test",
        "MUSICNFT_DATA_DIR": str(tmp_path),
        "MUSICNFT_SENTIMENT_ENDPOINT_TIMEOUT_SECONDS": "0.3",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MUSICNFT_PROFILE", raising=False)
    with FakeSageMaker(TOY) as fake:
        monkeypatch.setenv("MUSICNFT_SENTIMENT_ENDPOINT", fake.endpoint)
        monkeypatch.setenv("MUSICNFT_SAGEMAKER_ENDPOINT_URL", fake.url)
        handler = load_handler_module()
        handler._warehouse.cache_clear()
        try:
            fake.mode = "error"
            answer = handler.kinesis_handler(kinesis_event(posts(150, "good {i}")), None)
            failing = _emf_lines(capsys.readouterr().out)
            fake.mode = "ok"
            handler.kinesis_handler(kinesis_event(posts(30, "good again {i}")), None)
            healthy = _emf_lines(capsys.readouterr().out)
        finally:
            handler._warehouse.cache_clear()
            model_scoring.install(None)
    assert answer == {"batchItemFailures": []}
    assert len(failing) == 1
    assert failing[0]["SentimentFallbackRows"] == 150
    assert failing[0]["SentimentEndpointFailures"] == 2
    assert failing[0]["FunctionName"] == "musicnft-consumer-test"
    assert len(healthy) == 1 and "SentimentFallbackRows" not in healthy[0]
    assert healthy[0]["SentimentEndpointCalls"] == 1
