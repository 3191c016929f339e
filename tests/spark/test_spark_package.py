"""`make spark-package` (infra/spark_package.py): dist/spark/ for EMR Serverless, built offline
from the local venv. The proof that it is complete: a fresh interpreter that sees only the code
zip, the unpacked library archive and Spark's own Python side (what EMR Serverless brings) imports
the job and the entry script, and scores a post with VADER from the unpacked lexicon."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support.paths import ROOT

pytestmark = pytest.mark.slow


def _package_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "spark_package", ROOT / "infra" / "spark_package.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("spark") / "dist" / "spark"
    manifest = _package_module().build(out, sys.executable)
    return out, manifest


def test_make_target_runs_the_packager_into_dist_spark() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^spark-package:.*\n\t(.+)$", makefile, re.MULTILINE)
    assert recipe, "no spark-package target"
    assert recipe.group(1) == "$(BIN)/python infra/spark_package.py --out dist/spark"


def test_dist_spark_holds_the_entry_script_code_zip_libraries_and_manifest(built) -> None:
    out, manifest = built
    assert sorted(p.name for p in out.iterdir()) == [
        "emr_entrypoint.py",
        "manifest.json",
        "musicnft.zip",
        "pydeps.tar.gz",
    ]
    assert (out / "emr_entrypoint.py").read_bytes() == (
        ROOT / "musicnft" / "spark" / "emr_entrypoint.py"
    ).read_bytes()
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["python"] == ".".join(map(str, sys.version_info[:3]))
    libraries = {name.lower() for name in manifest["libraries"]}
    # what the job imports (and VADER's own requirement), never Spark's side or the orchestrator
    assert {
        "vadersentiment",
        "pandas",
        "pyarrow",
        "numpy",
        "dagster-pipes",
        "requests",
    } <= libraries
    assert not libraries & {"pyspark", "py4j", "musicnft", "dagster", "boto3", "streamlit"}
    for name, info in manifest["files"].items():
        assert (out / name).stat().st_size == info["bytes"], name


def test_code_zip_is_the_musicnft_package_without_bytecode(built) -> None:
    out, _ = built
    names = zipfile.ZipFile(out / "musicnft.zip").namelist()
    assert "musicnft/spark/job.py" in names and "musicnft/__init__.py" in names
    assert all(n.startswith("musicnft/") for n in names)
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]


def test_code_zip_is_reproducible(tmp_path: Path) -> None:
    # built twice back to back (the tree can change between this and the module's build)
    packager = _package_module()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = packager.build_code_zip(tmp_path / "a").read_bytes()
    assert packager.build_code_zip(tmp_path / "b").read_bytes() == first


def test_a_fresh_interpreter_with_only_the_package_imports_the_job_and_scores(
    built, tmp_path: Path
) -> None:
    out, _ = built
    deps = tmp_path / "pydeps"
    with tarfile.open(out / "pydeps.tar.gz") as tar:
        tar.extractall(deps, filter="data")
    # What EMR Serverless brings: Spark's Python side (pyspark, py4j), nothing else of the venv.
    spark_home = tmp_path / "spark_python"
    spark_home.mkdir()
    import py4j
    import pyspark

    for module in (pyspark, py4j):
        folder = Path(module.__file__ or "").parent
        (spark_home / folder.name).symlink_to(folder)
    zip_path = out / "musicnft.zip"
    allowed = [str(zip_path), str(deps), str(spark_home)]
    probe = f"""
import sys, json
sys.path[:0] = {allowed!r}
import musicnft.spark.job as job
import musicnft.spark.emr_entrypoint as entry
from musicnft.hotpath.enrich import sentiment_scores
import vaderSentiment, pandas, pyarrow
assert callable(job.run_score_job) and callable(entry.main)
scores = sentiment_scores("I love this song, it is great")
loaded = {{name: getattr(m, "__file__", None) for name, m in list(sys.modules.items())}}
print(json.dumps({{"musicnft": sys.modules["musicnft"].__file__,
                  "compound": scores["compound"], "loaded": loaded}}))
"""
    proc = subprocess.run(
        [sys.executable, "-S", "-E", "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # not the repository: its folders must not be importable
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["musicnft"].startswith(str(zip_path))
    site = str(Path(pytest.__file__).resolve().parent.parent)  # the venv's site-packages
    from_site = sorted(
        name
        for name, path in report["loaded"].items()
        if path and str(Path(path).resolve()).startswith(site)
    )
    assert from_site == [], from_site
    from_repo = sorted(
        name
        for name, path in report["loaded"].items()
        if path and path.startswith(str(ROOT)) and not path.startswith(str(zip_path))
    )
    assert from_repo == [], from_repo
    from musicnft.hotpath.enrich import sentiment_scores

    expected = sentiment_scores("I love this song, it is great")
    assert expected is not None
    assert report["compound"] == expected["compound"] > 0.5


def test_the_packaged_entry_script_scores_a_lake_with_only_the_package(
    built, tmp_path: Path
) -> None:
    """What an EMR Serverless driver does, on this machine: the entry script from dist/spark/,
    the code zip and the unpacked libraries on PYTHONPATH, Spark's Python side, an interpreter
    without this venv's site-packages for the driver and the Python workers alike."""
    from musicnft.spark.scored import read_committed_table
    from tests.support.spark_lake import build_spark_lake, expected_scores

    out, _ = built
    lake = build_spark_lake(tmp_path / "lake", drops=1, per_drop=8)
    deps = tmp_path / "pydeps"
    with tarfile.open(out / "pydeps.tar.gz") as tar:
        tar.extractall(deps, filter="data")
    spark_python = tmp_path / "spark_python"
    spark_python.mkdir()
    import py4j
    import pyspark

    for module in (pyspark, py4j):
        folder = Path(module.__file__ or "").parent
        (spark_python / folder.name).symlink_to(folder)
    python = tmp_path / "python"  # no site: the venv's libraries are not there
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    python.chmod(0o755)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([str(out / "musicnft.zip"), str(deps), str(spark_python)]),
        "PYSPARK_PYTHON": str(python),
        "PYSPARK_SUBMIT_ARGS": "--master local[2] --conf spark.ui.enabled=false "
        "--conf spark.sql.shuffle.partitions=2 pyspark-shell",
    }
    if os.environ.get("JAVA_HOME"):
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    proc = subprocess.run(
        [str(python), str(out / "emr_entrypoint.py"), "--lake-root", str(lake.root)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    (line,) = [x for x in proc.stderr.splitlines() if "scored: {" in x]
    report = json.loads(line.split("scored: ", 1)[1])
    expected = expected_scores(lake)
    assert report["rows_written"] == len(expected)
    assert report["model_version"] == lake.model_version
    rows = read_committed_table(str(lake.root)).to_pylist()
    assert sorted(r["post_id"] for r in rows) == sorted(expected)
    for r in rows:
        compound, score, label = expected[r["post_id"]]
        assert (r["sentiment_compound"], r["model_label"]) == (compound, label)
        assert r["model_score"] == pytest.approx(score, abs=1e-6)
