"""The supervisor reaps orphans it adopted as subreaper, reading the process list only when a child
has exited (it calls `reap_adopted` five times a second: listing every process each time kept an
idle `musicnft run` at 4% of a core)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from musicnft.app import proctree

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreaper: Linux")

# Runs as its own program: becoming a subreaper would change the pytest worker's process tree.
PROGRAM = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from musicnft.app import proctree

    assert proctree.become_subreaper()
    assert not proctree.has_exited_child()  # no child yet
    # a child that starts a grandchild and exits: the grandchild is adopted by this process
    child = subprocess.Popen([sys.executable, "-c",
        "import subprocess, sys; "
        "print(subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(0.5)']).pid)"],
        stdout=subprocess.PIPE, text=True)
    orphan = int(child.stdout.read().strip())
    assert child.wait() == 0
    own = subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)"])
    while not proctree.has_exited_child():
        time.sleep(0.01)
    # the Popen's own exited child is left to its Popen, whose exit code is intact
    proctree.reap_adopted([own.pid])
    assert own.wait() == 7
    # the orphan, once it exits, is reaped (not left a zombie)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        proctree.reap_adopted([])
        if proctree.read_proc(orphan) is None:
            break
        time.sleep(0.05)
    assert proctree.read_proc(orphan) is None, "the adopted orphan is still there"
    assert not proctree.has_exited_child()
    print("ok")
    """
)


def test_an_adopted_orphan_is_reaped_and_a_popens_own_child_is_left_to_it() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_a_peek_reaps_nothing() -> None:
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    deadline = time.monotonic() + 30
    while not proctree.has_exited_child() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proctree.has_exited_child()
    assert proctree.has_exited_child()  # still there: nothing was reaped
    assert child.wait() == 3
