"""Third-party libraries log at WARNING and above in our processes (musicnft/logs.py)."""

from __future__ import annotations

import logging

import dagster as dg
import pytest

from musicnft.logs import setup_logging


def test_opening_a_dagster_instance_logs_no_storage_migration_chatter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN our logging at INFO (as `musicnft run` sets it)
    setup_logging("INFO")
    # WHEN a Dagster instance opens its SQLite storage (each of the demo's final window runs does)
    with caplog.at_level(logging.INFO):
        dg.DagsterInstance.ephemeral().dispose()
    # THEN alembic's per-storage INFO lines ("Context impl SQLiteImpl.") stay out of the output
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
