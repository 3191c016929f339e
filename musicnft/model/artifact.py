"""Writing the sentiment model's versioned artifacts and the promotion pointer.

`model.tar.gz` (SageMaker's layout: `model.json` and `model_card.json` at the root, unpacked to
`/opt/ml/model`) under `models/sentiment/<version>/`. The tarball is byte-for-byte reproducible
apart from the card's `created_at`: members sorted, fixed mode and mtime, gzip without a timestamp.
"""

from __future__ import annotations

import gzip
import io
import json
import platform
import tarfile
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from typing import Any

from musicnft.contract.lake_layout import model_key
from musicnft.hotpath.model_artifact import CARD_FILE, MODEL_FILE, MODEL_NAME, PROMOTED_KEY
from musicnft.model.gold import GOLD_SOURCE
from musicnft.model.train import TrainResult, config_dict
from musicnft.ports import Lake

LIBRARIES = ("scikit-learn", "numpy", "scipy", "vaderSentiment")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        out[name] = dist_version(name)
    return out


def model_card(result: TrainResult, gold_sha256: str, created_at: datetime) -> dict[str, Any]:
    """What the model is, what it was trained on and how it scored, beside VADER."""
    return {
        "name": MODEL_NAME,
        "version": result.model.version,
        "created_at": created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "model": (
            "ridge regression of the mean human rating / 4 on tf-idf word 1-2-grams and char "
            "3-5-grams plus VADER 3.3.2's compound/pos/neg/neu; score clipped to [-1, 1]; "
            "positive > 0.125, negative < -0.125"
        ),
        "training_data": {
            "labelled": GOLD_SOURCE,
            "labelled_sha256": gold_sha256,
            "labelled_rows": result.labelled_rows,
            "train_rows": result.train_rows,
            "held_out_rows": result.held_out["rows"],
            "unlabelled_lake_posts": result.unlabelled_rows,
            "pseudo_labelled_posts": result.fitted.pseudo_labelled,
        },
        "config": config_dict(result.config),
        "features": len(result.model.weights),
        "metrics": result.card_metrics(),
        "vader_metrics": {
            "held_out": result.held_out["vader"],
            "cross_validation": (result.cross_validation or {}).get("vader"),
        },
        "libraries": library_versions(),
    }


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def build_tarball(model_json: dict[str, Any], card: dict[str, Any]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _member(tar, CARD_FILE, json.dumps(card, indent=2, sort_keys=True).encode())
        _member(tar, MODEL_FILE, json.dumps(model_json, separators=(",", ":")).encode())
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def write_artifact(
    lake: Lake, result: TrainResult, gold_sha256: str, created_at: datetime | None = None
) -> tuple[str, dict[str, Any]]:
    """Write `models/sentiment/<version>/model.tar.gz`; returns its key and the card."""
    card = model_card(result, gold_sha256, created_at or datetime.now(UTC))
    key = model_key(result.model.version, MODEL_NAME)
    lake.put(key, build_tarball(result.model.to_json(), card))
    return key, card


def promote(lake: Lake, version: str, card: dict[str, Any], now: datetime | None = None) -> str:
    """Point the consumer and the endpoint at `version` (one small object, replaced whole)."""
    pointer = {
        "version": version,
        "key": model_key(version, MODEL_NAME),
        "promoted_at": (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "held_out": card.get("metrics", {}).get("held_out"),
    }
    lake.put(PROMOTED_KEY, json.dumps(pointer, indent=2).encode())
    return PROMOTED_KEY
