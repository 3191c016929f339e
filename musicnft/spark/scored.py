"""Reading `scored/` so that only committed output is seen.

The job (`sink.BatchWriter`) moves each micro-batch's files into the hour folders
`scored/YYYY/MM/DD/HH/part-b<batch>-<k>.parquet`, then lists them in its commit log,
`<checkpoint>/_scored_log/<batch>.json` (`{"batch": N, "files": [keys], "rows": n}`; every
`commit_log.COMPACT_INTERVAL` batches folded into one `<batch>.compact`, commit_log.py). A batch
killed half-way may leave files in the hour folders that no committed batch lists, until the
restart replays the batch and replaces them. `read_scored` (Spark) and any other reader (pyarrow,
DuckDB, a warehouse load) take the file list from `committed_files`, which reads that log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from musicnft.spark import commit_log
from musicnft.spark.lake_fs import LakeRoot
from musicnft.spark.layout import SCORED_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

SCORED_SCHEMA_DDL = (
    "post_id string, created_at timestamp, sentiment_compound double, model_score double, "
    "model_label string, model_version string, scored_at timestamp"
)


def read_scored(
    spark: SparkSession, lake_root: str, rescore_version: str | None = None
) -> DataFrame:
    """The scored posts (the stream's, or a re-score version's), committed files only, read by
    path (each file as it is now: the deletions sweep rewrites `scored/` files in place)."""
    files = committed_files(lake_root, rescore_version)
    if not files:
        return spark.createDataFrame([], SCORED_SCHEMA_DDL)
    return spark.read.schema(SCORED_SCHEMA_DDL).parquet(*files).select(*SCORED_COLUMNS)


def committed_keys(lake_root: str, rescore_version: str | None = None) -> list[str]:
    """The lake keys of the output's committed Parquet files, in batch order, from the job's
    commit log (`commit_log.entries`: the newest `<batch>.compact` and the `<batch>.json` entries
    beside it; a `<batch>.pending` is a batch in flight, not read)."""
    files: dict[str, None] = {}
    for entry in commit_log.entries(LakeRoot.of(lake_root), rescore_version).values():
        files.update(dict.fromkeys(str(f) for f in entry["files"]))
    return list(files)


def committed_files(lake_root: str, rescore_version: str | None = None) -> list[str]:
    """The paths (local) or URIs (`s3://...`) of the output's committed Parquet files."""
    lake = LakeRoot.of(lake_root)
    return [lake.uri(k) for k in committed_keys(lake_root, rescore_version)]


def read_committed_table(lake_root: str, rescore_version: str | None = None) -> pa.Table:
    """The committed scored rows with pyarrow (no Spark): what a non-Spark reader does."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(p) for p in committed_files(lake_root, rescore_version)]
    if not tables:
        return pa.table({c: [] for c in SCORED_COLUMNS})
    return pa.concat_tables(tables, promote_options="default").select(list(SCORED_COLUMNS))
