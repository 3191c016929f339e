"""The dashboard's "sales beside talk" panel: NFT market sales against the conversation.

Per 15-minute window, on one shared time axis: sales and ETH volume of a collection (or of all
the followed collections), above the post volume and average sentiment of the talk (all tracked
posts, or once entities exist, the posts naming one entity). Reads `nft_sales_15m` and the post
aggregates through the warehouse port (`dashboard.sales_queries`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import sales_queries as sq
from musicnft.settings import Settings


def _chart(
    data: pd.DataFrame, field: str, title: str, mark: str, domain: list[datetime], color: str
) -> alt.Chart:
    x = alt.X("window_start:T", title="window (UTC)", scale=alt.Scale(domain=domain))
    base = alt.Chart(data)
    marked = (
        base.mark_bar(color=color) if mark == "bar" else base.mark_line(color=color, point=True)
    )
    return marked.encode(
        x=x,
        y=alt.Y(f"{field}:Q", title=title),
        tooltip=[alt.Tooltip("window_start:T", format="%Y-%m-%d %H:%M"), f"{field}:Q"],
    ).properties(height=110)


def sales_beside_talk(wh: Any, start: datetime, end: datetime) -> None:
    """The panel (a no-op hint when the range has no sales)."""
    st.subheader("NFT sales beside the talk")
    collections = sq.collections(wh, start, end)
    if not collections:
        st.info(
            "No NFT sales in this range. `make demo` replays a seeded sales sample beside the "
            "posts; `musicnft sales --source opensea` follows real collections (OPENSEA_API_KEY)."
        )
        return
    left, right = st.columns(2)
    choice = left.selectbox(
        "Collection",
        [sq.ALL_COLLECTIONS, *(c["collection"] for c in collections)],
        index=0,
        key="sales_collection",
    )
    talk_options = [sq.ALL_POSTS, *sq.entities(wh, start, end)]
    about = right.selectbox("Talk", talk_options, index=0, key="sales_talk")
    # An entity's own collections (its `opensea_slugs` in the entities file) when no single
    # collection is picked: the market of who is talked about.
    among = None
    label = choice
    if about != sq.ALL_POSTS and choice == sq.ALL_COLLECTIONS:
        among = sq.entity_collections(about, Settings.from_env().entities_file) or None
        if among:
            label = f"{about}'s collections ({', '.join(among)})"
    rows = sq.side_by_side(
        sq.sales_by_window(wh, start, end, choice, among),
        sq.talk_by_window(wh, start, end, about),
    )
    if not rows:
        st.info(f"No sales of {label} and no talk in this range.")
        return
    data = pd.DataFrame(rows)
    data["window_start"] = pd.to_datetime(data["window_start"], utc=True)
    domain = [start, end]
    chart = alt.vconcat(
        _chart(data, "sales", "sales", "bar", domain, "#6a1b9a"),
        _chart(data, "volume_eth", "volume (ETH)", "bar", domain, "#ab47bc"),
        _chart(data, "posts", "posts", "bar", domain, "#1565c0"),
        _chart(data.dropna(subset=["avg_sentiment"]), "avg_sentiment", "sentiment", "line",
               domain, "#2e7d32"),
    ).resolve_scale(x="shared")  # fmt: skip
    st.altair_chart(chart, width="stretch")
    total_sales = int(data["sales"].sum())
    total_volume = float(data["volume_eth"].sum())
    st.caption(
        f"{label}: {total_sales:,} sales, {total_volume:,.2f} ETH (sales paid in ETH or WETH) "
        f"in the range; talk: {about}. Each sale counts once, however often it was read."
    )
