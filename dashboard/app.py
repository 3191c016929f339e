"""musicnft dashboard: the original project's panels, live, on the 15-minute aggregate tables.

Run with `musicnft dashboard` (or as part of `make demo`). It refreshes itself every
MUSICNFT_DASHBOARD_REFRESH_SECONDS (default 60, at most 900: the promise is "never slower than
15 minutes"), and reads through the warehouse port of the active profile.
"""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import queries as q
from dashboard.insight import insight_panels
from dashboard.live import live_panel
from dashboard.live_queries import live, live_since
from dashboard.model_sentiment import model_sentiment_panel
from dashboard.sales import sales_beside_talk
from musicnft import wiring
from musicnft.ports import Warehouse
from musicnft.settings import Settings

FRESH_MINUTES = 20  # the schedule refreshes every 15 minutes; allow one run's worth of slack
SENTIMENTS = ["positive", "neutral", "negative"]


def refresh_seconds() -> int:
    """MUSICNFT_DASHBOARD_REFRESH_SECONDS, kept within 5..900 (Settings; a non-number → 60)."""
    return Settings.from_env().dashboard_refresh_seconds


@st.cache_resource
def _warehouse(data_dir: str) -> Warehouse:  # the adapter depends on the profile
    return wiring.open_warehouse(Settings.from_env().with_data_dir(Path(data_dir)), read_only=True)


def warehouse() -> Warehouse:
    return _warehouse(str(Settings.from_env().data_dir))


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_float(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def age_text(then: datetime, now: datetime) -> str:
    minutes = int((now - then).total_seconds() // 60)
    if minutes < 1:
        return "less than a minute ago"
    if minutes < 120:
        return f"{minutes} min ago"
    return f"{minutes // 60} h ago"


def hashtag_cloud(rows: list[dict]) -> str:
    if not rows:
        return "<p>(no hashtags in this range)</p>"
    top = max(r["posts"] for r in rows)
    spans = []
    for r in sorted(rows, key=lambda r: r["hashtag"]):
        size = 0.8 + 1.6 * (r["posts"] / top)
        spans.append(
            f'<span title="{r["posts"]} posts" style="font-size:{size:.2f}em;margin:0 .35em;'
            f'line-height:1.8">#{html.escape(r["hashtag"])}</span>'
        )
    return '<div style="text-align:center">' + " ".join(spans) + "</div>"


def picked_range(picked: object, default_start: date) -> tuple[datetime, datetime]:
    """The date input's value (one day, a range, or a range still being picked) → [start, end)."""
    start_day, end_day = (
        picked if isinstance(picked, tuple) and len(picked) == 2 else (picked, picked)
    )
    if not isinstance(start_day, date):
        start_day = default_start
    if not isinstance(end_day, date):
        end_day = start_day
    start = datetime.combine(start_day, time(), UTC)
    end = datetime.combine(end_day, time(), UTC) + timedelta(days=1)
    return start, end


def controls(fresh: q.Freshness) -> tuple[datetime, datetime, str]:
    """The date range (default: the last two days with data) and keyword pickers."""
    assert fresh.last_window is not None  # main() says there is no data instead
    last_day = fresh.last_window.date()
    first_day = fresh.first_window.date() if fresh.first_window else last_day
    default_start = max(first_day, last_day - timedelta(days=1))
    col_a, col_b = st.columns([2, 1])
    picked = col_a.date_input(
        "Date range (UTC)",
        value=(default_start, last_day),
        min_value=first_day,
        max_value=last_day,
    )
    keyword = col_b.selectbox("Keyword", [q.ALL, *fresh.keywords], index=0)
    start, end = picked_range(picked, default_start)
    return start, end, keyword


def main() -> None:
    st.set_page_config(
        page_title="musicnft · music NFT conversation", page_icon="🎵", layout="wide"
    )
    st.title("🎵 The music-NFT conversation")
    wh = warehouse()
    fresh = q.freshness(wh)
    live_panel(wh)
    if fresh.last_window is None:
        if live(wh, live_since(None, datetime.now(UTC))).posts:
            st.info(
                "No reconciled window yet: the live panel above counts what the hot path has "
                "stored; the aggregate panels appear when the first window is materialized."
            )
        else:
            st.info(
                "No data yet. The aggregate tables fill as the pipeline runs: start it with "
                "`make demo`, or materialize windows from the lake with `musicnft backfill`."
            )
        return
    start, end, keyword = controls(fresh)
    panels(start, end, keyword)


def sentiment_color() -> alt.Color:
    return alt.Color(
        "sentiment:N",
        scale=alt.Scale(domain=SENTIMENTS, range=["#2e7d32", "#9e9e9e", "#c62828"]),
    )


def freshness_banner(wh: Warehouse, now: datetime) -> None:
    fresh = q.freshness(wh)
    if fresh.last_updated is None:
        return
    age = now - fresh.last_updated
    text = f"Last updated {fresh.last_updated:%Y-%m-%d %H:%M} UTC ({age_text(fresh.last_updated, now)})"
    if age <= timedelta(minutes=FRESH_MINUTES):
        st.success(f"● Fresh — {text}. Refreshes every {refresh_seconds()} s.")
    else:
        st.warning(f"● Stale — {text}; aggregates refresh every 15 minutes when the pipeline runs.")


def summary_metrics(s: q.Summary) -> None:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Total posts tracked", fmt_int(s.total_posts))
    c2.metric("Posts per hour", fmt_float(s.posts_per_hour))
    c3.metric("Average followers per post", fmt_float(s.avg_followers, 0))
    c4.metric("Average sentiment", fmt_float(s.avg_sentiment, 3))


def sentiment_over_time(hourly: pd.DataFrame) -> None:
    st.subheader("Sentiment over time")
    melted = hourly.drop(columns="posts").melt("hour", SENTIMENTS, "sentiment", "posts")
    st.altair_chart(
        alt.Chart(melted)
        .mark_area()
        .encode(
            x=alt.X("hour:T", title="hour (UTC)"),
            y=alt.Y("posts:Q", stack=True),
            color=sentiment_color(),
        ),
        width="stretch",
    )


def sentiment_breakdown(s: q.Summary) -> None:
    st.subheader("Sentiment breakdown")
    donut = pd.DataFrame({"sentiment": SENTIMENTS, "posts": [s.positive, s.neutral, s.negative]})
    st.altair_chart(
        alt.Chart(donut)
        .mark_arc(innerRadius=60)
        .encode(theta="posts:Q", color=sentiment_color(), tooltip=["sentiment", "posts"]),
        width="stretch",
    )
    st.caption(
        f"positive {fmt_int(s.positive)} · neutral {fmt_int(s.neutral)} · negative {fmt_int(s.negative)}"
    )


def posts_per_hour(hourly: pd.DataFrame) -> None:
    st.subheader("Posts per hour")
    st.altair_chart(
        alt.Chart(hourly).mark_bar().encode(x=alt.X("hour:T", title="hour (UTC)"), y="posts:Q"),
        width="stretch",
    )


def keyword_volume(wh: Warehouse, start: datetime, end: datetime) -> None:
    st.subheader("Volume per keyword")
    volume = q.keyword_volume_frame(wh, start, end)
    if not volume.empty:
        st.altair_chart(
            alt.Chart(volume)
            .mark_line(point=False)
            .encode(x=alt.X("hour:T", title="hour (UTC)"), y="posts:Q", color="keyword:N"),
            width="stretch",
        )


def hashtag_cloud_panel(tags: list[dict[str, Any]]) -> None:
    st.subheader("Hashtag cloud")
    st.markdown(hashtag_cloud(tags), unsafe_allow_html=True)
    st.caption("All posts in the range (hashtag and location counts are not split by keyword).")


def hashtag_ranking(tags: list[dict[str, Any]]) -> None:
    st.subheader("Hashtag ranking")
    st.dataframe(
        pd.DataFrame(tags[:15], columns=["hashtag", "posts"]),
        hide_index=True,
        width="stretch",
    )


def top_locations(wh: Warehouse, start: datetime, end: datetime) -> None:
    st.subheader("Top locations")
    st.dataframe(
        pd.DataFrame(q.top_locations(wh, start, end), columns=["location", "posts"]),
        hide_index=True,
        width="stretch",
    )


def top_posts(wh: Warehouse, start: datetime, end: datetime, keyword: str) -> None:
    st.subheader("Top posts by engagement")
    top = pd.DataFrame(q.top_posts(wh, start, end, keyword))
    if top.empty:
        st.write("(no posts)")
        return
    st.dataframe(
        top[["url", "author_handle", "engagement", "sentiment_label", "text"]],
        hide_index=True,
        width="stretch",
        column_config={
            "url": st.column_config.LinkColumn("post", display_text="open"),
            "author_handle": "author",
            "sentiment_label": "sentiment",
        },
    )


def sentiment_row(hourly: pd.DataFrame, s: q.Summary) -> None:
    left, right = st.columns([2, 1])
    with left:
        sentiment_over_time(hourly)
    with right:
        sentiment_breakdown(s)


def volume_row(wh: Warehouse, hourly: pd.DataFrame, start: datetime, end: datetime) -> None:
    left, right = st.columns(2)
    with left:
        posts_per_hour(hourly)
    with right:
        keyword_volume(wh, start, end)


def hashtag_row(wh: Warehouse, start: datetime, end: datetime) -> None:
    tags = q.top_hashtags(wh, start, end)
    left, right = st.columns(2)
    with left:
        hashtag_cloud_panel(tags)
    with right:
        hashtag_ranking(tags)


def locations_and_posts_row(wh: Warehouse, start: datetime, end: datetime, keyword: str) -> None:
    left, right = st.columns(2)
    with left:
        top_locations(wh, start, end)
    with right:
        top_posts(wh, start, end, keyword)


@st.fragment(run_every=timedelta(seconds=refresh_seconds()))
def panels(start: datetime, end: datetime, keyword: str) -> None:
    wh = warehouse()
    freshness_banner(wh, datetime.now(UTC))
    s = q.summary(wh, start, end, keyword)
    summary_metrics(s)
    if s.total_posts == 0:
        st.info("No posts in this range for this keyword.")
        return
    hourly = pd.DataFrame(q.hourly(wh, start, end, keyword))
    sentiment_row(hourly, s)
    model_sentiment_panel(wh, start, end, keyword)
    volume_row(wh, hourly, start, end)
    hashtag_row(wh, start, end)
    locations_and_posts_row(wh, start, end, keyword)
    insight_panels(wh, start, end)
    sales_beside_talk(wh, start, end)


main()
