"""Lambda entry points for the consumer. Loaded by path (as AWS does): `lambda` is a keyword.

Two thin handlers over `musicnft.hotpath.consumer`; the warehouse adapter is built once per
container from the environment, at first use (no work at import time).

Hook for running the same code outside Lambda: `kinesis_handler_for(warehouse)` returns the
Kinesis handler over a warehouse the caller opened from its own settings (the local event-source
loop, `musicnft.local.consumer_loop.load_handler`), so nothing goes through the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from musicnft.hotpath.consumer import handle_firehose_event, handle_kinesis_event
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


def kinesis_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Kinesis event source (FunctionResponseTypes: ReportBatchItemFailures)."""
    return handle_kinesis_event(event, _warehouse())


def firehose_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Firehose data transformation."""
    return handle_firehose_event(event, _warehouse())
