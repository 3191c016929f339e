"""The training set: the labelled tweets plus the lake's unlabelled posts (local or S3).

The posts' texts adapt the model to this field's vocabulary (see `train`). They are read from the
newest `raw/` drops back until `MAX_TEXTS_READ` texts, and stored, with the labelled file's hash,
as one object in the lake (`models/sentiment/training_set.json.gz`), so the model step (and a
re-run of it) trains on exactly what this step saw.
"""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import dataclass
from typing import Any

from musicnft.batch.lake_index import read_table, unreadable_reason
from musicnft.contract.lake_layout import MODELS_PREFIX, RAW_PREFIX
from musicnft.hotpath.model_artifact import MODEL_NAME
from musicnft.model.gold import Labelled, load_gold
from musicnft.ports import Lake

log = logging.getLogger("musicnft.model")

TRAINING_SET_KEY = f"{MODELS_PREFIX}{MODEL_NAME}/training_set.json.gz"
MAX_TEXTS_READ = 100_000  # newest lake posts read; training samples up to max_unlabelled of them


@dataclass(frozen=True)
class TrainingSet:
    gold: Labelled
    unlabelled: tuple[str, ...]
    lake_files: int

    def to_json(self) -> dict[str, Any]:
        return {
            "labelled_sha256": self.gold.sha256,
            "labelled_rows": len(self.gold),
            "lake_files": self.lake_files,
            "unlabelled": list(self.unlabelled),
        }


def lake_texts(lake: Lake, limit: int = MAX_TEXTS_READ) -> tuple[list[str], int]:
    """Texts of the newest lake posts (up to `limit`) and how many files were read; a file that
    cannot be read is logged and skipped (the batch path quarantines it)."""
    texts: list[str] = []
    files = 0
    for key in sorted((k for k in lake.list(RAW_PREFIX) if k.endswith(".parquet")), reverse=True):
        try:
            table = read_table(lake, key, ["text"])
        except Exception as exc:
            if unreadable_reason(exc) is None:
                raise
            log.warning("lake file %s skipped for training: %s", key, unreadable_reason(exc))
            continue
        files += 1
        texts.extend(t for t in table.column("text").to_pylist() if isinstance(t, str))
        if len(texts) >= limit:
            break
    return texts[:limit], files


def build_training_set(lake: Lake) -> TrainingSet:
    """Read the labelled file and the lake's posts, store them as the training set, return it."""
    texts, files = lake_texts(lake)
    training = TrainingSet(load_gold(), tuple(sorted(set(texts))), files)
    data = json.dumps(training.to_json(), ensure_ascii=False).encode()
    lake.put(TRAINING_SET_KEY, gzip.compress(data, mtime=0))
    log.info(
        "training set: %d labelled tweets, %d distinct lake posts from %d files",
        len(training.gold),
        len(training.unlabelled),
        files,
    )
    return training


def read_training_set(lake: Lake) -> TrainingSet:
    """The stored training set; the labelled file must be the one it was built with."""
    doc = json.loads(gzip.decompress(lake.get(TRAINING_SET_KEY)))
    gold = load_gold()
    if doc["labelled_sha256"] != gold.sha256:
        raise ValueError(
            f"{TRAINING_SET_KEY} was built from another labelled file; rebuild the training set"
        )
    return TrainingSet(gold, tuple(doc["unlabelled"]), int(doc["lake_files"]))
