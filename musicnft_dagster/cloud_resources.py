"""The cloud profile's resources: the lake on S3 (dagster-aws's `S3Resource`) and the warehouse on
BigQuery (dagster-gcp's `BigQueryResource`). Imported only when the profile picks them
(`resources.py`), so the embedded profile's processes never load the AWS and Google libraries."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster_aws.s3 import S3Resource
from dagster_gcp import BigQueryResource

from musicnft.ports import Lake, Warehouse
from musicnft_dagster.resource_bases import LakeResource, WarehouseResource


class S3LakeResource(S3Resource, LakeResource):
    """The lake in an S3 bucket (cloud profile), built on dagster-aws's `S3Resource`: its client
    settings (`region_name`, `endpoint_url` (moto server in tests), `max_attempts`, a profile
    or keys, best as `EnvVar`s) show in the UI; the port's behaviour is `S3Lake`'s."""

    bucket: str

    def lake(self) -> Lake:
        from musicnft.adapters.s3_lake import S3Lake

        return S3Lake(self.bucket, client=self.get_client())


class BigQueryWarehouseResource(BigQueryResource, WarehouseResource):
    """The warehouse on BigQuery (cloud profile), building on dagster-gcp's `BigQueryResource`
    (`project`, `location`, `gcp_credentials` as a base64 service-account key, best given as an
    `EnvVar` so it never shows in the UI). `endpoint` points the client at a local emulator."""

    dataset: str = "musicnft"
    endpoint: str | None = None
    insert_retries: int = 3

    @contextmanager
    def get_client(self) -> Iterator[Any]:
        """A client honouring `endpoint` (dagster-gcp's own cannot be pointed elsewhere)."""
        from musicnft.adapters.bigquery.warehouse import bigquery_client

        yield bigquery_client(
            self.project or "", self.location, self.endpoint, self.gcp_credentials or ""
        )

    def warehouse(self) -> Warehouse:
        from musicnft.adapters.bigquery.warehouse import BigQueryWarehouse

        with self.get_client() as client:
            return BigQueryWarehouse(client, self.dataset, insert_retries=self.insert_retries)
