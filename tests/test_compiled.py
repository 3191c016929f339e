"""The hot path's compiled builds (musicnft/compiled.py): built by `make test`'s `compiled` step,
used when current, never when out of date, and computing exactly what the pure modules compute."""

from __future__ import annotations

import importlib.util
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import musicnft.compiled as compiled
from tests.support import compiled_parity

ROOT = Path(__file__).resolve().parents[1]
CAN_COMPILE = shutil.which("cc") is not None and importlib.util.find_spec("Cython") is not None


def test_make_test_runs_the_compiled_modules_where_this_machine_can_compile() -> None:
    statuses = compiled.statuses()
    assert "stale" not in statuses.values(), statuses
    if CAN_COMPILE:  # `make test` runs `make compiled` first
        assert set(statuses.values()) == {"compiled"}, statuses


def test_each_module_runs_its_build_when_current_and_its_source_otherwise() -> None:
    for module, status in compiled.statuses().items():
        __import__(module)
        loaded = Path(sys.modules[module].__file__ or "")
        if status == "compiled":
            assert loaded in compiled.build_paths(module)
        else:
            assert loaded == compiled.source_path(module)


def test_a_build_older_than_its_source_is_stale_and_imports_from_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiled, "MANIFEST", tmp_path / "compiled_sources.json")
    compiled.record_sources()
    assert "stale" not in compiled.statuses().values()
    module = "musicnft.hotpath.vader_fast"
    recorded = compiled._recorded_digests()
    recorded[module] = "0" * 64  # the source has changed since it was built
    (tmp_path / "compiled_sources.json").write_text(__import__("json").dumps(recorded))
    expected = "stale" if compiled.build_paths(module) else "pure"
    assert compiled.statuses()[module] == expected

    spec = compiled._SourceFirst([module]).find_spec(module, None)
    assert spec is not None and spec.origin == str(compiled.source_path(module))
    assert compiled._SourceFirst([module]).find_spec("musicnft.hotpath.enrich", None) is None


def test_a_stale_build_warns_and_runs_the_source_in_a_fresh_interpreter(tmp_path: Path) -> None:
    # a copy of the package whose recorded digests no longer match: every build there is stale
    copy = tmp_path / "musicnft"
    shutil.copytree(ROOT / "musicnft", copy, ignore=shutil.ignore_patterns("__pycache__", "*.c"))
    (copy / "compiled_sources.json").write_text('{"musicnft.hotpath.enrich": "0"}')
    done = subprocess.run(
        [sys.executable, "-c", "import musicnft.hotpath.enrich as m; print(m.__file__)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == str(copy / "hotpath" / "enrich.py")
    if compiled.build_paths("musicnft.hotpath.enrich"):
        assert "older than its source" in done.stderr and "make compiled" in done.stderr


@pytest.mark.slow
def test_compiled_and_pure_modules_give_identical_posts_rows_and_scores() -> None:
    pure = subprocess.run(
        [sys.executable, "-m", "tests.support.compiled_parity"],
        cwd=ROOT,
        env={**os.environ, compiled.PURE_PYTHON_ENV: "1"},
        capture_output=True,
        check=True,
    ).stdout
    here = compiled_parity.outputs()
    pure_out, here_out = pickle.loads(pure), pickle.loads(here)
    assert all(name.endswith(".py") for name in pure_out["files"].values()), pure_out["files"]
    if CAN_COMPILE:
        assert not any(name.endswith(".py") for name in here_out["files"].values())
    assert len(here_out["outcomes"]) > 3000 and len(here_out["scores"]) > 5000
    for key in ("outcomes", "rows", "scores"):
        # repr: a float's repr round-trips its bits (-0.0 included), and types and key order show
        assert repr(pure_out[key]) == repr(here_out[key]), key
