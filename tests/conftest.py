"""Shared fixtures: every test gets its own data directory and never touches ./data."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "data"
    monkeypatch.setenv("MUSICNFT_DATA_DIR", str(d))
    return d


@pytest.fixture
def cli_env(data_dir: Path) -> dict[str, str]:
    """Environment for `python -m musicnft.cli` subprocesses pointed at the test's data dir."""
    env = dict(os.environ)
    env["MUSICNFT_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("MUSICNFT_LOG_LEVEL", "INFO")
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "musicnft.cli", *args]


@pytest.fixture(scope="session")
def bq_endpoint() -> Iterator[str]:
    """The BigQuery emulator on 127.0.0.1, started once for the session when a test asks."""
    from musicnft.bq_emulator import bigquery_emulator

    with bigquery_emulator() as endpoint:
        yield endpoint
