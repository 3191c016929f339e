"""The dashboard's "VADER beside the trained model" panel (issue 15).

VADER's compound (the original's sentiment) and the trained model's score, both in [-1, 1], per
15-minute window on one chart, with their averages over the range. Reads `window_metrics_15m`
through the warehouse port (`dashboard.model_sentiment_queries`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import model_sentiment_queries as mq

SERIES = {"avg_sentiment": "VADER", "avg_model_sentiment": "trained model"}


def long_form(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Per window and scorer: the average (rows without a model score drop out of its line)."""
    data = pd.DataFrame(rows, columns=["window_start", "post_count", *SERIES])
    data["window_start"] = pd.to_datetime(data["window_start"], utc=True)
    melted = data.melt(
        id_vars=["window_start"], value_vars=list(SERIES), var_name="scorer", value_name="score"
    )
    melted["scorer"] = melted["scorer"].map(SERIES)
    return melted.dropna(subset=["score"])


def model_sentiment_panel(wh: Any, start: datetime, end: datetime, keyword: str) -> None:
    st.subheader("Sentiment: VADER beside the trained model")
    totals = mq.overall(wh, start, end, keyword)
    if not totals["model_posts"]:
        st.info(
            "No post in this range has a model score yet: `musicnft model train` trains and "
            "promotes the model (the consumer and the windows use it from then on)."
        )
        return
    left, right = st.columns(2)
    left.metric(
        "VADER (avg compound)", f"{totals['vader']:+.3f}" if totals["vader"] is not None else "–"
    )
    right.metric("Trained model (avg score)", f"{totals['model']:+.3f}")
    data = long_form(mq.by_window(wh, start, end, keyword))
    chart = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("window_start:T", title="window (UTC)"),
            y=alt.Y("score:Q", title="average sentiment", scale=alt.Scale(domain=[-1, 1])),
            color=alt.Color("scorer:N", title=None),
            tooltip=[alt.Tooltip("window_start:T", format="%Y-%m-%d %H:%M"), "scorer", "score"],
        )
        .properties(height=220)
    )
    st.altair_chart(chart, width="stretch")
    st.caption(
        f"{totals['model_posts']:,} posts scored by the model in this range. The model is trained "
        "on human-rated tweets and this field's posts (README, 'Sentiment model')."
    )
