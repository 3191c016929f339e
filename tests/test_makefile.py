"""The Makefile's targets keep Python's bytecode caches on: the suite starts hundreds of Python
processes, and with PYTHONDONTWRITEBYTECODE=1 (common in container images, set on our CI
machines) each compiled every module it imported from source again."""

from __future__ import annotations

import os
import subprocess

from tests.support.paths import ROOT


def _make(*args: str) -> str:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        ["make", "-s", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_recipes_run_without_pythondontwritebytecode_even_when_the_caller_sets_it() -> None:
    probe = "probe-bytecode: ; @echo [$${PYTHONDONTWRITEBYTECODE-unset}]"
    assert _make("--eval", probe, "probe-bytecode").strip() == "[unset]"


def test_the_install_compiles_the_packages_bytecode() -> None:
    recipe = _make("-n", "-B", ".venv/.installed")  # printed, not run
    installs = [line for line in recipe.splitlines() if "uv pip install" in line]
    assert len(installs) == 2 and all("--compile-bytecode" in line for line in installs), recipe
