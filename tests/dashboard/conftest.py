"""The dashboard's AppTest runs compile the Streamlit script in a thread of their own."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_finalizers_during_a_script_compile() -> None:
    """Finalizers of garbage left by earlier tests (a SQLite connection closed from the wrong
    thread, logged with a traceback) must not run while AppTest compiles the script: on
    CPython 3.11.7 the traceback's `ast.parse` inside the compile's AST conversion raises
    "AST constructor recursion depth mismatch" and the page renders empty (see tests/conftest.py,
    which also says why what survives is frozen)."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True, scope="session")
def _installed_components_scanned_once() -> Iterator[None]:
    """Every AppTest run asks Streamlit to scan the metadata of every installed distribution for
    v2 components (about 1 s of CPU a run here, a third of a dashboard test). The venv does not
    change while the suite runs, so the scan runs once and its answer is reused; the dashboard
    script itself still runs in full each time."""
    from streamlit.components.v2 import manifest_scanner

    scanned = manifest_scanner.scan_component_manifests()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            manifest_scanner, "scan_component_manifests", lambda max_workers=None: list(scanned)
        )
        yield
