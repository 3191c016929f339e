"""Loading the code location stays light: the code server, the daemon and every window run's
worker import `musicnft_dagster.definitions`, so what it imports is paid on each run's start
(`make demo`'s first aggregates wait on it). pyspark (about 0.5 s) is imported only by a
`scored_posts` run."""

from __future__ import annotations

import subprocess
import sys


def test_loading_the_definitions_does_not_import_pyspark() -> None:
    probe = (
        "import sys, musicnft_dagster.definitions as d; "
        "assert d.defs is not None; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'dagster_pyspark', 'py4j')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    assert out == "[]"
