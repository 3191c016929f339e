"""Resources: the lake and the warehouse ports as ConfigurableResources, chosen here by profile.

Assets and sensors ask for `LakeResource` / `WarehouseResource` and never learn which subclass
they got: the local directory and embedded warehouse now, S3 and BigQuery in the cloud profile.
"""

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import dagster as dg

from musicnft.embedded_warehouse import EmbeddedWarehouse
from musicnft.lake import Lake, LocalLake
from musicnft.settings import DEFAULT_KEYWORDS, Settings


class LakeResource(dg.ConfigurableResource, ABC):
    """Where the Parquet drops are."""

    @abstractmethod
    def lake(self) -> Lake: ...


class LocalLakeResource(LakeResource):
    """The lake as a directory (embedded profile)."""

    root: str

    def lake(self) -> Lake:
        return LocalLake(Path(self.root))


class S3LakeResource(LakeResource):
    """The lake in an S3 bucket (cloud profile); `endpoint_url` points at moto server in tests."""

    bucket: str
    endpoint_url: str | None = None

    def lake(self) -> Lake:
        from musicnft.s3_lake import S3Lake

        return S3Lake(self.bucket, endpoint_url=self.endpoint_url)


class WarehouseResource(dg.ConfigurableResource, ABC):
    """Where the tables are."""

    @abstractmethod
    def warehouse(self) -> Any: ...


class EmbeddedWarehouseResource(WarehouseResource):
    """Parquet tables queried by DuckDB (embedded profile)."""

    root: str

    def warehouse(self) -> EmbeddedWarehouse:
        return EmbeddedWarehouse(Path(self.root))


class PipelineResource(dg.ConfigurableResource):
    """Business configuration the assets need: the tracked keywords."""

    keywords: list[str] = [k.lower() for k in DEFAULT_KEYWORDS]  # noqa: RUF012 (pydantic copies defaults)


def resources_for(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The one place the profile's settings pick adapters for the code location."""
    lake: LakeResource
    if settings.lake_backend == "s3":
        lake = S3LakeResource(bucket=settings.s3_bucket, endpoint_url=settings.aws_endpoint_url)
    else:
        lake = LocalLakeResource(root=str(settings.lake_dir.resolve()))
    return {
        "lake": lake,
        # The BigQuery warehouse arrives with its own issue; until then every profile's
        # warehouse is the embedded one.
        "warehouse": EmbeddedWarehouseResource(root=str(settings.warehouse_dir.resolve())),
        "pipeline": PipelineResource(keywords=[k.lower() for k in settings.keywords]),
    }
