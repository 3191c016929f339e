"""A small lake for the sentiment model's tests: a few Parquet drops of this field's posts under
raw/ (the unlabelled texts the training set reads), and a trained model written into it."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from musicnft.adapters.local_lake import LocalLake
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.lake_layout import raw_key
from musicnft.contract.schema import conform, to_table
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.settings import DEFAULT_KEYWORDS
from tests.support.records import x_message

FIELD_TEXTS = (
    "gm frens, new music NFT drop is live on OpenSea, wagmi 🚀",
    "this mint was a rug, floor collapsed, ngmi",
    "love this track, minted two editions, to the moon",
    "ETH gas is terrible today, cannot mint anything",
    "listening to the new web3 album, it is amazing",
    "worst drop ever, refund please, total scam",
)


def build_model_lake(root: Path, posts_per_file: int = 60, files: int = 3) -> LocalLake:
    lake = LocalLake(root)
    matcher = KeywordMatcher(DEFAULT_KEYWORDS)
    start = datetime(2021, 12, 1, tzinfo=UTC)
    n = 0
    for f in range(files):
        rows = []
        for _ in range(posts_per_file):
            text = f"{FIELD_TEXTS[n % len(FIELD_TEXTS)]} #{n}"
            post = normalize_x_message(x_message(n, text=text), matcher, start)
            rows.append(conform(post))
            n += 1
        buf = io.BytesIO()
        pq.write_table(to_table(rows), buf)
        lake.put(raw_key("musicnft-posts", start + timedelta(hours=f), f"u{f}"), buf.getvalue())
    return lake
