"""`musicnft_dagster.dev`: a new instance's storage is created once, before `dagster dev`'s
processes start (dagster-io/dagster#27390: their race left two schema stamps in runs.db)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from musicnft.app.processes import dagster_dev_command
from musicnft.app.supervisor import dagster_home
from musicnft.settings import Settings
from musicnft_dagster.dev import prepare_instance
from tests.support.paths import ROOT

OPEN_RUNS = (
    "import sys, dagster as dg\n"
    "with dg.DagsterInstance.from_config(sys.argv[1]) as i:\n"
    "    print(len(i.get_runs()))\n"
)


def _stamps(home: Path) -> list[str]:
    with sqlite3.connect(home / "history" / "runs.db") as con:
        return [r[0] for r in con.execute("SELECT version_num FROM alembic_version")]


def test_a_new_instance_gets_one_schema_stamp_and_then_opens_from_many_processes_at_once(
    tmp_path: Path,
) -> None:
    # GIVEN a new instance directory (only its dagster.yaml, as `musicnft run --dagster` writes)
    home = dagster_home(Settings(data_dir=tmp_path / "data"))
    assert not (home / "history").exists()
    # WHEN its storage is prepared, twice (the second time is a no-op)
    prepare_instance(home)
    prepare_instance(home)
    # THEN runs.db carries exactly one schema revision
    assert len(_stamps(home)) == 1
    # AND three processes opening it at the same moment (what `dagster dev`'s webserver, daemon
    # and code server do) all read it, and leave it with that one revision
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-c", OPEN_RUNS, str(home)]

    def open_once(_: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(open_once, range(3)))
    assert [(r.returncode, r.stdout.strip()) for r in results] == [(0, "0")] * 3, results
    assert len(_stamps(home)) == 1


def test_musicnft_run_starts_dagster_dev_through_the_preparing_module() -> None:
    cmd = dagster_dev_command("127.0.0.1", 3999)
    assert cmd[:3] == [sys.executable, "-m", "musicnft_dagster.dev"]
    assert cmd[3:] == ["-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", "3999"]


def test_without_dagster_home_it_says_so_and_exits_2() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "musicnft_dagster.dev", "-p", "3999"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "set DAGSTER_HOME" in proc.stderr
