"""The two resource ports assets and sensors ask for; `resources.py` (local) and
`cloud_resources.py` (S3, BigQuery) subclass them, so neither has to import the other."""

from abc import ABC, abstractmethod

import dagster as dg

from musicnft.ports import Lake, Warehouse


class LakeResource(dg.ConfigurableResource, ABC):
    """Where the Parquet drops are."""

    @abstractmethod
    def lake(self) -> Lake: ...


class WarehouseResource(dg.ConfigurableResource, ABC):
    """Where the tables are."""

    @abstractmethod
    def warehouse(self) -> Warehouse: ...
