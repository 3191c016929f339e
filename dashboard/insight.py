"""The dashboard's insight panels (issue 18): who is talked about and what is spiking.

- **Share of voice by entity**: each entity's posts per hour as a share of the entity mentions
  (stacked to 100%), beside a table of the range's totals: posts, share of all tracked posts,
  average sentiment and its split, engagement.
- **Spiking now**: the latest spikes in the range (keyword, entity or hashtag against its
  trailing 7 days), each with the posts behind it.
- **Engagement at 24 h**: engagement per post as re-read 24 h after posting, per hour posted
  (`window_metrics_15m`'s `engagement_24h_posts` and `avg_engagement_24h`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import insight_queries as iq

SPIKES_SHOWN = 8
POSTS_PER_SPIKE = 5


def share_of_voice(wh: Any, start: datetime, end: datetime) -> None:
    st.subheader("Share of voice by entity")
    totals = iq.entity_totals(wh, start, end)
    if not totals:
        st.info("No post in this range names an entity of the entities file.")
        return
    hourly = pd.DataFrame(iq.entity_hourly(wh, start, end))
    hourly["hour"] = pd.to_datetime(hourly["hour"], utc=True)
    left, right = st.columns([3, 2])
    with left:
        chart = (
            alt.Chart(hourly)
            .mark_area()
            .encode(
                x=alt.X("hour:T", title="hour (UTC)"),
                y=alt.Y("posts:Q", stack="normalize", title="share of entity mentions"),
                color=alt.Color("entity:N", title="entity"),
                tooltip=[
                    alt.Tooltip("hour:T", format="%Y-%m-%d %H:00"),
                    "entity:N",
                    "posts:Q",
                    alt.Tooltip("avg_sentiment:Q", format=".3f", title="sentiment"),
                ],
            )
            .properties(height=260)
        )
        st.altair_chart(chart, width="stretch")
    with right:
        table = pd.DataFrame(totals)
        st.dataframe(
            table[
                [
                    "entity",
                    "posts",
                    "share_of_voice",
                    "avg_sentiment",
                    "positive",
                    "neutral",
                    "negative",
                    "engagement",
                ]
            ],
            hide_index=True,
            width="stretch",
            column_config={
                "share_of_voice": st.column_config.NumberColumn("share", format="percent"),
                "avg_sentiment": st.column_config.NumberColumn("sentiment", format="%.3f"),
            },
        )
    lead = totals[0]
    st.caption(
        f"Most talked about: {lead['entity']} in {lead['posts']:,} posts"
        + (f" ({lead['share_of_voice']:.0%} of all)" if lead["share_of_voice"] else "")
        + ". A post naming several entities counts for each."
    )


def spiking_now(wh: Any, start: datetime, end: datetime) -> None:
    st.subheader("Spiking now")
    rows = iq.spikes(wh, start, end, SPIKES_SHOWN)
    if not rows:
        st.info(
            "Nothing spiked in this range (a key spikes at 3.5 robust deviations above, and "
            "twice, its median of the trailing 7 days)."
        )
        return
    for s in rows:
        title = (
            f"{s['window_start']:%Y-%m-%d %H:%M} UTC · {s['dimension']} **{s['key']}**: "
            f"{s['post_count']} posts vs {s['baseline']:.1f} usual (score {s['score']:.1f})"
        )
        with st.expander(title):
            posts = iq.posts_behind(wh, s, POSTS_PER_SPIKE)
            if posts:
                st.dataframe(
                    pd.DataFrame(posts)[["author_handle", "engagement", "sentiment_label", "text"]],
                    hide_index=True,
                    width="stretch",
                    column_config={"author_handle": "author", "sentiment_label": "sentiment"},
                )
            else:
                st.write("(its posts are no longer in the warehouse)")


def engagement_at_24h(wh: Any, start: datetime, end: datetime) -> None:
    st.subheader("Engagement at 24 h")
    # window_metrics_15m's engagement_24h_posts / avg_engagement_24h (issue 18 item 4)
    rows = iq.engagement_24h_hourly(wh, start, end)
    read = sum(r["read_24h"] or 0 for r in rows)
    if not read:
        st.info(
            "No post in this range has been re-read 24 h after it was posted yet (Bluesky posts "
            "are re-read for free; X posts only within MUSICNFT_X_REREAD_BUDGET_USD a day)."
        )
        return
    data = pd.DataFrame(rows)
    data["hour"] = pd.to_datetime(data["hour"], utc=True)
    data["per_post_24h"] = data["engagement_24h"] / data["read_24h"].where(data["read_24h"] > 0)
    chart = (
        alt.Chart(data.dropna(subset=["per_post_24h"]))
        .mark_bar(color="#ef6c00")
        .encode(
            x=alt.X("hour:T", title="hour posted (UTC)"),
            y=alt.Y("per_post_24h:Q", title="engagement per post at 24 h"),
            tooltip=[
                alt.Tooltip("hour:T", format="%Y-%m-%d %H:00"),
                "read_24h:Q",
                "engagement_24h:Q",
            ],
        )
        .properties(height=200)
    )
    st.altair_chart(chart, width="stretch")
    total = sum(r["engagement_24h"] or 0 for r in rows)
    st.caption(
        f"{read:,} posts re-read at 24 h: {total:,} replies, reposts, likes and quotes "
        f"({total / read:,.1f} a post), against ~0 when they were streamed."
    )


def insight_panels(wh: Any, start: datetime, end: datetime) -> None:
    """The insight panels, one under the other."""
    share_of_voice(wh, start, end)
    spiking_now(wh, start, end)
    engagement_at_24h(wh, start, end)
