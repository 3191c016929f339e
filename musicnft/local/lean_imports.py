"""Keep modules a process never uses from being imported behind its back (issue #14 item 9).

pyarrow asks for pandas the first time it converts Python values (`pa.array`, `from_pylist`) and
DuckDB's Python client does when it is handed an Arrow table (`register`): with pandas installed,
both import it, ~30-55 MB of resident memory in a consumer process that never makes a DataFrame.
Both treat an ImportError as "pandas is not installed" and carry on, as in the Lambda bundle,
which leaves pandas out (lambda/build_zip.py NOT_BUNDLED).

`keep_out("pandas")` makes `import pandas` (and its submodules) fail with ModuleNotFoundError in
this process from now on. It is for a process that runs one command to its end (`musicnft consume`
started as a program), never for a library call: pyarrow remembers the failed import for the life
of the process.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType


class _KeepOut(importlib.abc.MetaPathFinder):
    """First on `sys.meta_path`: refuses the kept-out top-level packages and their submodules."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (kept out of this process: it does not use it)",
                name=fullname,
            )
        return None


def keep_out(*names: str) -> list[str]:
    """Refuse future imports of these top-level packages; returns those actually kept out (one
    already imported stays available: refusing it then would only break its users)."""
    wanted = frozenset(n for n in names if n not in sys.modules)
    if wanted:
        sys.meta_path.insert(0, _KeepOut(wanted))
    return sorted(wanted)
