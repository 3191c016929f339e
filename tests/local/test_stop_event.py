"""The stop flag of every long-running command may be set from a signal handler while the main
thread waits on it (musicnft/stop_event.py). With `threading.Event` a SIGTERM landing while the
waiting thread held the event's lock hung `musicnft deliver` for good; under a stream of signals
the same program dies of a RecursionError (handlers nested in the blocked lock acquire)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

from musicnft.stop_event import StopEvent
from tests.support.paths import ROOT

# Sets the flag from a SIGUSR1 handler again and again while the main thread waits on it.
SIGNAL_STORM = textwrap.dedent(
    """
    import signal, sys, time
    from musicnft.stop_event import StopEvent

    stop = StopEvent()
    handled = [0]

    def handler(signum, frame):
        handled[0] += 1
        stop.set()

    signal.signal(signal.SIGUSR1, handler)
    print("ready", flush=True)
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        stop.wait(0)
        stop.wait(0.0001)
    print("alive", handled[0], flush=True)
    """
)

# How `musicnft deliver` waits: stop_on_signals(), then short waits until told to stop.
COMMAND_LOOP = textwrap.dedent(
    """
    from musicnft.app.cli.common import stop_on_signals

    stop = stop_on_signals()
    print("ready", flush=True)
    while not stop.wait(0.00001):
        pass
    print("stopped", flush=True)
    """
)


def _finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Its output once it exited; a hung one is killed (it fails the test, and is not left)."""
    try:
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _start(program: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", program],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_flag_set_by_hundreds_of_signals_during_waits_never_hangs_the_waiter() -> None:
    proc = _start(SIGNAL_STORM)
    sent = 0
    started = time.monotonic()
    while time.monotonic() - started < 1.5 and proc.poll() is None:
        os.kill(proc.pid, signal.SIGUSR1)
        sent += 1
        time.sleep(0.002)
    out, err = _finish(proc)
    assert proc.returncode == 0, err[-2000:]
    handled = int(out.split()[-1])
    assert sent >= 100 and handled >= 100, (sent, handled)


def test_sigterm_at_any_moment_of_a_commands_wait_stops_it_cleanly() -> None:
    rnd = random.Random(7)
    for _ in range(10):
        proc = _start(COMMAND_LOOP)
        time.sleep(rnd.uniform(0, 0.05))
        proc.send_signal(signal.SIGTERM)
        out, err = _finish(proc)
        assert proc.returncode == 0, err[-2000:]
        assert out.strip() == "stopped"


def test_it_behaves_as_a_threading_event() -> None:
    stop = StopEvent()
    assert isinstance(stop, threading.Event)
    assert not stop.is_set()
    began = time.monotonic()
    assert stop.wait(0.05) is False
    assert time.monotonic() - began >= 0.04
    assert stop.wait(0) is False
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(stop.wait()))
    waiter.start()
    time.sleep(0.05)
    stop.set()
    waiter.join(5)
    assert woke == [True]
    assert stop.is_set() and stop.wait(0) and stop.wait(10)
    stop.set()  # again: nothing changes
    assert stop.is_set()
    stop.clear()  # as threading.Event: waits block again, until the next set
    assert not stop.is_set() and stop.wait(0.02) is False
    stop.set()
    assert stop.wait(0)
