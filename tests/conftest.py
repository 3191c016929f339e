"""Shared fixtures: every test gets its own data directory and never touches ./data."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.sample_lake import Lake, build_sample_lake


@pytest.fixture(scope="module", autouse=True)
def _collect_the_previous_files_garbage() -> None:
    """Run the garbage a previous test file left (Dagster's SQLite connections, say) through its
    finalizers here, in the main thread, before this file starts.

    Left to a later, random moment, a finalizer that logs a traceback runs Python 3.11's caret
    finder (`ast.parse`) inside whatever AST work is in progress, and CPython 3.11.7 then fails
    that work with "SystemError: AST constructor recursion depth mismatch": seen once when a
    Streamlit AppTest compiled the dashboard script (the page came out empty)."""
    gc.collect()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "data"
    monkeypatch.setenv("MUSICNFT_DATA_DIR", str(d))
    return d


@pytest.fixture
def cli_env(data_dir: Path) -> dict[str, str]:
    """Environment for `python -m musicnft` subprocesses pointed at the test's data dir."""
    env = dict(os.environ)
    env["MUSICNFT_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("MUSICNFT_LOG_LEVEL", "INFO")
    return env


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The window tests' sample lake (tests/support/sample_lake.py), built once per module."""
    return build_sample_lake(tmp_path_factory.mktemp("window-assets"))


@pytest.fixture(scope="session")
def bq_endpoint() -> Iterator[str]:
    """The BigQuery emulator on 127.0.0.1, started once for the session when a test asks."""
    from musicnft.devtools.bq_emulator import bigquery_emulator

    with bigquery_emulator() as endpoint:
        yield endpoint


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files holding slow tests run first (their order within a file kept): under `make test`'s
    parallel workers the long ones start at once instead of trailing the run."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
