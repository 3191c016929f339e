"""Where the suite's CPU goes, per test file: `MUSICNFT_TEST_CPU=1 make test` (issue #14 item 8).

`--durations` lists wall time, and under `make test`'s parallel workers on 2 cores a test's wall
time is mostly other tests' work: it cannot say which tests to make cheaper. This counts, for each
test (set-up, call and teardown), the CPU its worker spent itself and the CPU of the child
processes the worker reaped meanwhile (`RUSAGE_CHILDREN`: a child counts when it is waited for,
with its own reaped children), and prints the files that used the most at the end of the run.

What it cannot see: a process nobody waits for (a server a session fixture stops at the very end
is counted in the test that ends the session), and processes other processes adopted. Process
accounting (`accton`) sees everything, at the price of root and a package.
"""

from __future__ import annotations

import os
import resource
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

ENV = "MUSICNFT_TEST_CPU"
KEY = "musicnft_cpu"  # (self CPU s, reaped children's CPU s) in a teardown report's user_properties
_STARTED = pytest.StashKey[tuple[float, float]]()


def enabled() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def _cpu() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def start(item: pytest.Item) -> None:
    item.stash[_STARTED] = _cpu()


def stop(item: pytest.Item) -> None:
    """Called after the teardown ran and before its report is made (the report carries it to the
    controller under pytest-xdist)."""
    began = item.stash.get(_STARTED, None)
    if began is None:
        return
    now = _cpu()
    item.user_properties.append((KEY, (now[0] - began[0], now[1] - began[1])))


class Tally:
    """The controller's sums, from each test's teardown report."""

    def __init__(self) -> None:
        self.by_test: dict[str, tuple[float, float]] = {}

    def add(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        for key, value in report.user_properties:
            if key == KEY:
                self.by_test[report.nodeid] = (float(value[0]), float(value[1]))

    def lines(self, top: int = 25) -> list[str]:
        if not self.by_test:
            return ["no CPU figures (were the tests run with this plugin in every worker?)"]
        files: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
        for nodeid, (own, children) in self.by_test.items():
            f = files[nodeid.split("::")[0]]
            f[0] += own
            f[1] += children
            f[2] += 1
        own_total = sum(v[0] for v in self.by_test.values())
        children_total = sum(v[1] for v in self.by_test.values())
        light = sum(1 for own, ch in self.by_test.values() if own + ch < 0.2)
        out = [
            f"{len(self.by_test)} tests used {own_total + children_total:.0f} CPU-s: "
            f"{own_total:.0f} in the workers, {children_total:.0f} in reaped child processes; "
            f"{light} tests under 0.2 CPU-s each",
            f"{'CPU-s':>8} {'workers':>8} {'children':>8} {'tests':>5}  file",
        ]
        ranked = sorted(files.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))
        for name, (own, children, n) in ranked[:top]:
            out.append(f"{own + children:8.1f} {own:8.1f} {children:8.1f} {int(n):5d}  {name}")
        return out


class CpuReport:
    """The plugin, registered by tests/conftest.py when `MUSICNFT_TEST_CPU` is set: the hooks
    that measure run in each worker (or the only process), those that sum and print in the
    controller."""

    def __init__(self) -> None:
        self.tally = Tally()

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        start(item)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Iterator[Any]:
        yield
        stop(item)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.tally.add(report)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.section(f"CPU by test file ({ENV}=1)")
        for line in self.tally.lines():
            terminalreporter.write_line(line)


def register(config: pytest.Config) -> None:
    if enabled():
        config.pluginmanager.register(CpuReport(), "musicnft-cpu-report")
