"""No process outlives `musicnft run --dagster` (issue #13 item 5): on SIGINT or SIGTERM it stops
the stages, `dagster dev`, its runs and their step processes, and the dashboard; every process it
ever started (seen through /proc while it ran) is gone when it exits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from musicnft.devtools.sample import write_sample
from tests.support.paths import cli

pytestmark = pytest.mark.slow


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time) of a live process, None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def _tree(root: int) -> dict[tuple[int, int], str]:
    """(pid, start time) -> command line of every live descendant of `root`."""
    procs = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            procs[int(entry.name)] = st
    out: dict[tuple[int, int], str] = {}
    stack = [root]
    while stack:
        parent = stack.pop()
        for pid, (ppid, state, start) in procs.items():
            if ppid == parent and state != "Z":
                stack.append(pid)
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                except OSError:
                    cmd = b""
                out[(pid, start)] = cmd.decode(errors="replace")
    return out


def _remember(seen: dict[tuple[int, int], str], tree: dict[tuple[int, int], str]) -> None:
    """Add `tree` to `seen`, never replacing a command line with an empty one: a process read
    while it exits (its memory already released, not yet a zombie) shows an empty cmdline, which
    once erased the dashboard's `streamlit` from what the test had seen."""
    for key, cmd in tree.items():
        if cmd or key not in seen:
            seen[key] = cmd


def _alive(key: tuple[int, int]) -> bool:
    st = _stat(key[0])
    return st is not None and st[1] != "Z" and st[2] == key[1]


def _with_env(marker: str) -> list[int]:
    """Live processes whose environment names our data dir (children that escaped the tree)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                env = (entry / "environ").read_bytes()
            except OSError:
                continue
            st = _stat(int(entry.name))
            if marker.encode() in env and st is not None and st[1] != "Z":
                found.append(int(entry.name))
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_no_process_outlives_run_with_dagster(
    sig: signal.Signals, tmp_path: Path, data_dir: Path, cli_env: dict[str, str]
) -> None:
    sample = tmp_path / "sample.jsonl"
    write_sample(sample, lines=3000, seed=5)
    env = dict(cli_env, MUSICNFT_DELIVERY_BUFFER_SECONDS="2")
    # GIVEN `musicnft run --dagster --dashboard` replaying a sample with live timestamps
    run = subprocess.Popen(
        cli("run", "--fresh", "--file", str(sample), "--speed", "300", "--restamp",
            "--dagster", "--dagster-port", str(_free_port()),
            "--dashboard", "--dashboard-port", str(_free_port())),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    seen: dict[tuple[int, int], str] = {}
    run_worker = False
    try:
        # WHEN a Dagster run worker (spawned by the code server) and the dashboard are both
        # running, or at most four minutes, the command gets the signal, once
        deadline = time.monotonic() + 240
        while run.poll() is None and time.monotonic() < deadline:
            tree = _tree(run.pid)
            _remember(seen, tree)
            run_worker = run_worker or any(
                "spawn_main" in cmd or "execute_run" in cmd for cmd in tree.values()
            )
            if run_worker and any("streamlit" in cmd for cmd in tree.values()):
                break
            time.sleep(0.2)
        assert run.poll() is None, "musicnft run ended by itself"
        _remember(seen, _tree(run.pid))
        run.send_signal(sig)
        # (keep watching: children started while stopping count too)
        stop_deadline = time.monotonic() + 400
        while run.poll() is None and time.monotonic() < stop_deadline:
            _remember(seen, _tree(run.pid))
            time.sleep(0.2)
        _, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    # THEN it exits by itself, and no process it started, directly or not, is left
    assert run.returncode is not None and run.returncode != 130, err[-3000:]
    assert run_worker, "no Dagster run was launched within four minutes"
    assert any("dagster" in cmd for cmd in seen.values())
    # (say what the supervisor said of the dashboard, should it ever be missing)
    dashboard_lines = [line for line in err.splitlines() if "dashboard" in line.lower()]
    assert any("streamlit" in cmd for cmd in seen.values()), "\n".join(dashboard_lines[-20:])
    time.sleep(0.5)
    survivors = {key: cmd for key, cmd in seen.items() if _alive(key)}
    assert survivors == {}, survivors
    assert _with_env(f"MUSICNFT_DATA_DIR={data_dir.resolve()}") == []
