"""The trained sentiment model's scorer: features and a linear model, in plain Python.

The model is fitted with scikit-learn (`musicnft.model.train`) and exported as weights in JSON
(`model.json`); this module scores with those weights and nothing but the standard library, so
the Lambda bundle (which carries no numpy) and the endpoint use the same small code, and a test
checks it gives scikit-learn's predictions within 1e-6.

Features, the same at training and scoring time (`analyze` is the vectorizer's analyzer):
- word unigrams and bigrams and character 3-5-grams inside each whitespace token (lower-cased,
  URLs and @mentions replaced by placeholders, the first `MAX_CHARS` characters), tf-idf weighted
  with sublinear tf and L2-normalized, as scikit-learn's `TfidfVectorizer(sublinear_tf=True)`;
- VADER 3.3.2's compound, pos, neg and neu (the hot path has them already; see `enrich`).

The score is the linear model's prediction of the mean human rating divided by 4, clipped to
[-1, 1]; its label is positive above +0.125 and negative below -0.125 (a mean human rating of
±0.5, the issue's 3-class definition).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

FORMAT = "musicnft-sentiment-linear"
FORMAT_VERSION = 1
MAX_CHARS = 1_000  # longer texts are scored on their beginning (X allows 25,000 characters)
CHAR_NGRAMS = (3, 4, 5)
DENSE_FEATURES = ("vader_compound", "vader_pos", "vader_neg", "vader_neu")
POSITIVE_ABOVE = 0.125  # a mean human rating above +0.5, on the [-1, 1] scale
NEGATIVE_BELOW = -0.125
TOKEN_MEMO_SIZE = 65_536  # whitespace tokens whose features are remembered (then it starts over)

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_TOKEN = re.compile(r"[a-z0-9_']+|[^\sa-z0-9_']+")

Vader = Sequence[float]  # VADER's (neg, neu, pos, compound), as enrich's scorer returns them


def normalize_text(text: str) -> str:
    lower = text[:MAX_CHARS].lower()
    return _MENTION.sub("@user", _URL.sub(" url ", lower))


def analyze(text: str) -> list[str]:
    """A text's n-gram features (the vectorizer's analyzer at training time, the scorer's now)."""
    lower = normalize_text(text)
    words = _TOKEN.findall(lower)
    feats = ["w " + w for w in words]
    feats += ["b " + a + " " + b for a, b in pairwise(words)]
    for token in lower.split():
        padded = " " + token + " "
        size = len(padded)
        for n in CHAR_NGRAMS:
            feats += [padded[i : i + n] for i in range(size - n + 1)]
    return feats


def dense_features(vader: Vader) -> tuple[float, float, float, float]:
    """VADER's scores in `DENSE_FEATURES` order."""
    neg, neu, pos, compound = vader
    return (compound, pos, neg, neu)


def label(score: float) -> str:
    if score > POSITIVE_ABOVE:
        return "positive"
    if score < NEGATIVE_BELOW:
        return "negative"
    return "neutral"


class ModelFormatError(ValueError):
    """A model.json that is not this scorer's format (or is damaged); the message says why."""


@dataclass(frozen=True)
class SentimentModel:
    """A fitted model as weights: per n-gram (idf, coefficient), the dense coefficients and the
    intercept. `score_text` needs VADER's scores, which the caller has (or computes)."""

    version: str
    weights: Mapping[str, tuple[float, float]]  # feature -> (idf, coefficient)
    dense_coef: tuple[float, ...]
    intercept: float
    _memo: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def raw(self, text: str, vader: Vader) -> float:
        """The linear model's prediction, unclipped (what scikit-learn's predict gives).

        The same features as `analyze`, gathered per whitespace token through a memo (a token's
        words and its in-vocabulary unigram and character features), since tokens repeat a lot:
        `analyze`'s patterns never cross whitespace, so the concatenation is the same list."""
        weights = self.weights
        memo = self._memo
        words: list[str] = []
        feats: list[str] = []
        for token in normalize_text(text).split():
            entry = memo.get(token)
            if entry is None:
                entry = self._token_features(token)
            words += entry[0]
            feats += entry[1]
        for i in range(len(words) - 1):
            bigram = "b " + words[i] + " " + words[i + 1]
            if bigram in weights:
                feats.append(bigram)
        sq = 0.0
        dot = 0.0
        for feat, count in Counter(feats).items():
            idf, coef = weights[feat]
            tfidf = (1.0 + math.log(count)) * idf if count > 1 else idf
            sq += tfidf * tfidf
            dot += tfidf * coef
        value = dot / math.sqrt(sq) if sq > 0.0 else 0.0
        for x, c in zip(dense_features(vader), self.dense_coef, strict=True):
            value += x * c
        return value + self.intercept

    def _token_features(self, token: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        weights = self.weights
        words = tuple(_TOKEN.findall(token))
        padded = " " + token + " "
        size = len(padded)
        feats = [f for f in ("w " + w for w in words) if f in weights]
        for n in CHAR_NGRAMS:
            feats += [g for g in (padded[i : i + n] for i in range(size - n + 1)) if g in weights]
        entry = (words, tuple(feats))
        if len(self._memo) >= TOKEN_MEMO_SIZE:
            self._memo.clear()
        self._memo[token] = entry
        return entry

    def score_text(self, text: str, vader: Vader) -> float:
        return min(1.0, max(-1.0, self.raw(text, vader)))

    def predict(self, text: str, vader: Vader) -> tuple[float, str]:
        score = self.score_text(text, vader)
        return score, label(score)

    # ---- serialization (model.json)

    def to_json(self) -> dict[str, Any]:
        features = sorted(self.weights)
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "analyzer": {"max_chars": MAX_CHARS, "char_ngrams": list(CHAR_NGRAMS)},
            "dense_features": list(DENSE_FEATURES),
            "dense_coef": list(self.dense_coef),
            "intercept": self.intercept,
            "labels": {"positive_above": POSITIVE_ABOVE, "negative_below": NEGATIVE_BELOW},
            "features": features,
            "idf": [self.weights[f][0] for f in features],
            "coef": [self.weights[f][1] for f in features],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SentimentModel:
        if doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
            raise ModelFormatError(
                f"not a {FORMAT} v{FORMAT_VERSION} model: format={doc.get('format')!r} "
                f"version={doc.get('format_version')!r}"
            )
        analyzer = doc.get("analyzer") or {}
        if analyzer.get("max_chars") != MAX_CHARS or tuple(
            analyzer.get("char_ngrams") or ()
        ) != tuple(CHAR_NGRAMS):
            raise ModelFormatError(f"model was fitted with another analyzer: {analyzer!r}")
        if tuple(doc.get("dense_features") or ()) != DENSE_FEATURES:
            raise ModelFormatError(f"unexpected dense features {doc.get('dense_features')!r}")
        features, idf, coef = doc["features"], doc["idf"], doc["coef"]
        if not len(features) == len(idf) == len(coef):
            raise ModelFormatError("features, idf and coef differ in length")
        return cls(
            version=str(doc["version"]),
            weights={f: (float(i), float(c)) for f, i, c in zip(features, idf, coef, strict=True)},
            dense_coef=tuple(float(c) for c in doc["dense_coef"]),
            intercept=float(doc["intercept"]),
        )

    @classmethod
    def loads(cls, data: bytes | str) -> SentimentModel:
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise ModelFormatError(f"model.json is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ModelFormatError("model.json is not a JSON object")
        try:
            return cls.from_json(doc)
        except (KeyError, TypeError) as exc:
            raise ModelFormatError(f"model.json lacks or mistypes {exc}") from None
