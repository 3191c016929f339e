"""`musicnft spark score` and the entry point's arguments: exit 2 for bad arguments or settings
(before Spark starts), 1 when the job cannot run, a clean stop on SIGTERM with a summary line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from musicnft.app.cli import main as cli_main
from musicnft.spark import entrypoint
from musicnft.spark.job import ScoreJobOptions, run_score_job
from musicnft.spark.scored import read_committed_table
from tests.support.paths import ROOT
from tests.support.spark_lake import build_spark_lake


@pytest.mark.parametrize(
    "argv",
    [
        [],  # --lake-root is required
        ["--lake-root", "/tmp/x", "--trigger-seconds", "0"],
        ["--lake-root", "/tmp/x", "--trigger-seconds", "soon"],
        ["--lake-root", "/tmp/x", "--max-files-per-trigger", "0"],
        ["--lake-root", "/tmp/x", "--no-such-flag"],
    ],
)
def test_the_entrypoint_exits_2_on_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        entrypoint.main(argv)
    assert exc.value.code == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["spark", "score", "--trigger-seconds", "-5"],
        ["spark", "score", "--max-files-per-trigger", "x"],
        ["spark", "score", "--bogus"],
        ["spark"],
    ],
)
def test_the_cli_exits_2_on_bad_arguments(argv: list[str], data_dir: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(argv)
    assert exc.value.code == 2


def test_the_cli_exits_2_on_a_bad_spark_master(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MUSICNFT_SPARK_MASTER", "local[2] --conf x")
    assert cli_main(["spark", "score", "--available-now"]) == 2
    assert "MUSICNFT_SPARK_MASTER" in capsys.readouterr().err


def test_rescore_without_any_model_fails_before_starting_a_query(
    spark: Any, tmp_path: Path
) -> None:
    (tmp_path / "lake" / "raw").mkdir(parents=True)
    with pytest.raises(ValueError, match="needs a model"):
        run_score_job(spark, ScoreJobOptions(str(tmp_path / "lake"), rescore=True))
    assert not (tmp_path / "lake" / "scored").exists()


@pytest.mark.slow
def test_the_cli_streams_until_sigterm_then_stops_cleanly(
    data_dir: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    lake = build_spark_lake(data_dir / "lake", drops=3, per_drop=10)
    env = dict(cli_env, MUSICNFT_SPARK_MASTER="local[2]")
    cmd = [sys.executable, "-m", "musicnft", "spark", "score", "--trigger-seconds", "1"]
    with open(tmp_path / "err.log", "wb") as err:
        proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and proc.poll() is None:
                if read_committed_table(str(lake.root)).num_rows >= len(lake.unique_posts()):
                    break
                time.sleep(0.5)
            assert proc.poll() is None, (tmp_path / "err.log").read_text()[-3000:]
            time.sleep(2)  # a trigger or two with nothing new: it keeps running
            assert proc.poll() is None
            os.kill(proc.pid, signal.SIGTERM)
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    log = (tmp_path / "err.log").read_text()
    assert proc.returncode == 0, log[-3000:]
    assert "batch 0:" in log  # progress per batch
    summary = out.decode().strip().splitlines()[-1]
    assert summary.startswith("spark score: ") and f"{len(lake.unique_posts())} rows" in summary
    ids = read_committed_table(str(lake.root)).column("post_id").to_pylist()
    assert sorted(ids) == sorted(lake.unique_posts())
