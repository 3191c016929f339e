"""Reading the sentiment model's artifacts: `model.tar.gz` (SageMaker's layout) and the promotion
pointer, with the standard library only (the Lambda and the endpoint read them).

Layout in the lake (DESIGN.md): `models/sentiment/<version>/model.tar.gz`, holding at its root
`model.json` (the weights, `sentiment_model.SentimentModel`) and `model_card.json`; SageMaker
unpacks it into `/opt/ml/model`. `models/sentiment/promoted.json` names the version the consumer
and the endpoint use: `{"version", "key", "promoted_at", ...}`.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
from pathlib import Path
from typing import Any

from musicnft.contract.lake_layout import MODELS_PREFIX, model_key
from musicnft.hotpath.sentiment_model import ModelFormatError, SentimentModel
from musicnft.ports import Lake

log = logging.getLogger("musicnft.model")

MODEL_NAME = "sentiment"
MODEL_FILE = "model.json"
CARD_FILE = "model_card.json"
PROMOTED_KEY = f"{MODELS_PREFIX}{MODEL_NAME}/promoted.json"


def read_artifact(data: bytes) -> tuple[SentimentModel, dict[str, Any]]:
    """A model.tar.gz's bytes → the model and its card."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            files = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
            if MODEL_FILE not in files:
                raise ModelFormatError(f"model.tar.gz has no {MODEL_FILE} at its root")
            model_fh = tar.extractfile(files[MODEL_FILE])
            assert model_fh is not None
            model = SentimentModel.loads(model_fh.read())
            card: dict[str, Any] = {}
            if CARD_FILE in files:
                card_fh = tar.extractfile(files[CARD_FILE])
                assert card_fh is not None
                card = json.loads(card_fh.read())
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ModelFormatError(f"not a readable model.tar.gz: {exc}") from None
    return model, card


def load_model_dir(directory: Path) -> SentimentModel:
    """The model SageMaker unpacked into `directory` (`/opt/ml/model`), or a model.tar.gz in it."""
    path = directory / MODEL_FILE
    if path.is_file():
        return SentimentModel.loads(path.read_bytes())
    tar = directory / "model.tar.gz"
    if tar.is_file():
        return read_artifact(tar.read_bytes())[0]
    raise FileNotFoundError(f"no {MODEL_FILE} (or model.tar.gz) in {directory}")


def read_pointer(lake: Lake) -> dict[str, Any] | None:
    """The promotion pointer, or None when no model was ever promoted."""
    try:
        doc = json.loads(lake.get(PROMOTED_KEY))
    except FileNotFoundError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("version"), str):
        raise ModelFormatError(f"{PROMOTED_KEY} does not name a version: {doc!r}")
    return doc


def load_promoted(lake: Lake) -> SentimentModel | None:
    """The promoted model from the lake, or None when there is none yet."""
    pointer = read_pointer(lake)
    if pointer is None:
        return None
    key = pointer.get("key") or model_key(pointer["version"], MODEL_NAME)
    model, _card = read_artifact(lake.get(key))
    if model.version != pointer["version"]:
        raise ModelFormatError(
            f"{key} holds version {model.version}, the pointer names {pointer['version']}"
        )
    log.info("sentiment model %s loaded from %s", model.version, key)
    return model
