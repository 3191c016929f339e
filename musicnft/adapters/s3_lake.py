"""The lake port on S3 (cloud profile): same keys, same layout, same callers as the directory.

boto3 is imported here only, so the core package and the Lambda bundle don't need it. The endpoint
is configurable (MUSICNFT_AWS_ENDPOINT_URL) so tests point a real client at moto server.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from musicnft.ports import LakeObject


class S3Lake:
    def __init__(
        self, bucket: str, client: Any | None = None, endpoint_url: str | None = None
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint_url)
        self.bucket = bucket
        self.client = client

    def put(self, key: str, data: bytes) -> None:
        """A single PUT: S3 makes the object visible whole or not at all (atomic, durable)."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(f"s3://{self.bucket}/{key}") from None

    def list(self, prefix: str = "") -> Iterator[str]:
        return iter(sorted(o.key for o in self._list(prefix)))

    def _list(self, prefix: str) -> Iterator[LakeObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield LakeObject(obj["Key"], int(obj["Size"]), obj["LastModified"].astimezone(UTC))

    def list_objects(
        self, prefix: str, from_hour: datetime | None = None
    ) -> builtins.list[LakeObject]:
        """One listing per hour folder from `from_hour` (so a tick over a long-lived bucket lists
        only recent folders), or the whole prefix without it."""
        if from_hour is None:
            return list(self._list(prefix))
        hour = from_hour.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        now = datetime.now(UTC) + timedelta(hours=1)
        out: builtins.list[LakeObject] = []
        while hour <= now:
            out.extend(self._list(f"{prefix.rstrip('/')}/{hour:%Y/%m/%d/%H}/"))
            hour += timedelta(hours=1)
        return out

    def local_path(self, key: str) -> Path | None:
        return None
