"""Fit and evaluate the sentiment model: pure functions of the labelled tweets, the lake's posts
and a seed (same inputs, same weights).

The model (scikit-learn): tf-idf word and character n-grams (`sentiment_model.analyze`) and
VADER's four scores, into a ridge regression of the mean human rating / 4. The lake's unlabelled
posts adapt it to this field in two ways: the vectorizer's vocabulary and idf are fitted on them
too, and self-training adds the posts the first fit scores confidently (|score| ≥
`pseudo_threshold`) as pseudo-labelled rows with a small weight, then fits again.

Evaluation, side by side with VADER on the same rows: a stratified held-out split (the exported
model is the one fitted on the rest, so its held-out figures are its own) and stratified 5-fold
cross-validation; Pearson r with the mean human rating and 3-class macro-F1 (human mean > 0.5
positive, < -0.5 negative; VADER labels by its ±0.05 convention, the model by ±0.125 on its
[-1, 1] scale, i.e. ±0.5 human).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from musicnft.hotpath.enrich import sentiment_label, sentiment_scores
from musicnft.hotpath.sentiment_model import (
    DENSE_FEATURES,
    SentimentModel,
    analyze,
    dense_features,
    label,
)
from musicnft.model.gold import Labelled

CLASSES = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 15
    alpha: float = 1.0
    test_fraction: float = 0.2
    folds: int = 5
    min_df: int = 2
    self_training: bool = True
    pseudo_threshold: float = 0.35
    pseudo_weight: float = 0.3
    max_unlabelled: int = 20_000


def gold_class(rating: float) -> str:
    """The issue's 3 classes of a mean human rating (-4..+4)."""
    return "positive" if rating > 0.5 else "negative" if rating < -0.5 else "neutral"


def vader_of(text: str) -> tuple[float, float, float, float]:
    """VADER's (neg, neu, pos, compound), as the hot path's enrichment computes them."""
    s = sentiment_scores(text)
    assert s is not None  # texts are strings
    return (s["neg"], s["neu"], s["pos"], s["compound"])


def _dense(texts: Sequence[str]) -> sp.csr_matrix:
    rows = [dense_features(vader_of(t)) for t in texts]
    return sp.csr_matrix(np.asarray(rows, dtype=np.float64).reshape(len(rows), len(DENSE_FEATURES)))


@dataclass
class Fitted:
    """The scikit-learn objects of one fit, and how many pseudo-labelled posts went into it."""

    vectorizer: TfidfVectorizer
    ridge: Ridge
    pseudo_labelled: int = 0

    def features(self, texts: Sequence[str]) -> sp.csr_matrix:
        return sp.hstack([self.vectorizer.transform(texts), _dense(texts)], format="csr")

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """scikit-learn's prediction (unclipped), the reference the exported scorer must match."""
        if not texts:
            return np.zeros(0)
        return np.asarray(self.ridge.predict(self.features(texts)), dtype=np.float64)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return np.clip(self.predict(texts), -1.0, 1.0)

    def export(self, version: str) -> SentimentModel:
        """The weights as the stdlib scorer reads them: every n-gram of the vocabulary, those
        with a zero coefficient too (they still count in each text's L2 norm)."""
        names = self.vectorizer.get_feature_names_out()
        idf = self.vectorizer.idf_
        n = len(names)
        coef = np.asarray(self.ridge.coef_, dtype=np.float64)
        weights = {str(names[i]): (float(idf[i]), float(coef[i])) for i in range(n)}
        return SentimentModel(
            version=version,
            weights=weights,
            dense_coef=tuple(float(c) for c in coef[n:]),
            intercept=float(self.ridge.intercept_),
        )


def _ridge(alpha: float) -> Ridge:
    # sparse_cg is deterministic (no random state) and handles the sparse features directly.
    return Ridge(alpha=alpha, solver="sparse_cg", tol=1e-6, max_iter=2_000)


def fit(
    texts: Sequence[str],
    targets: Sequence[float],
    unlabelled: Sequence[str],
    config: TrainConfig,
) -> Fitted:
    """Fit on labelled texts (targets on [-1, 1]) adapted by the unlabelled ones (docstring)."""
    vectorizer = TfidfVectorizer(
        analyzer=analyze, sublinear_tf=True, min_df=config.min_df, dtype=np.float64
    )
    vectorizer.fit([*texts, *unlabelled])
    fitted = Fitted(vectorizer, _ridge(config.alpha))
    x = fitted.features(texts)
    y = np.asarray(targets, dtype=np.float64)
    fitted.ridge.fit(x, y)
    if config.self_training and unlabelled:
        xu = fitted.features(unlabelled)
        pu = np.clip(fitted.ridge.predict(xu), -1.0, 1.0)
        confident = np.flatnonzero(np.abs(pu) >= config.pseudo_threshold)
        if len(confident):
            weights = np.concatenate(
                [np.ones(len(y)), np.full(len(confident), config.pseudo_weight)]
            )
            fitted.ridge = _ridge(config.alpha).fit(
                sp.vstack([x, xu[confident]], format="csr"),
                np.concatenate([y, pu[confident]]),
                sample_weight=weights,
            )
            fitted.pseudo_labelled = len(confident)
    return fitted


def metrics(
    scores: Sequence[float], labels: Sequence[str], ratings: Sequence[float]
) -> dict[str, float]:
    """Pearson r with the mean human rating, and 3-class macro-F1 against the gold classes."""
    truth = [gold_class(r) for r in ratings]
    r = float(np.corrcoef(np.asarray(scores, dtype=np.float64), np.asarray(ratings))[0, 1])
    f1 = float(f1_score(truth, list(labels), labels=list(CLASSES), average="macro"))
    return {"pearson_r": round(r, 4), "macro_f1": round(f1, 4)}


def side_by_side(fitted: Fitted, texts: Sequence[str], ratings: Sequence[float]) -> dict[str, Any]:
    scores = [float(s) for s in fitted.scores(texts)]
    compounds = [vader_of(t)[3] for t in texts]
    return {
        "rows": len(texts),
        "model": metrics(scores, [label(s) for s in scores], ratings),
        "vader": metrics(compounds, [str(sentiment_label(c)) for c in compounds], ratings),
    }


@dataclass
class TrainResult:
    fitted: Fitted
    model: SentimentModel
    held_out: dict[str, Any]
    cross_validation: dict[str, Any] | None
    config: TrainConfig
    labelled_rows: int
    train_rows: int
    unlabelled_rows: int
    test_ids: list[str] = field(default_factory=list)

    def card_metrics(self) -> dict[str, Any]:
        return {"held_out": self.held_out, "cross_validation": self.cross_validation}


def split(gold: Labelled, config: TrainConfig) -> tuple[list[int], list[int]]:
    """Stratified (by gold class) held-out split, fixed by the seed."""
    classes = [gold_class(r) for r in gold.ratings]
    train, test = train_test_split(
        list(range(len(gold))),
        test_size=config.test_fraction,
        random_state=config.seed,
        stratify=classes,
    )
    return sorted(train), sorted(test)


def cross_validate(
    gold: Labelled, unlabelled: Sequence[str], config: TrainConfig
) -> dict[str, Any]:
    """Stratified k-fold: each fold's figures for the model and VADER, and their mean and std."""
    classes = [gold_class(r) for r in gold.ratings]
    folds = StratifiedKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
    per_fold = []
    for train, test in folds.split(np.zeros(len(gold)), classes):
        fitted = fit(
            [gold.texts[i] for i in train],
            [gold.ratings[i] / 4 for i in train],
            unlabelled,
            config,
        )
        per_fold.append(
            side_by_side(fitted, [gold.texts[i] for i in test], [gold.ratings[i] for i in test])
        )
    summary: dict[str, Any] = {"folds": config.folds, "per_fold": per_fold}
    for who in ("model", "vader"):
        summary[who] = {
            m: {
                "mean": round(float(np.mean([f[who][m] for f in per_fold])), 4),
                "std": round(float(np.std([f[who][m] for f in per_fold])), 4),
            }
            for m in ("pearson_r", "macro_f1")
        }
    return summary


def select_unlabelled(texts: Sequence[str], config: TrainConfig) -> list[str]:
    """Distinct non-empty texts, at most `max_unlabelled`, chosen by the seed (sorted first, so
    the lake's listing order does not matter)."""
    distinct = sorted({t for t in texts if isinstance(t, str) and t.strip()})
    if len(distinct) <= config.max_unlabelled:
        return distinct
    rng = np.random.default_rng(config.seed)
    keep = np.sort(rng.choice(len(distinct), size=config.max_unlabelled, replace=False))
    return [distinct[i] for i in keep]


def weights_version(model: SentimentModel) -> str:
    """A version named by the weights themselves: the same training gives the same version."""
    doc = model.to_json()
    doc["version"] = ""
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    return f"s{digest[:12]}"


def train(
    gold: Labelled,
    unlabelled: Sequence[str],
    config: TrainConfig | None = None,
    cv: bool = True,
) -> TrainResult:
    """Fit on the training split (+ the lake's posts), evaluate on the held-out split and, with
    `cv`, by k-fold; export the weights under a version derived from them."""
    config = config or TrainConfig()
    pool = select_unlabelled(unlabelled, config)
    train_idx, test_idx = split(gold, config)
    fitted = fit(
        [gold.texts[i] for i in train_idx],
        [gold.ratings[i] / 4 for i in train_idx],
        pool,
        config,
    )
    held_out = side_by_side(
        fitted, [gold.texts[i] for i in test_idx], [gold.ratings[i] for i in test_idx]
    )
    model = fitted.export("")
    model = SentimentModel(weights_version(model), model.weights, model.dense_coef, model.intercept)
    return TrainResult(
        fitted=fitted,
        model=model,
        held_out=held_out,
        cross_validation=cross_validate(gold, pool, config) if cv else None,
        config=config,
        labelled_rows=len(gold),
        train_rows=len(train_idx),
        unlabelled_rows=len(pool),
        test_ids=[gold.ids[i] for i in test_idx],
    )


def beats_vader(held_out: dict[str, Any]) -> tuple[bool, str]:
    """Whether the model beats VADER on the held-out split: higher Pearson r and macro-F1."""
    m, v = held_out["model"], held_out["vader"]
    ok = m["pearson_r"] > v["pearson_r"] and m["macro_f1"] > v["macro_f1"]
    why = (
        f"model r={m['pearson_r']:.4f} F1={m['macro_f1']:.4f} vs VADER "
        f"r={v['pearson_r']:.4f} F1={v['macro_f1']:.4f} on {held_out['rows']} held-out tweets"
    )
    return ok, why


def config_dict(config: TrainConfig) -> dict[str, Any]:
    return asdict(config)
