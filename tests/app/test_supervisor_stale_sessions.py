"""A stop never kills an unrelated process that happens to carry an exited child's old pid as its
session or group id (pids wrap: on this project's CI machine, test runs reuse them within minutes,
and a stop's sweep by id killed the shell of whoever ran the tests)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from musicnft.app import proctree
from musicnft.app.supervisor import Supervisor
from musicnft.settings import Settings


def _unrelated_session_leader() -> int:
    """A sleeping process in a session of its own that is not our descendant (its parent exited,
    so it was re-parented away from us), like a stranger that got a recycled pid."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(60)'], start_new_session=True, "
            "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def _alive(pid: int) -> bool:
    proc = proctree.read_proc(pid)
    return proc is not None and proc.state != "Z"


def test_the_stop_sweep_leaves_a_stranger_holding_a_recorded_session_id(tmp_path: Path) -> None:
    stranger = _unrelated_session_leader()
    try:
        assert _alive(stranger)
        assert stranger not in {p.pid for p in proctree.descendants(os.getpid())}
        sup = Supervisor(Settings().with_data_dir(tmp_path), argparse.Namespace(fresh=False))
        sup.sessions.append(stranger)  # an exited child's pid, now the stranger's session id
        sup.subreaper = True  # as run() makes it on Linux

        assert sup._sweep_sessions() == []
        proctree.kill_everything(sup._sweep_sessions(), grace=0.5, spare=sup.spared)
        assert stranger not in proctree.pids_to_stop(sup._sweep_sessions(), root=os.getpid())
        time.sleep(0.2)
        assert _alive(stranger)

        # without a subreaper the ids are all there is to reach escaped processes: swept by id
        sup.subreaper = False
        assert stranger in proctree.pids_to_stop(sup._sweep_sessions(), root=os.getpid())
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stranger, signal.SIGKILL)


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_the_sweep_spares_what_its_process_had_started_before_the_supervisor(
    tmp_path: Path,
) -> None:
    # GIVEN a process that already has a child (a test worker's Spark JVM, say) when it makes a
    # supervisor, and a child started after it (as the supervisor's own children are)
    before = _sleeper()
    try:
        sup = Supervisor(Settings().with_data_dir(tmp_path), argparse.Namespace(fresh=False))
        after = _sleeper()
        try:
            # WHEN the supervisor's last sweep runs
            time.sleep(0.2)  # both are running
            assert {before.pid, after.pid} <= {p.pid for p in proctree.descendants(os.getpid())}
            stopped = proctree.kill_everything(sup._sweep_sessions(), grace=2.0, spare=sup.spared)
            # THEN the older child lives on, and the newer one is stopped
            assert after.pid in stopped and before.pid not in stopped
            assert after.wait(timeout=10) is not None
            assert before.poll() is None
            assert before.pid not in proctree.pids_to_stop([], os.getpid(), spare=sup.spared)
        finally:
            after.kill()
            after.wait()
    finally:
        before.kill()
        before.wait()
