"""The versioned artifact: `models/sentiment/<version>/model.tar.gz` in SageMaker's layout, its
model card, the promotion pointer, and the `musicnft model train` / `serve` commands over them."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from musicnft.adapters.local_lake import LocalLake
from musicnft.hotpath.model_artifact import (
    PROMOTED_KEY,
    load_model_dir,
    load_promoted,
    read_artifact,
    read_pointer,
)
from musicnft.hotpath.sentiment_model import ModelFormatError
from musicnft.model.artifact import build_tarball, promote, write_artifact
from musicnft.model.gold import load_gold
from musicnft.model.train import TrainConfig, train
from tests.support.paths import ROOT

CREATED = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def result():
    return train(load_gold(), [], TrainConfig(), cv=False)


def test_artifact_is_a_sagemaker_model_tarball_under_the_version(tmp_path: Path, result) -> None:
    lake = LocalLake(tmp_path)
    key, card = write_artifact(lake, result, load_gold().sha256, CREATED)
    assert key == f"models/sentiment/{result.model.version}/model.tar.gz"
    data = lake.get(key)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
        # SageMaker unpacks into /opt/ml/model: files at the root, no folders, no links
        assert sorted(m.name for m in members) == ["model.json", "model_card.json"]
        assert all(m.isfile() and "/" not in m.name for m in members)
    model, stored_card = read_artifact(data)
    assert model.version == result.model.version and stored_card == card
    # the same training and created_at give the same bytes
    assert (
        write_artifact(LocalLake(tmp_path / "again"), result, load_gold().sha256, CREATED)[1]
        == card
    )
    assert LocalLake(tmp_path / "again").get(key) == data


def test_model_card_says_data_rows_metrics_vader_libraries_and_time(result) -> None:
    key_card = build_tarball(result.model.to_json(), {})
    assert key_card  # builds without a card too
    from musicnft.model.artifact import model_card

    card = model_card(result, "abc", CREATED)
    assert card["created_at"] == "2026-11-30T07:00:00Z"
    assert card["training_data"]["labelled_rows"] == 3_200
    assert card["training_data"]["train_rows"] == 2_560
    assert card["training_data"]["held_out_rows"] == 640
    assert card["metrics"]["held_out"]["model"]["pearson_r"] > 0.89
    assert card["vader_metrics"]["held_out"] == result.held_out["vader"]
    assert set(card["libraries"]) >= {"python", "scikit-learn", "numpy", "scipy", "vaderSentiment"}
    assert card["libraries"]["vaderSentiment"] == "3.3.2"


def test_promotion_pointer_names_the_version_the_readers_load(tmp_path: Path, result) -> None:
    lake = LocalLake(tmp_path)
    assert read_pointer(lake) is None and load_promoted(lake) is None
    _key, card = write_artifact(lake, result, "abc", CREATED)
    promote(lake, result.model.version, card)
    pointer = json.loads(lake.get(PROMOTED_KEY))
    assert pointer["version"] == result.model.version
    assert pointer["key"] == f"models/sentiment/{result.model.version}/model.tar.gz"
    loaded = load_promoted(lake)
    assert loaded is not None and loaded.to_json() == result.model.to_json()


def test_a_pointer_to_another_version_or_a_damaged_artifact_is_refused(
    tmp_path: Path, result
) -> None:
    lake = LocalLake(tmp_path)
    key, _card = write_artifact(lake, result, "abc", CREATED)
    lake.put(PROMOTED_KEY, json.dumps({"version": "s000000000000", "key": key}).encode())
    with pytest.raises(ModelFormatError, match="pointer names"):
        load_promoted(lake)
    with pytest.raises(ModelFormatError, match=r"not a readable model\.tar\.gz"):
        read_artifact(b"not a tarball")


def test_load_model_dir_reads_an_unpacked_artifact(tmp_path: Path, result) -> None:
    lake = LocalLake(tmp_path / "lake")
    key, _card = write_artifact(lake, result, "abc", CREATED)
    unpacked = tmp_path / "opt-ml-model"
    with tarfile.open(fileobj=io.BytesIO(lake.get(key)), mode="r:gz") as tar:
        tar.extractall(unpacked, filter="data")
    assert load_model_dir(unpacked).version == result.model.version


@pytest.mark.slow
def test_cli_train_promotes_and_serve_answers_from_the_model_dir(
    tmp_path: Path, cli_env: dict[str, str], data_dir: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "musicnft", "model", "train", "--no-cv", "--json"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    lake = LocalLake(data_dir / "lake")
    assert read_pointer(lake)["version"] == report["version"]  # type: ignore[index]
    assert "| held-out split | 640 |" in done.stderr
    unpacked = tmp_path / "model"
    with tarfile.open(fileobj=io.BytesIO(lake.get(report["key"])), mode="r:gz") as tar:
        tar.extractall(unpacked, filter="data")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "musicnft",
            "model",
            "serve",
            "--port",
            "0",
            "--model-dir",
            str(unpacked),
        ],
        env=cli_env,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "http://127.0.0.1:" in line, line
        base = line.strip().rsplit(" ", 1)[-1]
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        req = urllib.request.Request(
            base + "/invocations",
            data=json.dumps({"instances": ["what a great song", "this is awful"]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            labels = [p["label"] for p in json.loads(r.read())["predictions"]]
        assert labels == ["positive", "negative"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        if proc.stderr:
            proc.stderr.close()
