"""The queries of the "VADER beside the trained model" panel, on `window_metrics_15m`.

Both averages per 15-minute window and over the range, weighted by each window's post count
(windows before a model was promoted have no model average and weigh nothing for it). Standard
SQL with parameters, run on the embedded warehouse and on BigQuery alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

ALL = "all"


def by_window(wh: Any, start: datetime, end: datetime, keyword: str = ALL) -> list[dict[str, Any]]:
    """Per window with posts: VADER's and the model's average sentiment."""
    return wh.query(
        "SELECT window_start, post_count, avg_sentiment, avg_model_sentiment "
        "FROM window_metrics_15m "
        "WHERE keyword = ? AND window_start >= ? AND window_start < ? AND post_count > 0 "
        "ORDER BY window_start",
        [keyword, start, end],
    ).to_pylist()


def overall(wh: Any, start: datetime, end: datetime, keyword: str = ALL) -> dict[str, Any]:
    """Over [start, end): both averages, and how many posts were in windows the model scored."""
    return wh.query(
        "SELECT sum(avg_sentiment * post_count) / nullif(sum(CASE WHEN avg_sentiment IS NOT "
        "NULL THEN post_count END), 0) AS vader, "
        "sum(avg_model_sentiment * post_count) / nullif(sum(CASE WHEN avg_model_sentiment IS "
        "NOT NULL THEN post_count END), 0) AS model, "
        "CAST(coalesce(sum(CASE WHEN avg_model_sentiment IS NOT NULL THEN post_count END), 0) "
        "AS BIGINT) AS model_posts "
        "FROM window_metrics_15m "
        "WHERE keyword = ? AND window_start >= ? AND window_start < ? AND post_count > 0",
        [keyword, start, end],
    ).to_pylist()[0]
