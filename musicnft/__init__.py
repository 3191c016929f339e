"""musicnft core: the post contract, normalization, enrichment, lake layout and the embedded adapters.

This package imports neither Dagster nor any cloud SDK at module level, so the Lambda bundle stays
small and every process (producer, delivery, consumer, Dagster, dashboard) shares one definition of
the data.
"""

__version__ = "0.1.0"
