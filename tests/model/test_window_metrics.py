"""`avg_model_sentiment` in window_metrics_15m: the mean of the posts' model scores, beside
VADER's avg_sentiment; null when no post of the window has one. In the Arrow schema last (as a
migration adds it) and in the generated BigQuery DDL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from musicnft.batch.aggregates import window_metrics
from musicnft.contract.tables import WINDOW_METRICS_SCHEMA
from tests.support.paths import ROOT

W = datetime(2021, 12, 1, tzinfo=UTC)


def post(i: int, compound: float, model: float | None, keywords: list[str]) -> dict:
    return {
        "post_id": f"x:{i}",
        "author_id": str(i),
        "sentiment_compound": compound,
        "sentiment_label": "positive",
        "model_score": model,
        "matched_keywords": keywords,
    }


def test_model_average_beside_vaders_per_keyword() -> None:
    posts = [
        post(1, 0.5, 0.8, ["nft"]),
        post(2, -0.5, -0.2, ["music"]),
        post(3, 0.1, None, ["nft"]),
    ]
    rows = {r["keyword"]: r for r in window_metrics(posts, W, ["NFT", "music", "ETH"], W)}
    assert rows["all"]["avg_model_sentiment"] == pytest.approx(0.3)
    assert rows["all"]["avg_sentiment"] == pytest.approx(0.1 / 3)
    assert rows["nft"]["avg_model_sentiment"] == pytest.approx(0.8)  # the unscored post is left out
    assert rows["music"]["avg_model_sentiment"] == pytest.approx(-0.2)
    assert rows["eth"]["avg_model_sentiment"] is None


def test_the_column_is_in_the_schema_and_the_bigquery_ddl() -> None:
    # after the original columns, as a migration appends it (engagement at 24 h came later)
    names = WINDOW_METRICS_SCHEMA.names
    assert names.index("avg_model_sentiment") == names.index("updated_at") + 1
    sql = (ROOT / "infra" / "bigquery" / "tables.sql").read_text()
    table = sql[sql.index("`musicnft.window_metrics_15m`") :]
    assert "avg_model_sentiment FLOAT64" in table[: table.index(";")]
