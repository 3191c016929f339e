"""The batch stages' allocator settings (musicnft/local/malloc_tuning.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.paths import cli

STAGE = """
from musicnft.local.malloc_tuning import tune_stage_allocators
capped, pool = tune_stage_allocators()
import pyarrow as pa
table = pa.table({"x": list(range(100_000))})
print(capped, pool, pa.default_memory_pool().backend_name, pa.total_allocated_bytes() > 0)
"""


def _run(script: str, **env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**environ, **env},
    ).stdout.split()


def test_a_stage_caps_malloc_arenas_and_allocates_arrow_buffers_from_malloc() -> None:
    # GIVEN a fresh process (the pool and the arenas are per process), on glibc Linux
    # WHEN a stage tunes its allocators first thing, then builds a table
    # THEN glibc took the arena cap and pyarrow's default pool is malloc's
    assert _run(STAGE) == ["True", "system", "system", "True"]
    # AND pyarrow's own default elsewhere is not malloc, so the setting is what changed it
    assert _run("import pyarrow as pa; print(pa.default_memory_pool().backend_name)") != ["system"]


def test_a_pool_the_user_chose_is_kept() -> None:
    # GIVEN ARROW_DEFAULT_MEMORY_POOL set by the user WHEN a stage tunes its allocators
    # THEN pyarrow uses the user's pool
    out = _run(STAGE, ARROW_DEFAULT_MEMORY_POOL="mimalloc")
    assert out[1:3] == ["mimalloc", "mimalloc"]


@pytest.mark.parametrize("stage", ["deliver", "consume"])
def test_the_stage_commands_tune_before_pyarrow_loads(stage: str, cli_env: dict[str, str]) -> None:
    # GIVEN an empty data dir WHEN the stage's command runs once, logging at DEBUG
    cli_env["MUSICNFT_LOG_LEVEL"] = "DEBUG"
    cli_env.pop("ARROW_DEFAULT_MEMORY_POOL", None)
    out = subprocess.run(
        [*cli(stage), "--once"], capture_output=True, text=True, env=cli_env, check=True
    )
    # THEN it tuned its allocators before anything loaded pyarrow: Arrow's pool is malloc's
    assert "allocators: malloc arenas 2, Arrow memory pool system" in out.stderr + out.stdout
