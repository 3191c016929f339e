"""`musicnft run --sales` (what `make demo` runs): the sales replay beside the posts, supervised,
finished before the run ends, and `--fresh` clears the collector's memory with the lake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from musicnft.devtools.sample import write_sample
from tests.support.paths import ROOT

pytestmark = pytest.mark.slow


def test_run_replays_the_sales_beside_the_posts(
    cli_env: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    posts = tmp_path / "posts.jsonl"
    write_sample(posts, lines=200)
    stale = data_dir / "sales" / "opensea.sqlite"
    stale.parent.mkdir(parents=True)
    stale.write_text("a previous lake's memory")
    env = {**cli_env, "MUSICNFT_DELIVERY_BUFFER_SECONDS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "musicnft", "run", "--fresh", "--speed", "max", "--sales",
         "--exit-when-done", "--file", str(posts)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "started the sales replay" in result.stderr
    assert "the sales replay finished" in result.stderr
    assert "sale(s) written" in result.stdout
    assert not stale.exists()  # --fresh removed it with the lake
    files = list((data_dir / "lake" / "sales").rglob("*.parquet"))
    assert files
