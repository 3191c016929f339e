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
    """The one place a profile picks adapters for the code location."""
    if settings.profile == "local":
        return {
            "lake": LocalLakeResource(root=str(settings.lake_dir.resolve())),
            "warehouse": EmbeddedWarehouseResource(root=str(settings.warehouse_dir.resolve())),
            "pipeline": PipelineResource(keywords=[k.lower() for k in settings.keywords]),
        }
    raise ValueError(f"no Dagster resources for profile {settings.profile!r}")
