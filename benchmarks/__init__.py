"""`make bench`: throughput of the hot path's stages, as ratios against baselines run alongside."""
