"""Logging set-up shared by every process: one line per event, to stderr, UTC timestamps."""

from __future__ import annotations

import logging
import os
import time


def setup_logging(level: str | None = None) -> None:
    level = (level or os.environ.get("MUSICNFT_LOG_LEVEL") or "INFO").upper()
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
