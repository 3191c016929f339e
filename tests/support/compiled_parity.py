"""What the compiled modules compute, as bytes, for comparing a compiled run with a pure one.

`python -m tests.support.compiled_parity` writes the same bytes `outputs()` returns; run with
MUSICNFT_PURE_PYTHON=1 it computes them with every module from its `.py` (tests/test_compiled.py).
"""

from __future__ import annotations

import json
import pickle
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from musicnft.compiled import COMPILED_MODULES
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import to_json_record
from musicnft.hotpath.consumer import decode_post, enrich_decoded
from musicnft.hotpath.decode import ControlMessage, RejectedRecord, SkipRecord
from musicnft.hotpath.normalize_x import normalize_x_line
from musicnft.hotpath.vader_fast import FastVader
from musicnft.settings import Settings
from tests.support import hostile

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
# the human-rated tweets ship with the project (musicnft/model/data/)
GOLD = (
    Path(__file__).resolve().parents[2]
    / "musicnft"
    / "model"
    / "data"
    / "tweets_sentiment_gold.tsv"
)


def _outcome(line: bytes, matcher: KeywordMatcher) -> Any:
    try:
        return normalize_x_line(line, matcher, NOW)
    except (RejectedRecord, SkipRecord, ControlMessage) as exc:
        return (type(exc).__name__, str(exc))


def outputs(n_lines: int = 3000) -> bytes:
    matcher = KeywordMatcher(Settings().keywords)
    outcomes = [_outcome(line, matcher) for line in hostile.mixed(hostile.sample_lines(n_lines))]
    posts = [o for o in outcomes if isinstance(o, dict)]
    decoded = [decode_post(json.dumps(to_json_record(p)).encode()) for p in posts]
    rows = enrich_decoded(decoded)
    vader = FastVader()
    texts = [p["text"] for p in posts]
    texts += [line.split("\t", 2)[-1] for line in GOLD.read_text("utf-8").splitlines()[1:]]
    scores = [vader.polarity(t) for t in texts]
    files = {m: Path(sys.modules[m].__file__ or "").name for m in COMPILED_MODULES}
    return pickle.dumps({"outcomes": outcomes, "rows": rows, "scores": scores, "files": files})


if __name__ == "__main__":
    sys.stdout.buffer.write(outputs())
