"""Exactly-once across a kill (issue 16): the job, run as spark-submit would run it, is SIGKILLed
(with its JVM and Python workers: the whole process group) while a micro-batch is in flight, then
restarted with --available-now. Read through the job's commit log, scored/ holds every post of
the lake exactly once, in the bare hour folders scored/YYYY/MM/DD/HH/; after the restart the
files on disk are exactly the committed ones (the replayed batch replaced its killed attempt's)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from musicnft.spark.layout import CHECKPOINT
from musicnft.spark.scored import committed_files, read_committed_table
from tests.support.paths import ROOT
from tests.support.spark_lake import build_spark_lake

pytestmark = pytest.mark.slow


def _batches(folder: Path) -> set[int]:
    if not folder.is_dir():
        return set()
    return {int(p.name) for p in folder.iterdir() if p.name.isdigit()}


def test_a_kill_mid_batch_then_a_restart_writes_every_post_exactly_once(tmp_path: Path) -> None:
    lake = build_spark_lake(tmp_path / "lake", drops=3, per_drop=20)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYSPARK_PYTHON=sys.executable)
    cmd = [
        sys.executable,
        "-m",
        "musicnft.spark.entrypoint",
        "--lake-root",
        str(lake.root),
        "--available-now",
        "--max-files-per-trigger",
        "1",
        "--master",
        "local[2]",
    ]
    checkpoint = lake.root / CHECKPOINT
    with open(tmp_path / "first.log", "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            in_flight: set[int] = set()
            while time.monotonic() < deadline and proc.poll() is None:
                offsets = _batches(checkpoint / "offsets")
                commits = _batches(checkpoint / "commits")
                # a batch after the first is planned (its offsets written) and not committed
                in_flight = {b for b in offsets - commits if b >= 1}
                if in_flight:
                    time.sleep(0.3)  # into the batch's work: reading, scoring, writing files
                    break
                time.sleep(0.02)
            assert proc.poll() is None, "the job finished before it could be killed"
            assert in_flight, (tmp_path / "first.log").read_text()[-3000:]
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    offsets, commits = _batches(checkpoint / "offsets"), _batches(checkpoint / "commits")
    assert offsets - commits, "the kill landed between batches, not inside one"
    committed_before = committed_files(str(lake.root))
    scored_before = read_committed_table(str(lake.root)).num_rows
    assert scored_before < len(lake.unique_posts())  # the kill left work undone

    # the restart as EMR Serverless runs the script: spark-submit given the file (its own
    # launcher finds pyspark with the python3 first on PATH)
    submit = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master",
        "local[2]",
        str(ROOT / "musicnft" / "spark" / "entrypoint.py"),
        *cmd[cmd.index("--lake-root") : cmd.index("--master")],
    ]
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        submit, env=env | {"PATH": path}, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert any(line.startswith("spark score: ") for line in done.stdout.splitlines()), done.stdout

    table = read_committed_table(str(lake.root))
    ids = table.column("post_id").to_pylist()
    assert len(ids) == len(set(ids)), "a post was written twice"
    assert set(ids) == set(lake.unique_posts()), "a post is missing"
    assert set(committed_before) <= set(committed_files(str(lake.root)))
    # the bare layout, and nothing else on disk: whatever the killed attempt had moved into the
    # hour folders was replaced by the replay of its batch
    scored = lake.root / "scored"
    on_disk = {str(p) for p in scored.rglob("*") if p.is_file()}
    assert on_disk == set(committed_files(str(lake.root)))
    for path in on_disk:
        key = str(Path(path).relative_to(scored))
        assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\d{2}/part-b\d{12}-\d{5}\.parquet", key), key
