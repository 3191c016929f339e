"""A real local BigQuery for tests: the emulator (one per session) and a fresh dataset per use."""

from __future__ import annotations

import uuid
from typing import Any

from musicnft.adapters.bigquery.migrate import migrate
from musicnft.adapters.bigquery.warehouse import BigQueryWarehouse, bigquery_client
from musicnft.devtools.bq_emulator import PROJECT


def client_for(endpoint: str) -> Any:
    return bigquery_client(PROJECT, endpoint=endpoint)


def new_dataset(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def fresh_warehouse(endpoint: str, prefix: str = "t", **kwargs: Any) -> BigQueryWarehouse:
    """A migrated dataset of its own (tables and views), behind the BigQuery adapter."""
    client = client_for(endpoint)
    dataset = new_dataset(prefix)
    migrate(client, dataset)
    return BigQueryWarehouse(client, dataset, **kwargs)
