"""Spark scoring (issue 16): posts scored per second by the Spark job on local[2] against the
in-process scorer on the same lake, in the same run.

- Lake: `--posts` generated posts (the sample generator, duplicates included) in Firehose-like
  drops of 1,000 records under raw/, and a promoted model trained on the shipped labelled tweets.
- Baseline (1 core, in process): read every drop with pyarrow, then per post VADER (`enrich`'s
  `sentiment_scores`, cold cache) and the model (`InProcessScoring`), as the consumer and the batch
  path score: posts per second of wall-clock and of this thread's CPU time.
- Spark (`local[2]`, shuffle partitions 2): `run_score_job(available_now=True)` over the same lake:
  the whole run's wall-clock (query start, file listing, state, writing Parquet), and the rate of
  the busiest micro-batch; then, warm (same session, workers and model loaded), a `--rescore` of
  the same lake in one micro-batch. The session's start is reported apart.

Ratios, not seconds, are what to compare across machines; the load average is printed beside them
(the machine may be shared). Run: `.venv/bin/python -m benchmarks.spark_scoring [--posts N]`.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from musicnft.adapters.local_lake import LocalLake
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.lake_layout import raw_key
from musicnft.contract.schema import POST_SCHEMA, to_table
from musicnft.devtools.sample import generate_lines
from musicnft.hotpath.decode import ControlMessage, RejectedRecord
from musicnft.hotpath.enrich import reset_scorer, sentiment_scores
from musicnft.hotpath.model_artifact import load_promoted
from musicnft.hotpath.model_scoring import InProcessScoring
from musicnft.hotpath.normalize_x import normalize_x_line
from musicnft.model.artifact import promote, write_artifact
from musicnft.model.gold import load_gold
from musicnft.model.train import TrainConfig, train
from musicnft.settings import DEFAULT_KEYWORDS

DROP = 1_000
START = datetime(2021, 12, 1, tzinfo=UTC)


def build_lake(root: Path, posts: int) -> tuple[LocalLake, int]:
    lake = LocalLake(root)
    matcher = KeywordMatcher(DEFAULT_KEYWORDS)
    rows: list[dict[str, Any]] = []
    for i, line in enumerate(generate_lines(posts, seed=16, posts_per_hour=3600)):
        try:
            rows.append(normalize_x_line(line, matcher, START + timedelta(seconds=i)))
        except (RejectedRecord, ControlMessage):
            continue
    for n in range(0, len(rows), DROP):
        chunk = rows[n : n + DROP]
        buf = io.BytesIO()
        pq.write_table(to_table(chunk, POST_SCHEMA), buf)
        lake.put(raw_key("musicnft-posts", chunk[0]["ingested_at"]), buf.getvalue())
    gold = load_gold()
    result = train(gold, [], TrainConfig(), cv=False)
    _key, card = write_artifact(lake, result, gold.sha256)
    promote(lake, result.model.version, card)
    return lake, len(rows)


def in_process(lake: LocalLake) -> tuple[int, float, float]:
    """(posts, wall s, CPU s) of scoring every raw post in this thread, from reading the files."""
    model = load_promoted(lake)
    assert model is not None
    reset_scorer()
    wall, cpu = time.perf_counter(), time.thread_time()
    n = 0
    for key in lake.list("raw/"):
        texts = pq.read_table(lake.root / key, columns=["text"]).column("text").to_pylist()
        vaders = []
        for text in texts:
            s = sentiment_scores(text)
            vaders.append(None if s is None else (s["neg"], s["neu"], s["pos"], s["compound"]))
        InProcessScoring(model).score(texts, vaders)
        n += len(texts)
    return n, time.perf_counter() - wall, time.thread_time() - cpu


def main(posts: int = 30_000) -> dict[str, float]:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from musicnft.spark.job import ScoreJobOptions, run_score_job

    with tempfile.TemporaryDirectory(prefix="spark-bench-") as tmp:
        lake, n_posts = build_lake(Path(tmp) / "lake", posts)
        files = len(list(lake.list("raw/")))
        base_n, base_wall, base_cpu = in_process(lake)
        started = time.perf_counter()
        spark = (
            SparkSession.builder.master("local[2]")
            .appName("musicnft-spark-bench")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        session_s = time.perf_counter() - started
        rates: list[float] = []

        def on_batch(b: Any) -> None:
            if b.duration_ms > 0:
                rates.append(b.input_rows / (b.duration_ms / 1000))

        started = time.perf_counter()
        result = run_score_job(
            spark,
            ScoreJobOptions(str(lake.root), available_now=True, max_files_per_trigger=10),
            on_batch=on_batch,
        )
        spark_wall = time.perf_counter() - started
        # warm (session, Python workers and model loaded): a re-score, all drops in one batch
        started = time.perf_counter()
        warm = run_score_job(
            spark,
            ScoreJobOptions(
                str(lake.root), available_now=True, rescore=True, max_files_per_trigger=10_000
            ),
        )
        warm_wall = time.perf_counter() - started
        spark.stop()
    base_rate = base_n / base_wall
    spark_rate = result.input_rows / spark_wall
    best = max(rates) if rates else 0.0
    load = os.getloadavg()
    print(
        f"spark scoring: {n_posts:,} posts in {files} drops, {result.rows_written:,} unique "
        f"written in {result.batches} micro-batches; load average {load[0]:.1f} on "
        f"{os.cpu_count()} cores"
    )
    print(
        f"  in process, 1 core   {base_rate:10,.0f} posts/s wall  "
        f"({base_n / base_cpu:,.0f}/s of CPU)   1.00x"
    )
    print(
        f"  Spark local[2], run  {spark_rate:10,.0f} posts/s wall  "
        f"{spark_rate / base_rate:.2f}x (incl. query start; session start {session_s:.0f} s apart)"
    )
    print(f"  Spark busiest batch  {best:10,.0f} posts/s          {best / base_rate:.2f}x")
    warm_rate = warm.input_rows / warm_wall
    print(
        f"  Spark warm, 1 batch  {warm_rate:10,.0f} posts/s wall  {warm_rate / base_rate:.2f}x "
        "(--rescore of the same lake, all drops in one micro-batch)"
    )
    return {
        "in_process_posts_per_s": base_rate,
        "spark_posts_per_s": spark_rate,
        "spark_best_batch_posts_per_s": best,
        "spark_warm_posts_per_s": warm_rate,
        "session_start_s": session_s,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.spark_scoring", description=__doc__)
    parser.add_argument("--posts", type=int, default=30_000)
    main(parser.parse_args().posts)
