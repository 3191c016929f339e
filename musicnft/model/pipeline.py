"""The model's steps over the lake, shared by the Dagster assets and `musicnft model train`:
training set → candidate model (artifact + card) → `beats_vader` → evaluation → promotion.

The candidate is named by `models/sentiment/candidate.json`; promotion copies it into
`promoted.json` only when it beats VADER on the held-out split.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from musicnft.contract.lake_layout import MODELS_PREFIX, model_key
from musicnft.hotpath.model_artifact import MODEL_NAME, read_artifact
from musicnft.model.artifact import promote, write_artifact
from musicnft.model.train import (
    TrainConfig,
    TrainResult,
    beats_vader,
    metrics,
    split,
    train,
    vader_of,
)
from musicnft.model.training_set import TrainingSet
from musicnft.ports import Lake

log = logging.getLogger("musicnft.model")

CANDIDATE_KEY = f"{MODELS_PREFIX}{MODEL_NAME}/candidate.json"


def evaluation_key(version: str) -> str:
    return f"{MODELS_PREFIX}{MODEL_NAME}/{version}/evaluation.json"


@dataclass(frozen=True)
class Candidate:
    version: str
    key: str
    card: dict[str, Any]
    result: TrainResult | None = None


def train_candidate(
    lake: Lake,
    training: TrainingSet,
    config: TrainConfig | None = None,
    cv: bool = True,
    now: datetime | None = None,
) -> Candidate:
    """Fit, evaluate, write the artifact and name it the candidate."""
    result = train(training.gold, training.unlabelled, config, cv=cv)
    key, card = write_artifact(lake, result, training.gold.sha256, now)
    lake.put(
        CANDIDATE_KEY, json.dumps({"version": result.model.version, "key": key}, indent=2).encode()
    )
    ok, why = beats_vader(result.held_out)
    log.info("candidate %s written to %s (%s; beats VADER: %s)", result.model.version, key, why, ok)
    return Candidate(result.model.version, key, card, result)


def read_candidate(lake: Lake) -> Candidate:
    pointer = json.loads(lake.get(CANDIDATE_KEY))
    key = pointer.get("key") or model_key(pointer["version"], MODEL_NAME)
    _model, card = read_artifact(lake.get(key))
    return Candidate(pointer["version"], key, card)


def check_candidate(candidate: Candidate) -> tuple[bool, str]:
    """`beats_vader` on the card's held-out figures."""
    return beats_vader(candidate.card["metrics"]["held_out"])


def evaluate_artifact(lake: Lake, training: TrainingSet, candidate: Candidate) -> dict[str, Any]:
    """Score the held-out tweets with the exported artifact (the stdlib scorer the consumer and
    endpoint run, not the scikit-learn objects), side by side with VADER, next to the card's
    cross-validation; written as `models/sentiment/<version>/evaluation.json`."""
    model, card = read_artifact(lake.get(candidate.key))
    config = TrainConfig(**card["config"])
    _train_idx, test_idx = split(training.gold, config)
    texts = [training.gold.texts[i] for i in test_idx]
    ratings = [training.gold.ratings[i] for i in test_idx]
    vaders = [vader_of(t) for t in texts]
    predictions = [model.predict(t, v) for t, v in zip(texts, vaders, strict=True)]
    evaluation = {
        "version": model.version,
        "held_out": {
            "rows": len(texts),
            "model": metrics([p[0] for p in predictions], [p[1] for p in predictions], ratings),
            "vader": card["metrics"]["held_out"]["vader"],
        },
        "held_out_sklearn": card["metrics"]["held_out"]["model"],
        "cross_validation": card["metrics"].get("cross_validation"),
    }
    lake.put(evaluation_key(model.version), json.dumps(evaluation, indent=2).encode())
    return evaluation


def promote_candidate(lake: Lake, candidate: Candidate) -> str:
    ok, why = check_candidate(candidate)
    if not ok:
        raise ValueError(f"candidate {candidate.version} does not beat VADER: {why}")
    key = promote(lake, candidate.version, candidate.card)
    log.info("promoted sentiment model %s", candidate.version)
    return key


def results_table(evaluation: dict[str, Any]) -> str:
    """The evaluation as a Markdown table (the README's and the Dagster UI's)."""
    ho = evaluation["held_out"]
    cv = evaluation.get("cross_validation")
    lines = [
        "| evaluation | rows | model r | VADER r | model macro-F1 | VADER macro-F1 |",
        "|---|---|---|---|---|---|",
        f"| held-out split | {ho['rows']} | {ho['model']['pearson_r']:.3f} | "
        f"{ho['vader']['pearson_r']:.3f} | {ho['model']['macro_f1']:.3f} | "
        f"{ho['vader']['macro_f1']:.3f} |",
    ]
    if cv:
        m, v = cv["model"], cv["vader"]
        rows = sum(f["rows"] for f in cv["per_fold"])
        lines.append(
            f"| {cv['folds']}-fold CV (mean ± std) | {rows} | "
            f"{m['pearson_r']['mean']:.3f} ± {m['pearson_r']['std']:.3f} | "
            f"{v['pearson_r']['mean']:.3f} ± {v['pearson_r']['std']:.3f} | "
            f"{m['macro_f1']['mean']:.3f} ± {m['macro_f1']['std']:.3f} | "
            f"{v['macro_f1']['mean']:.3f} ± {v['macro_f1']['std']:.3f} |"
        )
    return "\n".join(lines)
