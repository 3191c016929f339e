"""The Lambda bundle: small, and the handler imports and scores posts in a clean interpreter."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from musicnft.keywords import KeywordMatcher
from musicnft.normalize import normalize_x_message
from musicnft.schema import to_json_record
from musicnft.settings import DEFAULT_KEYWORDS
from tests.conftest import ROOT
from tests.helpers import x_message

PROBE = """
import base64, json, sys
sys.path.insert(0, sys.argv[1])
import handler
from musicnft.consumer import decode_post, enrich_rows
heavy = [m for m in ("dagster", "pandas", "pyarrow", "duckdb", "boto3") if m in sys.modules]
post = decode_post(base64.b64decode(sys.argv[2]))
row = enrich_rows([post])[0]
print(json.dumps({"heavy": heavy, "label": row["sentiment_label"], "compound": row["sentiment_compound"],
                  "handlers": [callable(handler.kinesis_handler), callable(handler.firehose_handler)]}))
"""


def test_bundle_is_small_and_imports_in_a_clean_interpreter(tmp_path: Path) -> None:
    out = tmp_path / "lambda.zip"
    subprocess.run(
        [sys.executable, str(ROOT / "lambda" / "build_zip.py"), "--out", str(out)], check=True
    )
    assert out.stat().st_size < 50 * 1024 * 1024
    names = zipfile.ZipFile(out).namelist()
    assert "handler.py" in names and "vaderSentiment/vader_lexicon.txt" in names
    assert not [
        n
        for n in names
        if n.startswith(("dagster", "pandas", "pyarrow", "duckdb", "musicnft/data/"))
    ]
    post = normalize_x_message(
        x_message(1, text="I love this music NFT drop!"),
        KeywordMatcher(DEFAULT_KEYWORDS),
        datetime.now(UTC),
    )
    data = base64.b64encode(json.dumps(to_json_record(post)).encode()).decode()
    # Lambda unpacks the zip into /var/task; -I -S: no site-packages, no environment, only the
    # standard library and the bundle.
    task = tmp_path / "task"
    zipfile.ZipFile(out).extractall(task)
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(task), data], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["heavy"] == []
    assert result["label"] == "positive" and result["compound"] > 0.5
    assert result["handlers"] == [True, True]


def test_bundle_is_reproducible(tmp_path: Path) -> None:
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    for out in (a, b):
        subprocess.run(
            [sys.executable, str(ROOT / "lambda" / "build_zip.py"), "--out", str(out)], check=True
        )
    assert a.read_bytes() == b.read_bytes()
