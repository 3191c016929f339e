"""Builds the hot path's compiled modules in place: `python setup.py build_ext --inplace`, run by
`make compiled` (`python -m musicnft.devtools.compile`). Which modules and why: musicnft/compiled.py.

Everything else about the package is in pyproject.toml; `pip install -e .` builds nothing here,
so an install never needs a C compiler.
"""

from __future__ import annotations

import runpy
import sys

from setuptools import setup

ext_modules = []
compiled = None
if "build_ext" in sys.argv:
    from Cython.Build import cythonize

    # the package is not importable yet when setup.py runs: read the list from its file
    compiled = runpy.run_path("musicnft/compiled.py")
    ext_modules = cythonize(
        [name.replace(".", "/") + ".py" for name in compiled["COMPILED_MODULES"]],
        compiler_directives=compiled["CYTHON_DIRECTIVES"],
        nthreads=2,
        quiet=True,
    )

setup(ext_modules=ext_modules)

if compiled is not None:
    compiled["record_sources"]()
