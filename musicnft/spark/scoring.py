"""What each executor runs: a post's VADER compound and the promoted model's score, with the very
functions the hot path uses (`enrich.sentiment_scores`, `model_scoring.InProcessScoring`), so a
post scores the same in Spark, in the consumer and in the batch path.

Runs inside `mapInPandas`: the model is parsed from its JSON at most once per iterator (one
partition of one micro-batch), never per row, and kept by the worker while it stays the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from musicnft.hotpath.enrich import sentiment_scores
from musicnft.hotpath.model_scoring import InProcessScoring
from musicnft.hotpath.sentiment_model import SentimentModel

if TYPE_CHECKING:
    import pandas as pd

# The scoring function's output, before `scored_at` and the partition columns are added.
SCORED_DDL = (
    "post_id string, created_at timestamp, sentiment_compound double, model_score double, "
    "model_label string, model_version string"
)


def score_texts(
    texts: list[Any], model: SentimentModel | None
) -> tuple[list[float | None], list[tuple[float, str, str] | None]]:
    """VADER compounds and model results of `texts` (None where a text is not a string)."""
    vaders: list[tuple[float, float, float, float] | None] = []
    for text in texts:
        s = sentiment_scores(text)
        vaders.append(None if s is None else (s["neg"], s["neu"], s["pos"], s["compound"]))
    compounds = [None if v is None else v[3] for v in vaders]
    if model is None:
        return compounds, [None] * len(texts)
    return compounds, InProcessScoring(model).score(texts, vaders)


# Models parsed by this Python worker, by the digest of their JSON: Spark reuses its workers across
# tasks and micro-batches, so a model is parsed once per worker (at most once per iterator) and its
# token memo stays warm from one batch to the next.
_LOADED: dict[str, SentimentModel] = {}


def load_model(model_json: bytes) -> SentimentModel:
    key = hashlib.sha256(model_json).hexdigest()
    model = _LOADED.get(key)
    if model is None:
        _LOADED.clear()  # one model at a time per worker
        model = _LOADED[key] = SentimentModel.loads(model_json)
    return model


def score_frames(
    model_json: bytes | None,
) -> Callable[[Iterable[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The `mapInPandas` function: frames of (post_id, created_at, text) → SCORED_DDL frames."""

    def score(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        model = load_model(model_json) if model_json is not None else None
        for frame in frames:
            texts = [None if t is None or t is pd.NA else t for t in frame["text"].tolist()]
            compounds, results = score_texts(texts, model)
            yield pd.DataFrame(
                {
                    "post_id": frame["post_id"],
                    "created_at": frame["created_at"],
                    "sentiment_compound": pd.Series(compounds, dtype="float64"),
                    "model_score": pd.Series(
                        [None if r is None else r[0] for r in results], dtype="float64"
                    ),
                    "model_label": pd.Series(
                        [None if r is None else r[1] for r in results], dtype="object"
                    ),
                    "model_version": pd.Series(
                        [None if r is None else r[2] for r in results], dtype="object"
                    ),
                }
            )

    return score
