"""The serving container (infra/model/Dockerfile) without Docker: the files its COPY lines take
are enough to serve, started the way SageMaker starts it (`... serve`), and serving imports no
scikit-learn, numpy, scipy or pyarrow."""

from __future__ import annotations

import io
import json
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from musicnft.adapters.local_lake import LocalLake
from musicnft.model.artifact import write_artifact
from musicnft.model.gold import load_gold
from musicnft.model.train import TrainConfig, train
from tests.support.paths import ROOT

DOCKERFILE = ROOT / "infra" / "model" / "Dockerfile"


def image_tree(dest: Path) -> Path:
    """The project files the Dockerfile copies, at the paths it copies them to."""
    for line in DOCKERFILE.read_text().splitlines():
        if not line.startswith("COPY "):
            continue
        *sources, target = line.split()[1:]
        for source in sources:
            src = ROOT / source
            if src.is_dir():
                shutil.copytree(src, dest / target, ignore=shutil.ignore_patterns("__pycache__"))
            else:  # a file into a folder (the only form the Dockerfile uses)
                assert target.endswith("/"), line
                (dest / target).mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / target / src.name)
    return dest


def test_dockerfile_follows_sagemakers_container_contract() -> None:
    text = DOCKERFILE.read_text()
    assert "EXPOSE 8080" in text
    entry = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert entry[:3] == ["python", "-m", "musicnft.model.serve"]
    assert entry[entry.index("--model-dir") + 1] == "/opt/ml/model"
    assert entry[entry.index("--host") + 1] == "0.0.0.0"
    assert re.search(r'^CMD \["serve"\]$', text, re.MULTILINE)
    assert "vaderSentiment==3.3.2" in text


def test_serving_imports_no_heavy_library(tmp_path: Path) -> None:
    tree = image_tree(tmp_path / "program")
    code = (
        "import sys, musicnft.model.serve, musicnft.hotpath.model_artifact;"
        "print([m for m in ('sklearn', 'numpy', 'scipy', 'pyarrow', 'pandas') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tree,
        env={"PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_image_files_serve_a_trained_model(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    key, _card = write_artifact(lake, train(load_gold(), [], TrainConfig(), cv=False), "abc")
    model_dir = tmp_path / "opt-ml-model"
    with tarfile.open(fileobj=io.BytesIO(lake.get(key)), mode="r:gz") as tar:
        tar.extractall(model_dir, filter="data")
    tree = image_tree(tmp_path / "program")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "musicnft.model.serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--model-dir",
            str(model_dir),
            "serve",
        ],
        cwd=tree,
        env={"PYTHONPATH": str(tree)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            found = re.search(r"serving on 127\.0\.0\.1:(\d+)", proc.stderr.readline())
            port = int(found.group(1)) if found else None
        assert port, "no 'serving on' line"
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                with urllib.request.urlopen(base + "/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        req = urllib.request.Request(
            base + "/invocations",
            data=json.dumps(
                {"instances": ["best album of the year", "awful, I want a refund"]}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            answer = json.loads(r.read())
        assert [p["label"] for p in answer["predictions"]] == ["positive", "negative"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        if proc.stderr:
            proc.stderr.close()
