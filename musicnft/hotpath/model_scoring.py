"""The trained model's columns on posts_hot rows: `model_score`, `model_label`, `model_version`.

Two ways to score, chosen by the composition root (`wiring.model_scoring`) and installed once per
process (`install`); the consumer's `enrich_rows` calls `score_rows`:

- `InProcessScoring` (the default): the promoted artifact's weights, scored by the stdlib scorer
  with the VADER scores the row already has (tens of microseconds a post).
- `EndpointScoring` (`MUSICNFT_SENTIMENT_ENDPOINT=<name>`): the SageMaker endpoint, in batches of
  up to `ENDPOINT_BATCH` texts, each call with a timeout well under Lambda's. When a call fails
  (timeout, 5xx, a malformed answer) its rows keep VADER's columns only (model columns null),
  counted in `STATS` and logged; the batch path scores them again from the lake.

With nothing installed the model columns stay null (they are nullable: a process with no model
still writes every row).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from musicnft.hotpath.model_artifact import load_promoted, read_pointer
from musicnft.hotpath.sentiment_model import SentimentModel, label
from musicnft.ports import Lake

log = logging.getLogger("musicnft.model")

ENDPOINT_BATCH = 100  # texts per endpoint call (the endpoint takes up to 1,000)
Result = tuple[float, str, str] | None  # (score, label, version), or None: not scored


@dataclass
class ScoringStats:
    """Counters of this process (logged; the Lambda's logs are where CloudWatch counts them)."""

    scored: int = 0
    endpoint_calls: int = 0
    endpoint_failures: int = 0
    fallback_rows: int = 0  # rows left with VADER only because the endpoint failed

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


STATS = ScoringStats()


class Scoring(Protocol):
    def score(self, texts: Sequence[Any], vaders: Sequence[Any]) -> list[Result]: ...


@dataclass
class InProcessScoring:
    model: SentimentModel

    def score(self, texts: Sequence[Any], vaders: Sequence[Any]) -> list[Result]:
        out: list[Result] = []
        version = self.model.version
        for text, vader in zip(texts, vaders, strict=True):
            if not isinstance(text, str) or vader is None:
                out.append(None)
                continue
            score = self.model.score_text(text, vader)
            out.append((score, label(score), version))
        return out


_MODELS: dict[str, SentimentModel] = {}  # loaded models by version (a process loads each once)


@dataclass
class PromotedScoring:
    """The promoted model from the lake, in process. The pointer is read again at most every
    `recheck_seconds`, so a long-running consumer (or a warm Lambda) moves to a newly promoted
    model by itself; a lake that cannot be read keeps the model it had (or none)."""

    lake: Lake
    recheck_seconds: float = 60.0
    _model: SentimentModel | None = None
    _checked: float = -1e18

    def current(self) -> SentimentModel | None:
        now = time.monotonic()
        if now - self._checked < self.recheck_seconds:
            return self._model
        self._checked = now
        try:
            pointer = read_pointer(self.lake)
            if pointer is None:
                self._model = None
            elif pointer["version"] in _MODELS:
                self._model = _MODELS[pointer["version"]]
            else:
                model = load_promoted(self.lake)
                if model is not None:
                    _MODELS[model.version] = model
                self._model = model
        except Exception as exc:
            log.error(
                "promoted sentiment model could not be read (%s: %s); keeping %s",
                type(exc).__name__,
                str(exc)[:200],
                self._model.version if self._model else "no model",
            )
        return self._model

    def score(self, texts: Sequence[Any], vaders: Sequence[Any]) -> list[Result]:
        model = self.current()
        if model is None:
            return [None] * len(texts)
        return InProcessScoring(model).score(texts, vaders)


class EndpointError(RuntimeError):
    """The endpoint did not answer usably (timeout, error status, malformed answer)."""


Invoke = Callable[[bytes], bytes]  # request body → response body; raises on any failure


def parse_predictions(body: bytes, expected: int) -> tuple[list[tuple[float, str]], str]:
    """The endpoint's answer → (score, label) per instance, and the model version it reports."""
    try:
        doc = json.loads(body)
        predictions = doc["predictions"]
        pairs = [(float(p["score"]), str(p["label"])) for p in predictions]
    except (ValueError, TypeError, KeyError) as exc:
        raise EndpointError(f"malformed answer: {exc}") from None
    if len(pairs) != expected:
        raise EndpointError(f"answered {len(pairs)} predictions for {expected} instances")
    for score, name in pairs:
        if not -1.0 <= score <= 1.0 or name not in ("positive", "neutral", "negative"):
            raise EndpointError(f"prediction out of contract: {score!r}, {name!r}")
    return pairs, str(doc.get("model_version") or "endpoint")


@dataclass
class EndpointScoring:
    """Scores through the SageMaker endpoint; `invoke` sends one request (see wiring)."""

    invoke: Invoke
    name: str
    batch: int = ENDPOINT_BATCH
    stats: ScoringStats = field(default_factory=lambda: STATS)

    def score(self, texts: Sequence[Any], vaders: Sequence[Any]) -> list[Result]:
        out: list[Result] = [None] * len(texts)
        todo = [i for i, t in enumerate(texts) if isinstance(t, str)]
        for start in range(0, len(todo), self.batch):
            chunk = todo[start : start + self.batch]
            body = json.dumps({"instances": [texts[i] for i in chunk]}).encode()
            self.stats.endpoint_calls += 1
            try:
                pairs, version = parse_predictions(self.invoke(body), len(chunk))
            except Exception as exc:  # any failure: VADER-only rows, counted, never a lost batch
                self.stats.endpoint_failures += 1
                self.stats.fallback_rows += len(chunk)
                log.warning(
                    "sentiment endpoint %s failed for %d posts (%s: %s); they keep VADER's "
                    "scores only and the batch path scores them (fallback rows so far: %d)",
                    self.name,
                    len(chunk),
                    type(exc).__name__,
                    str(exc)[:200],
                    self.stats.fallback_rows,
                )
                continue
            for i, (score, name) in zip(chunk, pairs, strict=True):
                out[i] = (score, name, version)
        return out


_installed: Scoring | None = None


def install(scoring: Scoring | None) -> None:
    """Make `scoring` the process's model scoring (None: model columns stay null)."""
    global _installed
    _installed = scoring


def installed() -> Scoring | None:
    return _installed


def _vader(row: dict[str, Any]) -> tuple[float, float, float, float] | None:
    values = (
        row.get("sentiment_neg"),
        row.get("sentiment_neu"),
        row.get("sentiment_pos"),
        row.get("sentiment_compound"),
    )
    if any(v is None for v in values):
        return None
    return values  # type: ignore[return-value]


def score_rows(rows: list[dict[str, Any]], scoring: Scoring | None = None) -> list[dict[str, Any]]:
    """Fill the model columns of enriched rows in place (and return them); rows that cannot be
    scored keep them null."""
    scoring = scoring if scoring is not None else _installed
    for row in rows:
        row.setdefault("model_score", None)
        row.setdefault("model_label", None)
        row.setdefault("model_version", None)
    if scoring is None or not rows:
        return rows
    results = scoring.score([r.get("text") for r in rows], [_vader(r) for r in rows])
    for row, result in zip(rows, results, strict=True):
        if result is not None:
            row["model_score"], row["model_label"], row["model_version"] = result
            STATS.scored += 1
    return rows
