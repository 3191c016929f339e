"""`make test`'s work units (tests/conftest.py's `_group`) handed to pytest-xdist's scheduler.

Why this exists: `--dist loadgroup` groups the tests whose node id ends in `@group`, a suffix
xdist 3.8 adds by assigning `item._nodeid`. pytest 9.2 keeps the node id in `item._id`, so the
assignment does nothing: every test was scheduled alone, a file's module fixtures were built
once per worker, and each worker started its own Spark JVM. The workers collect, so they know
each test's group; the controller schedules, knowing only node ids. Each worker writes the
groups it computed to a folder the controller made (its path in an environment variable the
workers inherit); the controller's scheduler reads them when it splits the tests into units.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

GROUPS_DIR_ENV = "MUSICNFT_TEST_GROUPS_DIR"


def _grouping(config: pytest.Config) -> bool:
    return bool(config.pluginmanager.hasplugin("xdist")) and (
        config.getoption("dist", "no") == "loadgroup"
    )


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def configure(config: pytest.Config) -> None:
    """On the controller: a folder for the workers' groups, before the workers start."""
    if _grouping(config) and not _is_worker(config) and config.getoption("numprocesses"):
        os.environ[GROUPS_DIR_ENV] = tempfile.mkdtemp(prefix="musicnft-test-groups-")


def unconfigure(config: pytest.Config) -> None:
    if not _is_worker(config) and GROUPS_DIR_ENV in os.environ:
        shutil.rmtree(os.environ.pop(GROUPS_DIR_ENV), ignore_errors=True)


def record(config: pytest.Config, groups: dict[str, str]) -> None:
    """On a worker: write {node id: group} where the controller will look (atomically)."""
    folder = os.environ.get(GROUPS_DIR_ENV)
    if not folder or not _is_worker(config):
        return
    worker = config.workerinput["workerid"]  # type: ignore[attr-defined]
    tmp = Path(folder) / f".{worker}.json"
    tmp.write_text(json.dumps(groups))
    tmp.replace(Path(folder) / f"{worker}.json")


def _recorded() -> dict[str, str]:
    folder = os.environ.get(GROUPS_DIR_ENV)
    if not folder:
        return {}
    for path in sorted(Path(folder).glob("gw*.json")):
        return dict(json.loads(path.read_text()))
    return {}


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's scope scheduling with the workers' groups as scopes (None: xdist's default)."""
    if not _grouping(config):
        return None
    from xdist.scheduler import LoadScopeScheduling

    groups: dict[str, str] = {}

    class RecordedGroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.rfind("@") > nodeid.rfind("]"):  # an xdist that adds the suffix itself
                return nodeid.split("@")[-1]
            if nodeid not in groups:
                groups.update(_recorded())
            return groups.get(nodeid, nodeid)

    return RecordedGroupScheduling(config, log)
