"""The live panel: the window in progress, from posts_hot (the speed layer), refreshed every few
seconds and marked as not yet reconciled (see `dashboard.live_queries`)."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from dashboard import queries as q
from dashboard.live_queries import live, live_since
from musicnft.ports import Warehouse

LIVE_REFRESH_SECONDS = 5  # the page is never more than this (plus one query) behind posts_hot


def _behind(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "–"
    seconds = max(0, int((now - then).total_seconds()))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


@st.fragment(run_every=LIVE_REFRESH_SECONDS)
def live_panel(wh: Warehouse) -> None:
    """Nothing when every stored post is in a reconciled window (a finished backfill)."""
    now = datetime.now(UTC)
    since = live_since(q.freshness(wh).last_window, now)
    current = live(wh, since)
    if current.posts == 0:
        return
    st.subheader("Live: posts not yet in a reconciled window")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Live posts", f"{current.posts:,}")
    c2.metric(
        "Live average sentiment",
        "–" if current.avg_sentiment is None else f"{current.avg_sentiment:.3f}",
    )
    c3.metric("Live positive / neutral / negative",
              f"{current.positive:,} / {current.neutral:,} / {current.negative:,}")  # fmt: skip
    c4.metric("Last post stored", _behind(current.last_inserted_at, now))
    st.caption(
        f"Speed layer: posts created since {since:%Y-%m-%d %H:%M} UTC as the hot path stored "
        f"them (posts_hot, each post once), refreshed every {LIVE_REFRESH_SECONDS} s "
        f"(last at {now:%H:%M:%S} UTC). The reconciled 15-minute figures replace them when "
        "their window is materialized."
    )
