"""Pure insight aggregates (issue 18): who is talked about per window, and what is spiking.

`entity_metrics` turns a window's posts into one `entity_metrics_15m` row per mentioned entity.
`score_spikes` compares each key's count in a window with the same key's trailing 7 days:

- **baseline** = the median count of the key over the history windows (windows the pipeline
  processed in the 7 days before this one; a window where the key did not occur counts 0);
- **spread** = 1.4826 × MAD (median absolute deviation: the standard deviation of a normal
  series, but one outlier burst cannot inflate it), floored at √max(baseline, 1) (Poisson
  noise: a key flat at 10 posts a window still wobbles by about 3);
- **score** = (count − baseline) / spread, a robust z-score;
- **is_spike** when score ≥ 3.5 (the usual cut-off for modified z-scores), count ≥ 5 posts and
  count ≥ 2 × baseline.

Fallback while history is short: with fewer than `MIN_HISTORY_WINDOWS` (16, four hours) history
windows the baseline and score are still computed from what there is (baseline 0 with none), but
nothing is flagged: on a cold start every key would look new.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from musicnft.batch.aggregates import INT64_MAX
from musicnft.hotpath.enrich import total_engagement

Row = dict[str, Any]

DIMENSIONS = ("keyword", "entity", "hashtag")
HISTORY = timedelta(days=7)
MIN_HISTORY_WINDOWS = 16
MIN_SPIKE_POSTS = 5
SPIKE_SCORE = 3.5
SPIKE_RATIO = 2.0
MAD_TO_SIGMA = 1.4826


def entity_metrics(
    posts: Sequence[Mapping[str, Any]], window: datetime, updated_at: datetime
) -> list[Row]:
    """One row per entity mentioned in the window's posts (most posts first, then by id)."""
    by_entity: dict[str, list[Mapping[str, Any]]] = {}
    for post in posts:
        for entity in dict.fromkeys(post.get("entities") or []):
            by_entity.setdefault(entity, []).append(post)
    rows = []
    for entity, group in by_entity.items():
        sentiments = [
            p["sentiment_compound"] for p in group if p.get("sentiment_compound") is not None
        ]
        labels = Counter(p.get("sentiment_label") for p in group)
        rows.append(
            {
                "window_start": window,
                "entity": entity,
                "post_count": len(group),
                "unique_authors": len({p.get("author_id") for p in group if p.get("author_id")}),
                "avg_sentiment": sum(sentiments) / len(sentiments) if sentiments else None,
                "positive_count": labels.get("positive", 0),
                "neutral_count": labels.get("neutral", 0),
                "negative_count": labels.get("negative", 0),
                "total_engagement": min(sum(total_engagement(p) for p in group), INT64_MAX),
                "updated_at": updated_at,
            }
        )
    return sorted(rows, key=lambda r: (-r["post_count"], r["entity"]))


@dataclass(frozen=True)
class Score:
    baseline: float
    score: float
    is_spike: bool


def score_count(count: int, history: Sequence[int]) -> Score:
    """The robust baseline, score and verdict for `count` against `history` (module docstring)."""
    if not history:
        return Score(0.0, float(count), False)
    baseline = float(statistics.median(history))
    mad = float(statistics.median(abs(x - baseline) for x in history))
    spread = max(MAD_TO_SIGMA * mad, math.sqrt(max(baseline, 1.0)))
    score = (count - baseline) / spread
    is_spike = (
        len(history) >= MIN_HISTORY_WINDOWS
        and count >= MIN_SPIKE_POSTS
        and score >= SPIKE_SCORE
        and count >= SPIKE_RATIO * baseline
    )
    return Score(baseline, round(score, 4), is_spike)


def score_spikes(
    window: datetime,
    current: Mapping[tuple[str, str], int],
    history: Mapping[tuple[str, str], Mapping[datetime, int]],
    history_windows: Iterable[datetime],
    updated_at: datetime,
) -> list[Row]:
    """`spikes_15m` rows for the window: one per (dimension, key) of `current`.

    `history[(dimension, key)]` maps earlier windows to the key's count there; `history_windows`
    are the windows of the trailing 7 days the pipeline processed (a key absent there counts 0).
    """
    windows = sorted({w for w in history_windows if window - HISTORY <= w < window})
    rows = []
    for (dimension, key), count in current.items():
        seen = history.get((dimension, key), {})
        series = [int(seen.get(w, 0)) for w in windows]
        s = score_count(int(count), series)
        rows.append(
            {
                "window_start": window,
                "dimension": dimension,
                "key": key,
                "post_count": int(count),
                "baseline": s.baseline,
                "score": s.score,
                "is_spike": s.is_spike,
                "updated_at": updated_at,
            }
        )
    order = {d: i for i, d in enumerate(DIMENSIONS)}
    return sorted(rows, key=lambda r: (order.get(r["dimension"], 9), -r["post_count"], r["key"]))
