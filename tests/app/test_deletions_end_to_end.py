"""Deletions end to end through the real commands (issue 19): a post forgotten before it is
produced, one forgotten after delivery but before the consumer reaches it, and one forgotten after
its window was built; every store and aggregate ends without all three, and `status --json` says
so. GIVEN / WHEN / THEN with `musicnft` subprocesses over one data directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.records import x_line

pytestmark = pytest.mark.slow  # a dozen CLI processes (~30 s on a busy machine)

N = 8


def x_id(i: int) -> str:
    return str(1466000000000000000 + i)


def test_forget_before_during_and_after(tmp_path: Path, cli_env: dict[str, str]) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "-m", "musicnft", *args],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
        assert out.returncode == 0, f"{args}: {out.stderr[-2000:]}"
        return out

    def forget(i: int, *extra: str) -> dict:
        ids = tmp_path / f"ids-{i}.txt"
        ids.write_text(f"{x_id(i)}\n")
        out = run("forget", "--ids-file", str(ids), "--json", *extra).stdout
        return json.loads(out.strip().splitlines()[-1])  # after any "rebuilt window" lines

    def sql(query: str) -> list:
        return json.loads(run("sql", query, "--json").stdout)

    sample = tmp_path / "sample.jsonl"
    sample.write_bytes(b"\n".join(x_line(i) for i in range(1, N + 1)) + b"\n")
    # GIVEN post 1 is forgotten before it is even produced
    assert forget(1)["recorded"] == 1
    run("produce", "--source", "replay", "--file", str(sample))
    run("deliver", "--once")
    # AND post 2 after it reached the lake, before the consumer got to it
    assert forget(2)["recorded"] == 1
    run("consume", "--once")
    run("backfill", "--no-dagster")
    hot = {r["post_id"] for r in sql("SELECT post_id FROM posts_hot")}
    assert hot == {f"x:{x_id(i)}" for i in range(3, N + 1)}
    metrics = sql("SELECT post_count FROM window_metrics_15m WHERE keyword = 'all'")
    assert [r["post_count"] for r in metrics] == [N - 2]
    # WHEN post 3 is forgotten after its window was built (rebuilt here, as Dagster would)
    after = forget(3, "--rebuild")
    assert after["applied"] == 1 and after["files_rewritten"] == 1 and len(after["windows"]) == 1
    # THEN no store and no aggregate holds any of the three
    gone = {f"x:{x_id(i)}" for i in (1, 2, 3)}
    for table in ("posts_hot", "posts"):
        assert not gone & {r["post_id"] for r in sql(f"SELECT post_id FROM {table}")}, table
    metrics = sql("SELECT post_count FROM window_metrics_15m WHERE keyword = 'all'")
    assert [r["post_count"] for r in metrics] == [N - 3]
    status = json.loads(run("status", "--json").stdout)
    assert (status["deleted"], status["deleted_pending"]) == (3, 0)
    assert status["lake_unique"] == N - 3  # the rewritten lake file lost all three
    assert status["posts_hot"] == N - 3
    # AND forgetting again changes nothing
    again = forget(3)
    assert again["recorded"] == 0 and again["applied"] == 0 and again["files_rewritten"] == 0
