"""A small lake for the Spark scoring job's tests (tests/spark) and its bench: Firehose-like
drops of this field's posts under raw/ (a few created_at hours, a redelivery drop, a source
duplicate inside a drop, a post with empty text), and a promoted sentiment model."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from musicnft.adapters.local_lake import LocalLake
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.lake_layout import raw_key
from musicnft.contract.schema import POST_SCHEMA, conform, format_timestamp, to_table
from musicnft.hotpath.enrich import enrich
from musicnft.hotpath.model_artifact import load_promoted
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.hotpath.sentiment_model import SentimentModel
from musicnft.settings import DEFAULT_KEYWORDS
from tests.support.model_lake import FIELD_TEXTS
from tests.support.records import x_message

STREAM = "musicnft-posts"
START = datetime(2021, 12, 1, 9, 40, tzinfo=UTC)
MATCHER = KeywordMatcher(DEFAULT_KEYWORDS)


def post(n: int, created: datetime, ingested: datetime, text: str | None = None) -> dict[str, Any]:
    body = text if text is not None else f"{FIELD_TEXTS[n % len(FIELD_TEXTS)]} #{n}"
    msg = x_message(n, text=body, created=format_timestamp(created))
    return conform(normalize_x_message(msg, MATCHER, ingested))


def parquet_bytes(rows: list[dict[str, Any]], int96: bool = False) -> bytes:
    buf = io.BytesIO()
    pq.write_table(to_table(rows, POST_SCHEMA), buf, use_deprecated_int96_timestamps=int96)
    return buf.getvalue()


def put_drop(
    lake: LocalLake,
    rows: list[dict[str, Any]],
    modified: datetime | None = None,
    int96: bool = False,
) -> str:
    """One drop at Firehose's key for its oldest ingest; `modified` sets the file's mtime (the
    file source takes files in modification order)."""
    key = raw_key(STREAM, min(r["ingested_at"] for r in rows))
    lake.put(key, parquet_bytes(rows, int96))
    if modified is not None:
        os.utime(lake.root / key, (modified.timestamp(), modified.timestamp()))
    return key


@dataclass
class SparkLake:
    root: Path
    lake: LocalLake
    rows: list[dict[str, Any]]  # every row written to raw/ (duplicates included)
    model_version: str

    def unique_posts(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for r in self.rows:
            out.setdefault(r["post_id"], r)
        return out

    def add_drop(
        self, rows: list[dict[str, Any]], int96: bool = False, modified: datetime | None = None
    ) -> str:
        self.rows += rows
        return put_drop(self.lake, rows, modified, int96=int96)


def sample_posts(n: int, seed: int = 16) -> list[dict[str, Any]]:
    """Posts of the project's sample generator (its varied texts, emoji, reposts and source
    duplicates), ingested a second apart from START; its malformed lines are left out."""
    from musicnft.devtools.sample import generate_lines
    from musicnft.hotpath.decode import ControlMessage, RejectedRecord
    from musicnft.hotpath.normalize_x import normalize_x_line

    out = []
    for i, line in enumerate(generate_lines(n, seed=seed, start=START, posts_per_hour=600)):
        try:
            out.append(conform(normalize_x_line(line, MATCHER, START + timedelta(seconds=i))))
        except (RejectedRecord, ControlMessage):
            continue
    return out


def build_spark_lake(root: Path, drops: int = 4, per_drop: int = 25) -> SparkLake:
    """`drops` drops of `per_drop` posts a minute apart in ingest, created over several hours,
    then a redelivery drop (5 posts again, later ingest) and a source duplicate in the last drop."""
    lake = LocalLake(root)
    rows: list[dict[str, Any]] = []
    n = 0
    for d in range(drops):
        chunk = []
        for _ in range(per_drop):
            created = START + timedelta(minutes=7 * n)
            chunk.append(post(n, created, created + timedelta(seconds=30)))
            n += 1
        if d == drops - 1:
            chunk.append(dict(chunk[0]))  # the source sent the same post twice
            chunk.append(
                post(
                    n,
                    START + timedelta(minutes=7 * n),
                    START + timedelta(minutes=7 * n, seconds=30),
                    text="",
                )
            )
            n += 1
        rows += chunk
        put_drop(lake, chunk, START + timedelta(hours=d + 1))
    redelivered = [r | {"ingested_at": r["ingested_at"] + timedelta(minutes=20)} for r in rows[3:8]]
    rows += redelivered
    put_drop(lake, redelivered, START + timedelta(hours=drops + 1))
    version = promote_model(lake)
    return SparkLake(root, lake, rows, version)


@cache
def _trained() -> tuple[Any, str]:
    from musicnft.model.gold import load_gold
    from musicnft.model.train import TrainConfig, train

    gold = load_gold()
    return train(gold, [], TrainConfig(), cv=False), gold.sha256


def promote_model(lake: LocalLake, model: SentimentModel | None = None) -> str:
    """Write a trained model (trained once per process) or `model` into the lake and promote it."""
    from musicnft.model.artifact import build_tarball, promote, write_artifact

    result, sha = _trained()
    if model is None:
        _key, card = write_artifact(lake, result, sha)
        promote(lake, result.model.version, card)
        return result.model.version
    from musicnft.contract.lake_layout import model_key

    card = {"version": model.version, "metrics": {}}
    lake.put(model_key(model.version), build_tarball(model.to_json(), card))
    promote(lake, model.version, card)
    return model.version


def expected_scores(lake: SparkLake) -> dict[str, tuple[float | None, float | None, str | None]]:
    """post_id -> (VADER compound, model score, model label), scored in process as the hot path
    scores them (`enrich`, the promoted model's `predict` on the same VADER scores)."""
    model = load_promoted(lake.lake)
    assert model is not None
    out = {}
    for pid, row in lake.unique_posts().items():
        e = enrich(row)
        vader = (
            e["sentiment_neg"],
            e["sentiment_neu"],
            e["sentiment_pos"],
            e["sentiment_compound"],
        )
        score, name = model.predict(row["text"], vader)
        out[pid] = (e["sentiment_compound"], score, name)
    return out
