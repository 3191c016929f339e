"""A pytest run of its own over a folder of generated tests (for tests of the suite's plugins:
the xdist groups, the CPU report), with this repository importable and no Docker plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support.paths import ROOT


def run_pytest(folder: Path, options: list[str], env: Mapping[str, str]) -> str:
    """Run the tests in `folder` (its own conftest.py, no config file) and return the output;
    fails the calling test, with the output's end, unless every test passed."""
    plugins = ["-p", "no:cacheprovider", "-p", "no:bqemulator"]
    where = ["--rootdir", str(folder), "-c", os.devnull, str(folder)]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *plugins, *options, *where],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout
