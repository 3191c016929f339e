"""Garbage-collector settings for the long-running stage processes (produce, deliver, consume).

A stage allocates several containers per post and keeps almost none of them, while the libraries it
has imported (pyarrow, duckdb, boto3, the VADER lexicon) hold a few hundred thousand long-lived
objects. With CPython's defaults a collection runs every 700 net allocations, and every 100th of
them walks that whole heap: in the consumer, building one Lambda event of 5,000 records took 3×
longer with the default settings than with these. `gc.freeze()` after start-up moves what exists
then into a permanent generation that collections never walk, and a larger first generation
makes collections rarer. Reference cycles are still collected, only in larger steps.

The consumer keeps CPython's first generation: its batches of thousands of rows leave enough
cyclic garbage between rarer collections to lift its peak RSS to 299-305 MB, past issue #14's
300 MB, against 292-293 MB with CPython's threshold (`python -m benchmarks.end_to_end`, 100k
lines), for no throughput the bench could tell apart; the frozen start-up heap is what made its event building cheap.
(malloc_tuning then took it to 256-284 MB.)
"""

from __future__ import annotations

import gc

FIRST_GENERATION = 10_000  # allocations between young collections (CPython's default: 700)


def settle_heap(first_generation: int | None = FIRST_GENERATION) -> None:
    """Call once a stage has finished starting, just before its loop (None: keep the first
    generation's threshold, only freeze)."""
    gc.collect()
    gc.freeze()
    if first_generation is not None:
        _, second, third = gc.get_threshold()
        gc.set_threshold(first_generation, second, third)
