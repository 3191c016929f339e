"""Where the project is, and how tests run the CLI in a subprocess."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def cli(*args: str) -> list[str]:
    """`python -m musicnft ARGS`: the CLI as a user runs it, in a fresh interpreter."""
    return [sys.executable, "-m", "musicnft", *args]
