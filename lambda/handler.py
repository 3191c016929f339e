"""Lambda entry points for the consumer. Loaded by path (as AWS does): `lambda` is a keyword.

Two thin handlers over `musicnft.consumer`; the warehouse adapter is built once per container
from the environment, at first use (no work at import time).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from musicnft.hotpath.consumer import handle_firehose_event, handle_kinesis_event
from musicnft.logs import setup_logging
from musicnft.settings import Settings
from musicnft.wiring import open_warehouse


@lru_cache(maxsize=1)
def _warehouse() -> Any:
    setup_logging()
    return open_warehouse(Settings.from_env())


def kinesis_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Kinesis event source (FunctionResponseTypes: ReportBatchItemFailures)."""
    return handle_kinesis_event(event, _warehouse())


def firehose_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Firehose data transformation."""
    return handle_firehose_event(event, _warehouse())
