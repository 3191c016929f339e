"""Shared fixtures: every test gets its own data directory and never touches ./data."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import cpu_report, xdist_groups
from tests.support.durations import estimate
from tests.support.paths import ROOT
from tests.support.sample_lake import Lake, build_sample_lake


@pytest.fixture(scope="module", autouse=True)
def _collect_the_previous_files_garbage() -> None:
    """Run the garbage a previous test file left (Dagster's SQLite connections, say) through its
    finalizers here, in the main thread, before this file starts.

    Left to a later, random moment, a finalizer that logs a traceback runs Python 3.11's caret
    finder (`ast.parse`) inside whatever AST work is in progress, and CPython 3.11.7 then fails
    that work with "SystemError: AST constructor recursion depth mismatch": seen once when a
    Streamlit AppTest compiled the dashboard script (the page came out empty).

    What survives is then frozen (`gc.freeze()`): collections, this one and CPython's own, walk
    only what later files make. A worker holds 300-600 thousand objects (Dagster, pandas, pyarrow,
    Streamlit, scikit-learn): walking them all cost 0.37 CPU-s per file (26 CPU-s for 70 files,
    2.6 frozen). A frozen object that becomes cyclic garbage later is never freed, nor finalized
    at a random moment: a test worker can afford that memory."""
    gc.collect()
    gc.freeze()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "data"
    monkeypatch.setenv("MUSICNFT_DATA_DIR", str(d))
    return d


@pytest.fixture
def cli_env(data_dir: Path) -> dict[str, str]:
    """Environment for `python -m musicnft` subprocesses pointed at the test's data dir."""
    env = dict(os.environ)
    env["MUSICNFT_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("MUSICNFT_LOG_LEVEL", "INFO")
    return env


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The window tests' sample lake (tests/support/sample_lake.py), built once per module."""
    return build_sample_lake(tmp_path_factory.mktemp("window-assets"))


@pytest.fixture(scope="session")
def bq_endpoint() -> Iterator[str]:
    """The BigQuery emulator on 127.0.0.1, started once for the session when a test asks."""
    from musicnft.devtools.bq_emulator import bigquery_emulator

    with bigquery_emulator() as endpoint:
        yield endpoint


# Fixtures whose set-up is shared by the tests of one file (or all of a worker's): a test using
# one stays with its file's other tests on one worker, so the set-up is paid once.
_SHARED_SCOPES = {"module", "package", "class"}


def _group(item: pytest.Item) -> str:
    """The unit of work `make test` hands a worker (`--dist loadgroup`): every test that shares
    the session's local Spark (one JVM, one worker), a slow test that shares nothing (alone, so
    two long tests of one file run side by side), else its file."""
    defs = getattr(item, "_fixtureinfo", None)
    scopes = {
        d[-1].scope
        for name, d in (defs.name2fixturedefs.items() if defs else ())
        if d and name != "_collect_the_previous_files_garbage"  # cheap, and per file anyway
    }
    if "spark" in getattr(item, "fixturenames", ()):
        return "spark"
    if estimate(item.nodeid) >= 10 and not scopes & _SHARED_SCOPES:
        # (xdist finds the group after the node id's last "@", and only after its last "]")
        return item.nodeid.replace("[", "(").replace("]", ")").replace("@", "_")
    return str(item.path.relative_to(ROOT))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests (see `_group`), then order the groups longest first by the last measured
    durations (tests/support/durations.py), their tests' order within kept: under `make test`'s
    parallel workers the long work starts at once instead of trailing the run. (`make test`
    passes --no-loadscope-reorder, else xdist would reorder the groups by their test count.)"""
    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        name = _group(item)
        item.add_marker(pytest.mark.xdist_group(name))
        groups.setdefault(name, []).append(item)
    ordered = sorted(groups.values(), key=lambda g: -sum(estimate(i.nodeid) for i in g))
    items[:] = [item for group in ordered for item in group]
    # (the controller's scheduler reads these: tests/support/xdist_groups.py says why)
    xdist_groups.record(config, {i.nodeid: name for name, g in groups.items() for i in g})


def pytest_configure(config: pytest.Config) -> None:
    xdist_groups.configure(config)
    cpu_report.register(config)  # MUSICNFT_TEST_CPU=1: CPU by test file at the end
    _take_ctrl_c_as_a_terminal_would()
    _start_test_jvms_lean()


# JVM options for every Spark driver a test starts (the session's `spark` fixture, `musicnft spark`
# subprocesses, the packaged entry script): spark-submit adds SPARK_SUBMIT_OPTS to the driver's
# java command line. The tests' JVMs live seconds to minutes on small lakes, so the C1 compiler
# alone (no C2 optimizing pass) and the serial collector spend less CPU than the defaults: two
# Spark test files took 74 CPU-s instead of 110 (wall 58 s, was 66) on 2 cores. Not for the
# product's own jobs, which run long enough for C2 to pay.
TEST_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _start_test_jvms_lean() -> None:
    os.environ.setdefault("SPARK_SUBMIT_OPTS", TEST_JVM_OPTIONS)


def _take_ctrl_c_as_a_terminal_would() -> None:
    """Give SIGINT its ordinary meaning in this process, and so in every child the tests start.

    A shell script's background job (`make test &`, `nohup ... &`: how CI is often started)
    begins with SIGINT ignored, and an ignored signal stays ignored through fork and exec. Python
    then installs no KeyboardInterrupt handler, and `dagster dev` (which also maps SIGTERM to its
    SIGINT handler) outlived every Ctrl-C a test sent it. A handled signal is reset to its default
    in an exec'd child, so this handler gives each child the disposition it has at a terminal."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        with contextlib.suppress(ValueError):  # not the main thread: left as it is
            signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_unconfigure(config: pytest.Config) -> None:
    xdist_groups.unconfigure(config)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`make test`'s groups as xdist's work units (see tests/support/xdist_groups.py)."""
    return xdist_groups.make_scheduler(config, log)
