"""Enrichment rate against bare VADER 3.3.2 on the same texts, per core (issue #14 item 2).

Texts: `generate_lines(100_000, seed=99)` normalized as the producer does (the generated sample's
mix of originals, reposts, replies, emoji and languages). Baseline, measured in the same run:
`SentimentIntensityAnalyzer().polarity_scores(text)` on every post's text. Measured: `enrich(post)`
on every post (scores, label and engagement rate, a new dict per post), starting each round with an
empty text cache and token memo, so every memo miss is paid for; each result is dropped at once, as
for VADER's. One process, one thread; rates are items per second of CPU time (`time.process_time`,
steadier than wall time when other processes share the cores). Each round measures the three
one after the other; the figure is the median over `--rounds` rounds of enrich's rate over bare
VADER's in the same round. Also shown: `FastVader.polarity` alone on the texts.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from musicnft.contract.keywords import KeywordMatcher
from musicnft.devtools.sample import generate_lines
from musicnft.hotpath import enrich as enrich_module
from musicnft.hotpath.normalize_x import normalize_x_line
from musicnft.hotpath.vader_fast import FastVader
from musicnft.settings import DEFAULT_KEYWORDS


def sample_posts(lines: int, seed: int = 99) -> list[dict]:
    matcher = KeywordMatcher(DEFAULT_KEYWORDS)
    now = datetime.now(UTC)
    posts = []
    for line in generate_lines(lines, seed=seed):
        try:
            posts.append(dict(normalize_x_line(line, matcher, now)))
        except Exception:  # malformed lines are part of the generated load
            continue
    return posts


def cpu_rate(items: list, fn: Callable[[Any], object]) -> float:
    """Items per second of CPU time for `fn` over `items`, each result dropped at once (as the
    consumer does once a batch is written)."""
    start = time.process_time()
    for item in items:
        fn(item)
    return len(items) / (time.process_time() - start)


def main(lines: int = 100_000, rounds: int = 5) -> float:
    """Prints the rates and returns enrich's rate over bare VADER's."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    t = time.perf_counter()
    posts = sample_posts(lines)
    texts = [p["text"] for p in posts]
    print(
        f"enrichment: {len(posts):,} posts from {lines:,} generated lines "
        f"({len(set(texts)):,} distinct texts) in {time.perf_counter() - t:.0f}s",
        flush=True,
    )
    polarity_scores = SentimentIntensityAnalyzer().polarity_scores
    ratios = []
    fast_ratios = []
    for _ in range(rounds):
        vader = cpu_rate(texts, polarity_scores)
        enrich_module.reset_scorer()  # cold: empty text cache and token memo
        enrich = cpu_rate(posts, enrich_module.enrich)
        fast = cpu_rate(texts, FastVader().polarity)
        ratios.append(enrich / vader)
        fast_ratios.append(fast / vader)
        print(
            f"  round: bare VADER {vader:9,.0f}/s   enrich {enrich:9,.0f}/s   "
            f"FastVader.polarity {fast:9,.0f}/s",
            flush=True,
        )
    ratio = statistics.median(ratios)
    print(
        f"enrich (from cold)  ratio to bare VADER baseline (same texts, same round): "
        f"{ratio:.2f} median of {rounds} rounds (min {min(ratios):.2f}, max {max(ratios):.2f}; "
        f"FastVader.polarity alone {statistics.median(fast_ratios):.2f}; CPU time)"
    )
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.enrichment", description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    main(args.lines, args.rounds)
