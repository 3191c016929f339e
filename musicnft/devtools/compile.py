"""`make compiled`: build the hot path's Cython modules that are missing or out of date.

What is compiled and why, and the guard that keeps an out-of-date build from running, are in
`musicnft/compiled.py`. A failed build (no C compiler, no Cython) is reported and leaves pure
Python in place with exit code 0: the project runs the same without it, only slower.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence

from musicnft.compiled import COMPILED_MODULES, PACKAGE_ROOT, build_paths, statuses


def build(force: bool = False) -> int:
    todo = [m for m, status in statuses().items() if force or status != "compiled"]
    if not todo:
        print(f"compiled: all {len(COMPILED_MODULES)} hot-path modules are current")
        return 0
    # A stale build may carry a newer file time than its source (a checkout, `cp -p`), and then
    # Cython and setuptools would keep it: the stale ones are removed so they are rebuilt.
    for module in todo:
        for path in build_paths(module):
            path.unlink()
            path.with_name(path.name.split(".", 1)[0] + ".c").unlink(missing_ok=True)
    print(
        f"compiling {len(todo)} hot-path module(s) with Cython (about 30 s on 2 cores): "
        + ", ".join(todo),
        flush=True,
    )
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=PACKAGE_ROOT,
        check=False,
    )
    if done.returncode != 0:
        print(
            "compiled: the build failed (see above); the pure-Python modules run instead, "
            "with the same results, more slowly",
            file=sys.stderr,
        )
        return 0
    left = [m for m, status in statuses().items() if status != "compiled"]
    print("compiled: " + (f"still not built: {', '.join(left)}" if left else "done"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m musicnft.devtools.compile",
        description="The hot path's Cython builds (musicnft/compiled.py): `status` lists each "
        "module's state, `build` compiles those missing or out of date (`make compiled`).",
    )
    parser.add_argument("command", choices=("status", "build"), nargs="?", default="build")
    parser.add_argument("--force", action="store_true", help="build: rebuild every module")
    args = parser.parse_args(argv)
    if args.command == "build":
        return build(force=args.force)
    for module, status in statuses().items():
        print(f"{status:9s} {module}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
