"""The stage processes' garbage-collector settings (musicnft/local/gc_tuning.py)."""

from __future__ import annotations

import subprocess
import sys


def test_settle_heap_freezes_start_up_objects_and_keeps_collecting_cycles() -> None:
    code = """
import gc, weakref
from musicnft.local.gc_tuning import FIRST_GENERATION, settle_heap
before = gc.get_threshold()
settle_heap()
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
assert gc.get_threshold() == (FIRST_GENERATION, before[1], before[2]), gc.get_threshold()

class Node:
    'One member of a reference cycle.'

a, b = Node(), Node()
a.other, b.other = b, a
alive = weakref.ref(a)
del a, b
# net allocations past the first generation's threshold run a young collection by themselves
keep = [[] for _ in range(FIRST_GENERATION * 2)]
assert alive() is None
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_settle_heap_can_keep_the_first_generation_and_only_freeze() -> None:
    code = """
import gc
from musicnft.local.gc_tuning import settle_heap
before = gc.get_threshold()
settle_heap(first_generation=None)
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
assert gc.get_threshold() == before, gc.get_threshold()
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
