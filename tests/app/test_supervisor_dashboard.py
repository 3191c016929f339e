"""A dashboard that dies under `musicnft run --dashboard` is reported and started again, within
the restart bound; past it the run goes on without one (the pipeline matters more than the view)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pytest

from musicnft.app import supervisor as supervisor_module
from musicnft.app.supervisor import Supervisor
from musicnft.settings import Settings


def _args() -> argparse.Namespace:
    return argparse.Namespace(dashboard_host="127.0.0.1", dashboard_port=1, max_restarts=2)


def test_a_dead_dashboard_is_started_again_and_then_given_up_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a supervisor whose dashboard exits at once with code 3 (a port taken, a crash)
    monkeypatch.setattr(
        supervisor_module,
        "dashboard_command",
        lambda host, port: [sys.executable, "-c", "raise SystemExit(3)"],
    )
    sup = Supervisor(Settings().with_data_dir(tmp_path), _args())
    sup._start_dashboard()
    try:
        caplog.set_level(logging.INFO, logger="musicnft")
        first = sup.dashboard
        assert first is not None
        first.wait(timeout=30)
        # WHEN the supervisor tends it
        sup._tend_dashboard()
        # THEN it says so, with the exit code, and a new dashboard process is started
        assert "the dashboard exited with code 3: starting it again" in caplog.text
        assert sup.dashboard is not None and sup.dashboard.pid != first.pid
        # AND once the restart bound is used up, the run goes on without a dashboard
        for _ in range(3):
            if sup.dashboard is None:
                break
            sup.dashboard.wait(timeout=30)
            sup._tend_dashboard()
        assert sup.dashboard is None
        assert "the dashboard keeps dying (last exit code 3): running without it" in caplog.text
    finally:
        # (only a dashboard still running is stopped, through its Popen: an exited child's pid
        # may be anyone's by now, and `/usr/bin/kill -9 -PID` here sends SIGKILL to pid -1,
        # every process on the machine: it took the test run and its shell down with it)
        if sup.dashboard is not None and sup.dashboard.poll() is None:
            sup.dashboard.kill()
            sup.dashboard.wait()
