"""`make test`'s work units reach pytest-xdist's scheduler (tests/support/xdist_groups.py): the
tests of one group run on one worker, one after another, so a group's shared set-up (a module
fixture, the one Spark JVM) is paid once. With xdist 3.8 on pytest 9.2 its own `@group` suffix
is lost, and each test went to any worker."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.inner_pytest import run_pytest

CONFTEST = """
import pytest
from tests.support import xdist_groups


def pytest_collection_modifyitems(config, items):
    xdist_groups.record(config, {i.nodeid: i.path.name.split("_")[1] for i in items})


def pytest_configure(config):
    xdist_groups.configure(config)


def pytest_unconfigure(config):
    xdist_groups.unconfigure(config)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    return xdist_groups.make_scheduler(config, log)
"""

TESTS = """
import os, time
from pathlib import Path


def _note():
    time.sleep(0.3)
    with Path(os.environ["PIDS"]).open("a") as out:
        out.write(f"{__name__} {os.getpid()}\\n")


def test_one():
    _note()


def test_two():
    _note()
"""


def test_the_tests_of_a_group_share_one_worker(tmp_path: Path) -> None:
    # GIVEN four files in two groups ("red": two files, "blue": two files)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    for name in ("test_red_a.py", "test_red_b.py", "test_blue_a.py", "test_blue_b.py"):
        (tmp_path / name).write_text(TESTS)
    pids = tmp_path / "pids.txt"
    # WHEN they run on three workers with `make test`'s options
    options = ["-n", "3", "--dist", "loadgroup", "--no-loadscope-reorder"]
    run_pytest(tmp_path, options, env=dict(os.environ, PIDS=str(pids)))
    # THEN each group's four tests ran in one worker process, and every test ran once
    by_group: dict[str, set[str]] = {}
    lines = pids.read_text().splitlines()
    for line in lines:
        module, pid = line.split()
        by_group.setdefault(module.split("_")[1], set()).add(pid)
    assert len(lines) == 8
    assert sorted(by_group) == ["blue", "red"]
    assert all(len(workers) == 1 for workers in by_group.values()), by_group
