"""The lake's key layout (Firehose's default, DESIGN.md): a contract every writer and reader shares.

`raw/YYYY/MM/DD/HH/<stream>-<n>-YYYY-MM-DD-HH-MM-SS-<uuid>.parquet`, where the folder hour is the UTC
arrival of the oldest record in the file, not the posts' `created_at`. Records that could not be
converted go under `errors/`. Beside them (DESIGN.md, second round): `sales/YYYY/MM/DD/HH/`
(normalized NFT sales), `scored/YYYY/MM/DD/HH/` (Spark's scored posts by `created_at` hour, docs/spark.md),
`models/sentiment/<version>/model.tar.gz` (SageMaker's layout) and `checkpoints/` (streaming
checkpoints).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

RAW_PREFIX = "raw/"
ERRORS_PREFIX = "errors/"
SALES_PREFIX = "sales/"
SCORED_PREFIX = "scored/"
MODELS_PREFIX = "models/"
CHECKPOINTS_PREFIX = "checkpoints/"
# Tombstones as JSON lines (musicnft.contract.tombstone): `deletions/YYYY/MM/DD/HH/*.jsonl`.
DELETIONS_PREFIX = "deletions/"
CONVERSION_FAILED = "format-conversion-failed"
DELIVERY_STREAM_VERSION = 1


def object_name(stream: str, oldest_arrival: datetime, unique: str, version: int = 1) -> str:
    t = oldest_arrival.astimezone(UTC)
    return f"{stream}-{version}-{t:%Y-%m-%d-%H-%M-%S}-{unique}"


def hour_prefix(oldest_arrival: datetime) -> str:
    return f"{oldest_arrival.astimezone(UTC):%Y/%m/%d/%H}/"


def raw_key(stream: str, oldest_arrival: datetime, unique: str | None = None) -> str:
    unique = unique or str(uuid.uuid4())
    return (
        f"{RAW_PREFIX}{hour_prefix(oldest_arrival)}"
        f"{object_name(stream, oldest_arrival, unique, DELIVERY_STREAM_VERSION)}.parquet"
    )


def error_key(
    stream: str, oldest_arrival: datetime, kind: str = CONVERSION_FAILED, unique: str | None = None
) -> str:
    unique = unique or str(uuid.uuid4())
    return (
        f"{ERRORS_PREFIX}{kind}/{hour_prefix(oldest_arrival)}"
        f"{object_name(stream, oldest_arrival, unique, DELIVERY_STREAM_VERSION)}"
    )


def deletions_key(learned_at: datetime, unique: str | None = None) -> str:
    """Where a batch of tombstones lands in the lake (folder hour = when they were learned)."""
    unique = unique or str(uuid.uuid4())
    return f"{DELETIONS_PREFIX}{hour_prefix(learned_at)}tombstones-{unique}.jsonl"


def sales_key(source: str, oldest_arrival: datetime, unique: str | None = None) -> str:
    """Where a batch of normalized NFT sales lands: `sales/YYYY/MM/DD/HH/<source>-1-...parquet`,
    the folder hour the UTC arrival (ingest) of its oldest sale, as for `raw/`."""
    unique = unique or str(uuid.uuid4())
    return (
        f"{SALES_PREFIX}{hour_prefix(oldest_arrival)}"
        f"{object_name(source, oldest_arrival, unique, DELIVERY_STREAM_VERSION)}.parquet"
    )


# The column whose range says which windows a lake file touches (its footer statistics are
# recorded in `lake_files`): a post's creation, a sale's event time.
TIME_COLUMNS = {RAW_PREFIX: "created_at", SALES_PREFIX: "event_timestamp"}
# The prefixes whose new Parquet files the drop sensor watches (posts and NFT sales).
DROP_PREFIXES = (RAW_PREFIX, SALES_PREFIX)


def time_column(key: str) -> str:
    """The time column of the lake file at `key` (`created_at` outside the known prefixes)."""
    for prefix, column in TIME_COLUMNS.items():
        if key.startswith(prefix):
            return column
    return "created_at"


def model_key(version: str, name: str = "sentiment") -> str:
    """Where a trained model's SageMaker artifact lives: `models/<name>/<version>/model.tar.gz`."""
    return f"{MODELS_PREFIX}{name}/{version}/model.tar.gz"


def hour_of_key(key: str) -> datetime | None:
    """The folder hour of `raw/YYYY/MM/DD/HH/...` (or `sales/`, `scored/`: the same layout;
    None for keys outside it)."""
    parts = key.split("/")
    if len(parts) < 6:
        return None
    try:
        return datetime(int(parts[1]), int(parts[2]), int(parts[3]), int(parts[4]), tzinfo=UTC)
    except ValueError:
        return None
