"""Reading `scored/` so that only committed output is seen.

Spark's file sink writes each micro-batch's files first and lists them in
`<output>/_spark_metadata/<batch>` when the batch commits. A batch killed half-way leaves files
that no log lists, and the batch runs again after a restart: a reader that lists the folder itself
would see those rows twice. `read_scored` (Spark) and any other reader (pyarrow, DuckDB, a
warehouse load) take the file list from `committed_files`, which reads the log: the newest
`<n>.compact` file plus the batch files after it, each a `v1` line then one JSON object per file
(`path`, `action` add/delete).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from musicnft.spark.lake_fs import LakeRoot
from musicnft.spark.layout import PARTITION_COLUMNS, SCORED_COLUMNS, output_key

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

METADATA_DIR = "_spark_metadata"
SCORED_SCHEMA_DDL = (
    "post_id string, created_at timestamp, sentiment_compound double, model_score double, "
    "model_label string, model_version string, scored_at timestamp"
)


def read_scored(
    spark: SparkSession, lake_root: str, rescore_version: str | None = None
) -> DataFrame:
    """The scored posts (the stream's, or a re-score version's), committed files only.

    The files come from the sink's log (`committed_files`) and are read by path, so Spark looks at
    each file as it is now: the deletions sweep rewrites `scored/` files in place, and Spark's own
    reader of the folder (`spark.read.parquet("<lake>/scored")`) would trust the sizes the log
    recorded and fail on a rewritten file ("not a Parquet file")."""
    lake = LakeRoot.of(lake_root)
    path = lake.uri(output_key(rescore_version))
    files = committed_files(lake_root, rescore_version)
    if not files:
        return spark.createDataFrame([], SCORED_SCHEMA_DDL)
    df = spark.read.option("basePath", path).parquet(*files)
    return df.select(*SCORED_COLUMNS)


def _log_entries(lake: LakeRoot, log_dir: str) -> list[tuple[int, bool, str]]:
    out = []
    for key, _size, _mtime in lake.list(log_dir):
        name = key.rsplit("/", 1)[-1]
        stem, compact = (
            (name[: -len(".compact")], True)
            if name.endswith(".compact")
            else (
                name,
                False,
            )
        )
        if stem.isdigit():
            out.append((int(stem), compact, key))
    return sorted(out)


def committed_files(lake_root: str, rescore_version: str | None = None) -> list[str]:
    """The filesystem paths of the output's committed Parquet files, from the sink's log."""
    lake = LakeRoot.of(lake_root)
    log_dir = output_key(rescore_version) + METADATA_DIR + "/"
    entries = _log_entries(lake, log_dir)
    compacts = [e for e in entries if e[1]]
    start = compacts[-1][0] if compacts else -1
    files: dict[str, None] = {}
    for batch, compact, key in entries:
        if batch < start or (batch == start and not compact):
            continue
        lines = lake.get(key).decode().splitlines()
        if not lines or not lines[0].startswith("v"):
            raise ValueError(f"{key} is not a file sink log (no version line)")
        for line in lines[1:]:
            if not line.strip():
                continue
            entry = json.loads(line)
            path = entry["path"]
            if entry.get("action", "add") == "delete":
                files.pop(path, None)
            else:
                files[path] = None
    return [_local_path(p) for p in files]


def _local_path(path: str) -> str:
    # Spark logs URIs (file:///..., s3://...); pyarrow wants a local path or the URI.
    from urllib.parse import unquote, urlparse

    parsed = urlparse(path)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path)
    return path


def read_committed_table(lake_root: str, rescore_version: str | None = None) -> pa.Table:
    """The committed scored rows with pyarrow (no Spark): what a non-Spark reader does."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(p) for p in committed_files(lake_root, rescore_version)]
    tables = [t.drop_columns([c for c in PARTITION_COLUMNS if c in t.column_names]) for t in tables]
    if not tables:
        return pa.table({c: [] for c in SCORED_COLUMNS})
    return pa.concat_tables(tables, promote_options="default").select(list(SCORED_COLUMNS))
