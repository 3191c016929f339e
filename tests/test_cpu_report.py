"""`MUSICNFT_TEST_CPU=1 make test` ends with the CPU each test file used, its workers' own and its
child processes', summed in the controller from every worker (tests/support/cpu_report.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.support.cpu_report import ENV
from tests.support.inner_pytest import run_pytest

CONFTEST = """
from tests.support import cpu_report


def pytest_configure(config):
    cpu_report.register(config)
"""

BURNS_HERE = """
import time


def test_burns_in_the_worker():
    end = time.process_time() + 0.4
    while time.process_time() < end:
        pass
"""

BURNS_IN_A_CHILD = """
import subprocess, sys


def test_burns_in_a_child():
    burn = "import time\\nend = time.process_time() + 0.4\\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)


def test_does_nothing():
    pass
"""


def _run(tmp_path: Path, enabled: bool) -> str:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_here.py").write_text(BURNS_HERE)
    (tmp_path / "test_child.py").write_text(BURNS_IN_A_CHILD)
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if enabled:
        env[ENV] = "1"
    return run_pytest(tmp_path, ["-n", "2"], env=env)


def test_each_files_cpu_is_reported_from_every_worker(tmp_path: Path) -> None:
    out = _run(tmp_path, enabled=True)
    assert "CPU by test file" in out, out
    assert re.search(r"3 tests used [\d.]+ CPU-s: .* 1 tests under 0\.2 CPU-s each", out), out
    rows = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\S+)$", line)
        if m:
            rows[Path(m[5]).name] = tuple(float(m[i]) for i in (2, 3, 4))
    own, children, tests = rows["test_here.py"]
    assert own >= 0.35 and children < 0.2 and tests == 1, out
    own, children, tests = rows["test_child.py"]
    assert children >= 0.35 and tests == 2, out


def test_nothing_is_reported_unless_asked(tmp_path: Path) -> None:
    assert "CPU by test file" not in _run(tmp_path, enabled=False)
