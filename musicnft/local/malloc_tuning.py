"""Memory allocator settings for the stages that hold batches of thousands of rows (delivery and
the consumer): issue #14 item 9 holds each to 300 MB at full speed.

- pyarrow's default pool (mimalloc) keeps the pages of freed buffers for its own reuse, so every
  batch's Arrow tables and Parquet buffers stay in RSS at their high-water mark; its system pool
  hands them back to malloc.
- glibc gives each thread that meets contention its own arena (up to 8 per core), and a freed
  block returns to the arena it came from: batches are built by Python's thread and copied by
  DuckDB's and pyarrow's worker threads, and each arena keeps its own high-water mark.

With both (`python -m benchmarks.end_to_end`, 100k lines, 4 runs): consumer peak RSS 256-284 MB and
delivery 158-160 MB, against 292-301 MB and 181-186 MB before, for throughput the bench could not
tell apart.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # from glibc's malloc.h
STAGE_ARENAS = 2


def limit_malloc_arenas(arenas: int = STAGE_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process; call before its worker threads start. False
    (and nothing changed) where the C library is not glibc or refuses the setting."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_ARENA_MAX, arenas))
    if not done:
        log.debug("mallopt(M_ARENA_MAX, %d) refused: glibc's default arenas kept", arenas)
    return done


def use_system_arrow_pool() -> str:
    """Make malloc pyarrow's default memory pool (unless ARROW_DEFAULT_MEMORY_POOL says
    otherwise); returns the pool's backend name. Arrow's C++ code (the Parquet writer, DuckDB's
    Arrow scans) reads that variable once, when pyarrow loads, and `pa.set_memory_pool` reaches
    only pyarrow's own calls: this must run before anything imports pyarrow."""
    if "pyarrow" not in sys.modules:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    import pyarrow as pa

    return str(pa.default_memory_pool().backend_name)


def tune_stage_allocators() -> tuple[bool, str]:
    """Both settings; call first thing in a batch stage's command, before pyarrow or DuckDB is
    imported. Returns whether the arenas were capped, and pyarrow's pool."""
    capped, pool = limit_malloc_arenas(), use_system_arrow_pool()
    log.debug("allocators: malloc arenas %s, Arrow memory pool %s",
              STAGE_ARENAS if capped else "glibc's default", pool)  # fmt: skip
    return capped, pool
