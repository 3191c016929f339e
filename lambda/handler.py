"""Lambda entry points for the consumer. Loaded by path (as AWS does): `lambda` is a keyword.

Two thin handlers over `musicnft.hotpath.consumer`; the warehouse adapter is built once per
container from the environment, at first use (no work at import time).

Hook for running the same code outside Lambda: `kinesis_handler_for(warehouse)` returns the
Kinesis handler over a warehouse the caller opened from its own settings (the local event-source
loop, `musicnft.local.consumer_loop.load_handler`), so nothing goes through the environment.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from musicnft.hotpath.consumer import handle_firehose_event, handle_kinesis_event
from musicnft.hotpath.model_scoring import STATS
from musicnft.hotpath.scoring_metrics import counter_delta, emf_line
from musicnft.logs import setup_logging
from musicnft.settings import Settings
from musicnft.wiring import install_model_scoring, open_warehouse

if TYPE_CHECKING:
    from musicnft.ports import Warehouse


@lru_cache(maxsize=1)
def _warehouse() -> Warehouse:
    settings = Settings.from_env()
    setup_logging(settings.log_level)
    install_model_scoring(settings)  # the trained model: promoted artifact or SageMaker endpoint
    return open_warehouse(settings)


def kinesis_handler_for(
    warehouse: Warehouse,
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Kinesis handler over `warehouse` instead of the one built from the environment."""

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        return handle_kinesis_event(event, warehouse)

    return handler


_emitted: dict[str, int] = STATS.as_dict()  # what the metrics already counted


def _emit_scoring_metrics() -> None:
    """Print the scorer's counters that moved in this invocation as one EMF line (CloudWatch
    metrics such as SentimentFallbackRows; see musicnft.hotpath.scoring_metrics)."""
    now = STATS.as_dict()
    line = emf_line(
        counter_delta(now, _emitted),
        os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "musicnft-consumer"),
        int(time.time() * 1000),
    )
    _emitted.update(now)
    if line is not None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def kinesis_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Kinesis event source (FunctionResponseTypes: ReportBatchItemFailures)."""
    try:
        return handle_kinesis_event(event, _warehouse())
    finally:
        _emit_scoring_metrics()


def firehose_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Firehose data transformation."""
    try:
        return handle_firehose_event(event, _warehouse())
    finally:
        _emit_scoring_metrics()
