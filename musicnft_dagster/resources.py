"""Resources: the lake and the warehouse ports as ConfigurableResources.

Assets and sensors ask for `LakeResource` / `WarehouseResource` and never learn which subclass
they got: the local directory and the embedded warehouse, or S3 and BigQuery in the cloud profile
(`cloud_resources.py`, on dagster-aws and dagster-gcp, imported only when a profile uses them:
together they are about half of the code location's import time, paid by every run worker).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.ports import Lake
from musicnft.settings import DEFAULT_KEYWORDS, Settings
from musicnft_dagster.resource_bases import LakeResource, WarehouseResource
from musicnft_dagster.spark_resources import spark_runner_for


class LocalLakeResource(LakeResource):
    """The lake as a directory (embedded profile)."""

    root: str

    def lake(self) -> Lake:
        return LocalLake(Path(self.root))


class EmbeddedWarehouseResource(WarehouseResource):
    """DuckLake tables (a SQL catalog plus Parquet files) under `root` (embedded profile);
    `catalog` names a shared PostgreSQL catalog instead of `<root>/catalog.sqlite`."""

    root: str
    catalog: str | None = None
    data_path: str | None = None
    s3_endpoint_url: str | None = None  # a local S3 (moto) for an s3:// data path

    # One warehouse per run or sensor tick, not one per step: every step of a window run asks
    # for it, and each new one attaches the catalog twice (a writer and a locked-down reader,
    # about 0.1 s of CPU). Dagster gives each execution its own copy of this resource and sets it
    # up first; its connections close when the execution lets go of it, as each step's did. (No
    # teardown hook: with one, Dagster makes this a context-manager resource, and a sensor
    # context built without `with` could no longer reach it.) Outside an execution every call
    # opens a new warehouse.
    _per_execution: bool = PrivateAttr(default=False)
    _opened: EmbeddedWarehouse | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._per_execution = True

    def warehouse(self) -> EmbeddedWarehouse:
        if not self._per_execution:
            return self._open()
        if self._opened is None:
            self._opened = self._open()
        return self._opened

    def _open(self) -> EmbeddedWarehouse:
        return EmbeddedWarehouse(
            Path(self.root),
            catalog=self.catalog,
            data_path=self.data_path,
            s3_endpoint_url=self.s3_endpoint_url,
        )


class PipelineResource(dg.ConfigurableResource):
    """Business configuration the assets need: the tracked keywords."""

    keywords: list[str] = [k.lower() for k in DEFAULT_KEYWORDS]  # noqa: RUF012 (pydantic copies defaults)


def _local_lake(settings: Settings) -> LakeResource:
    return LocalLakeResource(root=str(settings.lake_dir.resolve()))


def _s3_lake(settings: Settings) -> LakeResource:
    from musicnft_dagster.cloud_resources import S3LakeResource

    return S3LakeResource(bucket=settings.s3_bucket, endpoint_url=settings.aws_endpoint_url)


def _embedded_warehouse(settings: Settings) -> WarehouseResource:
    return EmbeddedWarehouseResource(
        root=str(settings.warehouse_dir.resolve()),
        catalog=settings.warehouse_catalog or None,
        data_path=settings.warehouse_data_path or None,
        s3_endpoint_url=settings.aws_endpoint_url,
    )


def _bigquery_warehouse(settings: Settings) -> WarehouseResource:
    from musicnft_dagster.cloud_resources import BigQueryWarehouseResource

    return BigQueryWarehouseResource(
        project=dg.EnvVar("MUSICNFT_BIGQUERY_PROJECT"),
        dataset=settings.bigquery_dataset,
        location=settings.bigquery_location,
        endpoint=settings.bigquery_endpoint,
        # Read by Dagster from the environment at run time: never stored in run config.
        gcp_credentials=dg.EnvVar("MUSICNFT_BIGQUERY_CREDENTIALS")
        if settings.bigquery_credentials
        else None,
        insert_retries=settings.bigquery_insert_retries,
    )


# The same adapters `musicnft.wiring` opens, as Dagster resources (so their configuration shows in
# the UI), keyed by the backend names `Settings` resolved from the profile; nothing here looks at
# the profile itself.
LAKE_RESOURCES: dict[str, Callable[[Settings], LakeResource]] = {
    "local": _local_lake,
    "s3": _s3_lake,
}
WAREHOUSE_RESOURCES: dict[str, Callable[[Settings], WarehouseResource]] = {
    "embedded": _embedded_warehouse,
    "bigquery": _bigquery_warehouse,
}


def resources_for(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The code location's resources for these settings' backends."""
    return {
        "lake": LAKE_RESOURCES[settings.lake_backend](settings),
        "warehouse": WAREHOUSE_RESOURCES[settings.warehouse_backend](settings),
        "pipeline": PipelineResource(keywords=[k.lower() for k in settings.keywords]),
        # Spark scoring (issue 16): dagster-pyspark here, EMR Serverless through Pipes in the cloud.
        "spark_scoring": spark_runner_for(settings),
    }


@dataclass(frozen=True)
class AssetKinds:
    """The kinds the UI shows on the window assets, from the backends in use."""

    tables: set[str]  # the aggregates: where they are stored
    posts: set[str]  # posts: read from the lake, stored in the warehouse


WAREHOUSE_KINDS: dict[str, set[str]] = {"embedded": {"duckdb", "parquet"}, "bigquery": {"bigquery"}}
LAKE_KINDS: dict[str, set[str]] = {"local": {"parquet"}, "s3": {"s3"}}


def kinds_for(settings: Settings) -> AssetKinds:
    """Kinds for these settings' backends (duckdb never shows on BigQuery)."""
    tables = WAREHOUSE_KINDS.get(settings.warehouse_backend, set())
    return AssetKinds(
        tables=set(tables), posts=tables | LAKE_KINDS.get(settings.lake_backend, set())
    )


def __getattr__(name: str) -> Any:
    """`S3LakeResource` and `BigQueryWarehouseResource` from here too, loaded on first use."""
    if name in ("S3LakeResource", "BigQueryWarehouseResource"):
        from musicnft_dagster import cloud_resources

        return getattr(cloud_resources, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
