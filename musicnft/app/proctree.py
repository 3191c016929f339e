"""The supervisor's children and everything they start: process groups, descendants, a clean end.

Every child of `musicnft run` starts in its own session (so its own process group, whose id is the
child's pid): a terminal's Ctrl-C reaches only the supervisor, and stopping a child means
signalling its whole group (Dagster's webserver, daemon, code server, run workers and step
processes all stay in `dagster dev`'s group). On Linux the supervisor is also a "child
subreaper": a grandchild whose parent died (a Dagster run worker outliving `dagster dev`) is
re-parented to the supervisor instead of init, so the final sweep still finds it through
/proc's parent links. Nothing here is needed for correctness elsewhere; without /proc (macOS) the
groups alone are used.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("musicnft.run")

PR_SET_CHILD_SUBREAPER = 36
PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    start: int = 0  # clock ticks after boot: with the pid, one process (pids are reused)

    @property
    def identity(self) -> tuple[int, int]:
        return (self.pid, self.start)


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def read_proc(pid: int) -> Proc | None:
    """One process from /proc/PID/stat (None when it is gone or unreadable)."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session ..."; comm may hold spaces and parentheses
    rest = raw[raw.rfind(")") + 2 :].split()
    try:
        return Proc(pid, int(rest[1]), int(rest[2]), int(rest[3]), rest[0], int(rest[19]))
    except (IndexError, ValueError):
        return None


def all_procs() -> list[Proc]:
    if not PROC.is_dir():
        return []
    out = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            proc = read_proc(int(entry.name))
            if proc is not None:
                out.append(proc)
    return out


def descendants(root: int, procs: list[Proc] | None = None) -> list[Proc]:
    """Every live process below `root` by parent links (zombies included)."""
    procs = all_procs() if procs is None else procs
    children: dict[int, list[Proc]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    out: list[Proc] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child.pid)
    return out


def members(
    sessions: Iterable[int], root: int | None = None, spare: Collection[tuple[int, int]] = ()
) -> list[Proc]:
    """Live (non-zombie) processes of the given sessions, plus `root`'s descendants, less the
    `spare` ones (`Proc.identity`: processes that were there before, not ours to stop)."""
    wanted = set(sessions)
    procs = all_procs()
    found = {p.pid: p for p in procs if p.sid in wanted or p.pgid in wanted}
    if root is not None:
        found.update({p.pid: p for p in descendants(root, procs)})
    return [
        p
        for p in found.values()
        if p.state != "Z" and p.pid != os.getpid() and p.identity not in spare
    ]


def existing_descendants() -> frozenset[tuple[int, int]]:
    """This process's descendants now (`Proc.identity`), to spare them in a later sweep: a
    caller that runs the supervisor in its own process (a test worker holding a Spark JVM)
    keeps the children it had before."""
    return frozenset(p.identity for p in descendants(os.getpid()))


def pids_to_stop(
    sessions: Iterable[int], root: int, spare: Collection[tuple[int, int]] = ()
) -> list[int]:
    """The live processes a forced stop kills: `root`'s descendants and the given sessions',
    less the `spare` ones."""
    return [p.pid for p in members(sessions, root=root, spare=spare)]


def has_exited_child() -> bool:
    """Whether a child of this process has exited and waits to be reaped (a peek: nothing is
    reaped). Where the platform cannot peek, say yes."""
    if not hasattr(os, "waitid"):
        return True
    try:
        return os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # no children at all
        return False


def reap_adopted(known: Iterable[int]) -> None:
    """Reap zombie children this process adopted as subreaper (never a Popen's own child: its
    exit status belongs to its Popen).

    The supervisor calls this five times a second. Listing every process of the machine costs
    about 4 ms with 65 of them (several times that on a desktop with hundreds), so the list is
    only read when a child has exited: an idle `musicnft run` used 4% of a core for it."""
    if not has_exited_child():
        return
    mine = set(known)
    for p in descendants(os.getpid()):
        if p.ppid == os.getpid() and p.state == "Z" and p.pid not in mine:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(p.pid, os.WNOHANG)


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _group_alive(pgid: int, leader: subprocess.Popen[bytes] | None) -> bool:
    if leader is not None:
        leader.poll()  # reap the leader so a finished group is seen as gone
    procs = [p for p in all_procs() if p.pgid == pgid and p.state != "Z"]
    if PROC.is_dir():
        return bool(procs)
    return _signal_group(pgid, 0)


def stop_group(
    proc: subprocess.Popen[bytes],
    first: int = signal.SIGTERM,
    grace: float = 10.0,
    name: str = "child",
) -> None:
    """Signal `proc`'s whole process group with `first`, wait up to `grace` seconds for every
    member to exit, then SIGKILL what is left. The leader is reaped."""
    pgid = proc.pid
    if proc.poll() is None or _group_alive(pgid, proc):
        _signal_group(pgid, first)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(pgid, proc):
            time.sleep(0.1)
        if _group_alive(pgid, proc):
            log.warning("%s did not stop within %.0fs of %s: killing its process group", name,
                        grace, signal.Signals(first).name)  # fmt: skip
            _signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(30)


def kill_everything(
    sessions: Iterable[int], grace: float = 5.0, spare: Collection[tuple[int, int]] = ()
) -> list[int]:
    """The last sweep: SIGTERM every live process of our children's sessions and every
    descendant of this process (but the `spare` ones), SIGKILL what is left after `grace`
    seconds, reap what we can. Returns the pids that were still alive at the start."""
    sessions = list(sessions)
    alive = members(sessions, root=os.getpid(), spare=spare)
    for p in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and members(sessions, root=os.getpid(), spare=spare):
        reap_adopted(())
        time.sleep(0.1)
    for p in members(sessions, root=os.getpid(), spare=spare):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p.pid, signal.SIGKILL)
    time.sleep(0.1)
    reap_adopted(())
    return [p.pid for p in alive]
