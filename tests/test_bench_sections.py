"""`make bench` is a measurement that exits 0 either way (issue #14): a section that fails is
reported with its error and the others still run; a demo that never started Dagster is said so."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.__main__ import run_sections
from benchmarks.demo_startup import _run_walls


def test_a_failing_section_is_reported_and_the_rest_still_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran: list[str] = []

    def port_taken() -> None:
        raise OSError("[Errno 98] Address already in use")

    def bad_flag() -> None:
        raise SystemExit(2)  # what a section's argparse does

    failed = run_sections(
        [
            ("first", lambda: ran.append("first")),
            ("demo startup", port_taken),
            ("flags", bad_flag),
            ("last", lambda: ran.append("last")),
        ]
    )
    assert ran == ["first", "last"]
    assert failed == ["demo startup", "flags"]
    out = capsys.readouterr().out
    assert "demo startup: not measured: OSError: [Errno 98] Address already in use" in out


def test_a_demo_that_never_started_dagster_has_no_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run_walls(tmp_path / "dagster") == []
    assert "the demo never started Dagster" in capsys.readouterr().out
