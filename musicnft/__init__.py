"""musicnft core: the post contract, normalization, enrichment, lake layout and the embedded adapters.

This package imports neither Dagster nor any cloud SDK at module level, so the Lambda bundle stays
small and every process (producer, delivery, consumer, Dagster, dashboard) shares one definition of
the data.
"""

__version__ = "0.1.0"

# An out-of-date compiled build never runs (see musicnft/compiled.py).
from musicnft.compiled import install_guard as _install_guard

_install_guard()
