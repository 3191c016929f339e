"""How the app layer starts other processes: their command lines and their environments.

Shared by the CLI (`musicnft dashboard` replaces itself with Streamlit) and the supervisor
(`musicnft run` starts the stages, `dagster dev` and the dashboard), so neither imports the other.
A child's environment is always built here and passed explicitly: this process never writes
`os.environ`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from musicnft.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_APP = REPO_ROOT / "dashboard" / "app.py"
WORKSPACE = REPO_ROOT / "workspace.yaml"


def child_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment for a child process: this process's own (passed through untouched, never
    read for configuration: that is `Settings.from_env`'s job), with the settings the child must
    share with us set explicitly (the data directory; the Dagster instance when there is one),
    then `overrides`."""
    env = dict(os.environ)
    env["MUSICNFT_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.dagster_home is not None:
        env["DAGSTER_HOME"] = str(settings.dagster_home)
    env.update(overrides)
    return env


def stage_command(stage: str, *args: str) -> list[str]:
    """`python -m musicnft STAGE ARGS` in this interpreter."""
    return [sys.executable, "-m", "musicnft", stage, *args]


def dashboard_command(host: str, port: int) -> list[str]:
    """Streamlit serving the dashboard: bound to `host`, headless, usage statistics off."""
    return [
        sys.executable, "-m", "streamlit", "run", str(DASHBOARD_APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def dashboard_env(settings: Settings) -> dict[str, str]:
    return child_env(settings, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")


def dagster_dev_command(host: str, port: int) -> list[str]:
    """`dagster dev` on the repository's workspace (run it with cwd=REPO_ROOT), through
    `musicnft_dagster.dev`: it creates a new instance's storage before `dagster dev`'s
    processes race to (they can corrupt it), then execs `dagster dev` itself."""
    return [
        sys.executable,
        *("-m", "musicnft_dagster.dev", "-w", str(WORKSPACE), "-h", host, "-p", str(port)),
    ]


def dagster_env(settings: Settings) -> dict[str, str]:
    """For `dagster dev`: `settings.dagster_home` must be set (the instance it serves)."""
    if settings.dagster_home is None:
        raise ValueError("dagster_env needs settings.dagster_home")
    return child_env(settings, DAGSTER_DISABLE_TELEMETRY="1")
