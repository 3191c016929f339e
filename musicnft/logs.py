"""Logging set-up shared by every process: one line per event, to stderr, UTC timestamps."""

from __future__ import annotations

import logging
import time


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once per process; later calls only change the level.

    The caller passes the level from its settings (`Settings.log_level`, from MUSICNFT_LOG_LEVEL);
    this module never reads the environment.
    """
    level = (level or "INFO").upper()
    root = logging.getLogger()
    if getattr(root, "_musicnft_configured", False):
        root.setLevel(level)
        return
    handler = logging.StreamHandler()
    formatter = logging.Formatter("%(asctime)sZ %(levelname)-7s %(name)s: %(message)s")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level)
    root._musicnft_configured = True  # type: ignore[attr-defined]
