"""The Lambda bundle: small enough, binary wheels for the chosen runtime, and the handler, unpacked
in a clean interpreter (stdlib + the zip, as /var/task), writes a Kinesis batch to BigQuery.

The builds install the BigQuery client's closure with pip for the Lambda target, so the first run
downloads wheels from PyPI (pip's cache serves later runs); a failed download fails these tests
with pip's message, it never skips them. The bundles are built for CPython 3.11 where they are
imported, because the test interpreter is 3.11; the default (3.12) build is checked by its files.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import to_json_record
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.settings import DEFAULT_KEYWORDS
from tests.support.paths import ROOT
from tests.support.records import x_message

BUILD_ZIP = ROOT / "lambda" / "build_zip.py"
KINESIS_EVENT = ROOT / "tests" / "fixtures" / "kinesis_event.json"
# Never in the bundle: too big for Lambda and not on the insert path, or provided by the runtime.
UNWANTED = (
    "dagster",
    "pandas",
    "pyarrow",
    "duckdb",
    "numpy",
    "db_dtypes",
    "google/cloud/bigquery_storage",
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "bin/",
    "musicnft/devtools/",
    "musicnft/app/",
    "musicnft/batch/",
    "musicnft/local/",
)
MIB = 1024 * 1024


def _load_build_zip() -> ModuleType:
    """lambda/build_zip.py as a module (`lambda` is a keyword, so not importable by name)."""
    spec = importlib.util.spec_from_file_location("build_zip", BUILD_ZIP)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


build_zip = _load_build_zip()


def build(out: Path, python: str) -> Path:
    """`make lambda-zip` for one runtime; a failure (say, PyPI unreachable) fails the test with
    the builder's explanation and pip's own output."""
    proc = subprocess.run(
        [sys.executable, str(BUILD_ZIP), "--out", str(out), "--python", python],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, (
        f"building the Lambda zip for CPython {python} failed (the first build downloads "
        f"wheels from PyPI):\n{proc.stderr}"
    )
    return out


@pytest.fixture(scope="module")
def zip311(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("py311") / "lambda.zip", "3.11")


@pytest.fixture(scope="module")
def zip312(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("py312") / "lambda.zip", "3.12")


@pytest.fixture(scope="module")
def task311(zip311: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 3.11 bundle unpacked, as Lambda unpacks it into /var/task."""
    task = tmp_path_factory.mktemp("task")
    with zipfile.ZipFile(zip311) as zf:
        zf.extractall(task)
    return task


# ---- the builder's rules, without building ------------------------------------------------------


def test_lock_pins_are_read_by_normalized_name(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        "# header\nGoogle_Cloud.BigQuery==3.47.0\n    # via musicnft\nrequests[socks]==2.34.2\n"
    )
    assert build_zip.read_lock(lock) == {"google-cloud-bigquery": "3.47.0", "requests": "2.34.2"}
    assert build_zip.read_lock()["google-cloud-bigquery"]  # the real lock pins the client


def test_closure_must_match_the_lock_and_leave_out_what_is_not_bundled() -> None:
    lock = {"google-cloud-bigquery": "3.47.0", "grpcio": "1.85.3", "boto3": "1.44.8"}
    assert build_zip.closure_problems({"google-cloud-bigquery": "3.47.0"}, lock) == []
    problems = build_zip.closure_problems(
        {"grpcio": "1.86.0", "boto3": "1.44.8", "left-pad": "1.0", "pyarrow": "26.0.1"}, lock
    )
    assert len(problems) == 4
    assert any("grpcio resolved to 1.86.0" in p for p in problems)
    assert any("boto3 must not be bundled (provided by the Lambda runtime)" in p for p in problems)
    assert any("left-pad 1.0 is not in requirements.lock" in p for p in problems)
    assert any(p.startswith("pyarrow must not be bundled") for p in problems)


def test_python_flag_allows_only_the_lambda_runtimes(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BUILD_ZIP), "--out", str(tmp_path / "x.zip"), "--python", "3.10"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "invalid choice: '3.10'" in proc.stderr
    assert not (tmp_path / "x.zip").exists()


# ---- the built bundle ---------------------------------------------------------------------------

PROBE = """
import base64, json, sys
sys.path.insert(0, sys.argv[1])
import handler
from musicnft.hotpath.consumer import decode_post, enrich_rows
heavy = [m for m in ("dagster", "pandas", "pyarrow", "duckdb", "boto3") if m in sys.modules]
post = decode_post(base64.b64decode(sys.argv[2]))
row = enrich_rows([post])[0]
print(json.dumps({"heavy": heavy, "label": row["sentiment_label"], "compound": row["sentiment_compound"],
                  "handlers": [callable(handler.kinesis_handler), callable(handler.firehose_handler)]}))
"""


@pytest.mark.slow
def test_bundle_is_small_and_imports_in_a_clean_interpreter(zip311: Path, task311: Path) -> None:
    with zipfile.ZipFile(zip311) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert zip311.stat().st_size < 50 * MIB
    assert sum(i.file_size for i in infos) < 250 * MIB
    assert "handler.py" in names and "vaderSentiment/vader_lexicon.txt" in names
    assert "google/cloud/bigquery/client.py" in names
    assert not [n for n in names if n.startswith(UNWANTED)]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    post = normalize_x_message(
        x_message(1, text="I love this music NFT drop!"),
        KeywordMatcher(DEFAULT_KEYWORDS),
        datetime.now(UTC),
    )
    data = base64.b64encode(json.dumps(to_json_record(post)).encode()).decode()
    # -I -S: no site-packages, no environment, only the standard library and the bundle.
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(task311), data],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["heavy"] == []
    assert result["label"] == "positive" and result["compound"] > 0.5
    assert result["handlers"] == [True, True]


@pytest.mark.slow
def test_bundle_carries_binary_wheels_for_the_chosen_runtime(zip311: Path, zip312: Path) -> None:
    for path, tag in ((zip311, "cpython-311"), (zip312, "cpython-312")):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        assert f"grpc/_cython/cygrpc.{tag}-x86_64-linux-gnu.so" in names
        assert "cryptography/hazmat/bindings/_rust.abi3.so" in names
        assert "google/cloud/bigquery/client.py" in names
        # every version-specific extension module is for the target CPython, none for another
        tagged = {m for n in names for m in re.findall(r"cpython-\d+", n)}
        assert tagged == {tag}, (path, tagged)


@pytest.mark.slow
def test_bundle_is_reproducible(zip312: Path, tmp_path: Path) -> None:
    again = build(tmp_path / "again.zip", "3.12")
    assert again.read_bytes() == zip312.read_bytes()


HANDLER_PROBE = """
import json, sys
allowed = tuple(sys.path)  # -I -S: the standard library only
task = sys.argv[1]
sys.path.insert(0, task)
import handler
with open(sys.argv[2]) as f:
    response = handler.kinesis_handler(json.load(f), None)
# the binary parts load in this CPython (grpc is not on the REST insert path, so import it here)
import cryptography.hazmat.bindings._rust, google_crc32c, grpc
from google.cloud import bigquery
outside = sorted(
    name
    for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None)
    and not module.__file__.startswith((task, *allowed))
)
heavy = [m for m in ("dagster", "pandas", "pyarrow", "duckdb", "numpy", "boto3") if m in sys.modules]
print(json.dumps({
    "response": response,
    "outside": outside,
    "heavy": heavy,
    "bigquery": bigquery.__file__,
    "crc32c": google_crc32c.implementation,
}))
"""


@pytest.mark.slow
def test_unpacked_bundle_handles_a_kinesis_batch_into_bigquery(
    task311: Path, bq_endpoint: str, tmp_path: Path
) -> None:
    from musicnft.devtools.bq_emulator import PROJECT
    from tests.support.bq import fresh_warehouse

    wh = fresh_warehouse(bq_endpoint, "lambda_zip")
    event: dict[str, Any] = json.loads(KINESIS_EVENT.read_text())
    post_ids = sorted(
        json.loads(base64.b64decode(r["kinesis"]["data"]))["post_id"] for r in event["Records"]
    )
    # What the deployed function's environment sets (infra/template.yaml), with the emulator as
    # BigQuery (anonymous credentials, so no secret and no boto3) and a HOME with no gcloud config.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "MUSICNFT_PROFILE": "cloud",
        "MUSICNFT_S3_BUCKET": "x",
        "MUSICNFT_BIGQUERY_PROJECT": PROJECT,
        "MUSICNFT_BIGQUERY_DATASET": wh.dataset,
        "MUSICNFT_BIGQUERY_ENDPOINT": bq_endpoint,
    }
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", HANDLER_PROBE, str(task311), str(KINESIS_EVENT)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["response"] == {"batchItemFailures": []}, proc.stderr
    assert result["outside"] == [], "imported from outside the bundle and the standard library"
    assert result["heavy"] == []
    assert result["bigquery"].startswith(str(task311))
    assert result["crc32c"] == "c"
    assert wh.count("posts_hot") == len(event["Records"]) == len(post_ids)
    rows = wh.query("SELECT post_id, sentiment_label FROM posts_hot ORDER BY post_id")
    assert rows.column("post_id").to_pylist() == post_ids
    assert None not in rows.column("sentiment_label").to_pylist()
