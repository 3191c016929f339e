"""posts_hot's small files merged on a thread of its own, beside the consumer's hot path.

Each consumer batch is one DuckLake commit and one small Parquet file; merging them keeps
posts_hot to a bounded number of files (issue #14 item 4). The merge used to run in the consumer
loop's idle moments, and at a steady rate there is an idle moment between every two batches: a
merge of ~100 files then held the next batch for one to two seconds (the p99 latency's tail).
Here it runs on its own connection (DuckDB works outside the GIL) and never holds a batch; a merge
that meets the consumer's commits gives up for now and tries again next time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("musicnft.consume")


class BackgroundCompaction:
    """Every `interval` seconds, `open_warehouse().compact(table)`, until `stop` is set."""

    def __init__(
        self,
        open_warehouse: Callable[[], Any],
        stop: threading.Event,
        table: str = "posts_hot",
        interval: float = 60.0,
    ) -> None:
        self.open_warehouse = open_warehouse
        self.stop = stop
        self.table = table
        self.interval = interval
        self.merged = 0  # files merged so far (tests and logs)
        self._thread = threading.Thread(target=self._run, name=f"{table}-compaction", daemon=True)

    def start(self) -> BackgroundCompaction:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        warehouse = None
        try:
            while not self.stop.wait(self.interval):
                try:
                    if warehouse is None:
                        warehouse = self.open_warehouse()
                    compact = getattr(warehouse, "compact", None)
                    merged = compact(self.table) if compact is not None else 0
                except Exception:  # an outage or a conflict storm: the next turn tries again
                    log.exception("%s compaction failed; trying again in %.0f s", self.table,
                                  self.interval)  # fmt: skip
                    continue
                if merged:
                    self.merged += merged
                    log.info("compacted %d small %s files into one", merged, self.table)
        finally:
            close = getattr(warehouse, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
