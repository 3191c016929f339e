"""A local BigQuery for tests and the cloud rehearsal: bqemulator 1.4.0 on 127.0.0.1.

Why this module: the emulator is DuckDB underneath and would download DuckDB's spatial and avro
extensions on first start, which an offline machine cannot do. The extensions ship as PyPI wheels
(in the lock); we install them into a DuckDB extension folder under a private HOME and start the
emulator with that HOME, so nothing touches the user's own `~/.duckdb` and nothing is fetched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("musicnft.bq_emulator")

PROJECT = "test-project"
EXTENSIONS = ("duckdb_extension_spatial", "duckdb_extension_avro")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def install_extensions(home: Path) -> None:
    """INSTALL the wheel-shipped extensions into `<home>/.duckdb/extensions` (DuckDB's default)."""
    import importlib

    import duckdb

    folder = home / ".duckdb" / "extensions"
    con = duckdb.connect(config={"extension_directory": str(folder)})
    try:
        for module_name in EXTENSIONS:
            module = importlib.import_module(module_name)
            found = sorted(Path(str(module.__file__)).parent.rglob("*.duckdb_extension"))
            if not found:
                raise RuntimeError(f"{module_name} ships no .duckdb_extension file")
            con.execute(f"INSTALL '{found[0]}'")
    finally:
        con.close()


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM the emulator when its parent dies, so a
    killed test run or rehearsal never leaves an emulator behind."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the context manager's cleanup still stops it


def _executable() -> str:
    beside = Path(sys.executable).parent / "bqemulator"
    if beside.exists():
        return str(beside)
    found = shutil.which("bqemulator")
    if not found:
        raise RuntimeError("bqemulator is not installed: run `make install` (it is in the lock)")
    return found


def _server_command() -> list[str]:
    """bqemulator's server in this interpreter, each SQL text parsed once (bq_emulator_server.py
    says why); `_executable()` checks that bqemulator is installed at all."""
    _executable()
    return [sys.executable, "-m", "musicnft.devtools.bq_emulator_server"]


def wait_ready(endpoint: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    url = f"{endpoint}/bigquery/v2/projects/{PROJECT}/datasets"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bqemulator exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers: ready
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"bqemulator did not answer on {endpoint} within {timeout:.0f} s")


@contextlib.contextmanager
def bigquery_emulator(log_path: Path | None = None) -> Iterator[str]:
    """Start the emulator on free loopback ports; yield its REST endpoint; stop it after."""
    home = Path(tempfile.mkdtemp(prefix="musicnft-bqemu-"))
    install_extensions(home)
    rest, grpc = _free_port(), _free_port()
    env = {**os.environ, "HOME": str(home), "NO_GCE_CHECK": "true"}
    out = open(log_path or home / "emulator.log", "ab")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            *_server_command(),
            "start",
            "--rest-host",
            "127.0.0.1",
            "--rest-port",
            str(rest),
            "--grpc-host",
            "127.0.0.1",
            "--grpc-port",
            str(grpc),
            "--project",
            PROJECT,
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,  # the emulator stops if we are killed
    )
    endpoint = f"http://127.0.0.1:{rest}"
    try:
        try:
            wait_ready(endpoint, process)
        except (RuntimeError, TimeoutError) as exc:
            out.flush()
            tail = (log_path or home / "emulator.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{exc}; its log ends with:\n{tail}") from None
        log.info("bqemulator up on %s (project %s)", endpoint, PROJECT)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()
        shutil.rmtree(home, ignore_errors=True)
