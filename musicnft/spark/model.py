"""Which sentiment model the job scores with: `--model VERSION`, else the lake's promoted one
(`models/sentiment/promoted.json`), read with the hot path's own artifact reader."""

from __future__ import annotations

import json
from typing import cast

from musicnft.contract.lake_layout import model_key
from musicnft.hotpath.model_artifact import MODEL_NAME, load_promoted, read_artifact
from musicnft.hotpath.sentiment_model import ModelFormatError
from musicnft.ports import Lake
from musicnft.spark.lake_fs import LakeRoot
from musicnft.spark.layout import check_version


def resolve_model(lake: LakeRoot, version: str | None) -> tuple[str | None, bytes | None]:
    """(version, model.json bytes), or (None, None) when no model was ever promoted (the model
    columns stay null, as in the hot path without a model)."""
    if version is not None:
        key = model_key(check_version(version), MODEL_NAME)
        try:
            model, _card = read_artifact(lake.get(key))
        except FileNotFoundError:
            raise FileNotFoundError(f"no model artifact {key} in the lake") from None
        if model.version != version:
            raise ModelFormatError(f"{key} holds version {model.version}, not {version}")
    else:
        promoted = load_promoted(cast(Lake, lake))
        if promoted is None:
            return None, None
        model = promoted
    return model.version, json.dumps(model.to_json(), separators=(",", ":")).encode()
