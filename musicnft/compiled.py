"""The hot path's compiled builds: which modules have one, whether each is current, and a guard
that never lets an out-of-date build run (`python -m musicnft.devtools.compile` builds them).

Issue #14 asks for enrichment at 5× VADER with identical scores, "moving the hot loop to compiled
code if Python cannot get there". Python got FastVader to about 7× but `enrich` only to about 5×,
not reliably; the same `.py` files compiled by Cython (`make compiled`, `setup.py`) run 1.3-1.6×
faster with the same semantics: Cython compiles Python code as Python (ints stay arbitrary, floats
are the same doubles, operations run in the same order), so every score stays bit for bit.
`annotation_typing` is off so annotations never change a value's type. One `.pxd` gives C types
on purpose: `contract/keywords.pxd` types the locals of the keyword scan (character codes below
0x110000, indices below a text's length: C integers hold them exactly), which makes that loop C;
its interpreted twin is tested to give the same answers.

A build is a `<module>.cpython-*.so` beside its `.py`, which Python imports in its place. So that
an edited `.py` never runs as its old build, `setup.py` records each source's SHA-256 in
`compiled_sources.json` when it builds, and importing `musicnft` checks them (about a millisecond,
only where a build exists): a module whose source changed since is imported from its `.py`, with a
warning to rebuild. `MUSICNFT_PURE_PYTHON=1` imports every module from its `.py` (the Lambda
bundle and a machine without a C compiler run pure Python anyway: the results are the same,
`tests/test_compiled.py` compares them).

Only the standard library here: `setup.py` reads this file before the package is installed.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

# The modules compiled: pure functions on every post's path (decode, normalize, conform, keyword
# and entity matching, VADER, enrichment). Nothing here may depend on being interpreted.
COMPILED_MODULES: tuple[str, ...] = (
    "musicnft.hotpath.vader_fast",
    "musicnft.hotpath.enrich",
    "musicnft.hotpath.entities",
    "musicnft.hotpath.decode",
    "musicnft.hotpath.normalize_x",
    "musicnft.contract.schema",
    "musicnft.contract.keywords",
)

# Cython's settings for every module: Python 3 semantics, and annotations never used as C types.
CYTHON_DIRECTIVES: dict[str, object] = {
    "language_level": 3,
    "annotation_typing": False,
    "binding": True,
}

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = Path(__file__).resolve().with_name("compiled_sources.json")
PURE_PYTHON_ENV = "MUSICNFT_PURE_PYTHON"


def source_path(module: str) -> Path:
    """The `.py` file a module is compiled from."""
    return PACKAGE_ROOT.joinpath(*module.split(".")).with_suffix(".py")


def build_paths(module: str) -> list[Path]:
    """The module's compiled builds beside its source (normally none or one)."""
    source = source_path(module)
    return [
        source.with_name(source.stem + suffix)
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if source.with_name(source.stem + suffix).exists()
    ]


def source_digest(module: str) -> str:
    """SHA-256 of the module's `.py`, and of its `.pxd` where it has one (the C types Cython
    gives some of its locals: a build made before the `.pxd` changed is stale too)."""
    source = source_path(module)
    digest = hashlib.sha256(source.read_bytes())
    declarations = source.with_suffix(".pxd")
    if declarations.exists():
        digest.update(declarations.read_bytes())
    return digest.hexdigest()


def _recorded_digests() -> dict[str, str]:
    try:
        recorded = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def record_sources(modules: Sequence[str] = COMPILED_MODULES) -> None:
    """Write each module's source digest as built (called by `setup.py` after a build)."""
    recorded = _recorded_digests()
    recorded.update({module: source_digest(module) for module in modules})
    tmp = MANIFEST.with_suffix(".tmp")
    tmp.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    tmp.replace(MANIFEST)


def statuses() -> dict[str, str]:
    """Per module: "compiled" (a build of its current source), "stale" (a build of an older
    source, so not used) or "pure" (no build)."""
    recorded = _recorded_digests()
    out: dict[str, str] = {}
    for module in COMPILED_MODULES:
        if not build_paths(module):
            out[module] = "pure"
        elif recorded.get(module) == source_digest(module):
            out[module] = "compiled"
        else:
            out[module] = "stale"
    return out


def pure_python_requested() -> bool:
    # Read here rather than in settings.py: it decides how modules load, before any setting is.
    return os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0")


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Imports the named modules from their `.py` even though a build sits beside it."""

    def __init__(self, modules: Sequence[str]) -> None:
        self.modules = frozenset(modules)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.modules:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


def install_guard() -> None:
    """Make every module whose build is out of date (or all of them, if pure Python was asked
    for) import from its source. Called once by `musicnft/__init__.py`."""
    if not any(build_paths(module) for module in COMPILED_MODULES):
        return
    if pure_python_requested():
        use_source = list(COMPILED_MODULES)
    else:
        use_source = [m for m, status in statuses().items() if status == "stale"]
        if use_source:
            warnings.warn(
                f"musicnft: the compiled build of {', '.join(use_source)} is older than its "
                "source, so the source runs instead (slower, same results); run `make compiled` "
                "to rebuild",
                RuntimeWarning,
                stacklevel=2,
            )
    if use_source:
        sys.meta_path.insert(0, _SourceFirst(use_source))
