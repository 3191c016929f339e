"""The dashboard's AppTest runs compile the Streamlit script in a thread of their own."""

from __future__ import annotations

import gc

import pytest


@pytest.fixture(autouse=True)
def _no_finalizers_during_a_script_compile() -> None:
    """Finalizers of garbage left by earlier tests (a SQLite connection closed from the wrong
    thread, logged with a traceback) must not run while AppTest compiles the script: on
    CPython 3.11.7 the traceback's `ast.parse` inside the compile's AST conversion raises
    "AST constructor recursion depth mismatch" and the page renders empty (see tests/conftest.py)."""
    gc.collect()
