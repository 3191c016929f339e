"""Where the Spark job writes: the scored output, its checkpoint, per output version.

- The stream (`musicnft spark score`): `scored/YYYY/MM/DD/HH/part-b<batch>-<k>.parquet` (bare hour
  folders, as `raw/`'s, by the post's `created_at` UTC hour), checkpoint `checkpoints/spark-score/`.
- A re-score under model version V (`--rescore`): `scored/_versions/V/YYYY/MM/DD/HH/`, checkpoint
  `checkpoints/spark-score-rescore/V/`. Each version has its own checkpoint and commit log: a
  re-score never touches the stream's output or another version's, and a re-score that was
  stopped resumes where it stopped.

Beside Spark's own checkpoint, each checkpoint holds the job's sink state (`sink.BatchWriter`):
`_staging/<batch>/` (Spark's write of the micro-batch, before its files are moved into the hour
folders) and `_scored_log/` (`<batch>.json`, the files of each committed batch, folded every 10
batches into `<batch>.compact` (commit_log.py); `<batch>.pending`, the files a batch in flight is
moving in). Versions live under `scored/` so that the deletions
sweep, which rewrites every Parquet file under `scored/`, reaches them too.
"""

from __future__ import annotations

import re

from musicnft.contract.lake_layout import CHECKPOINTS_PREFIX, SCORED_PREFIX

SCORED_COLUMNS = (
    "post_id",
    "created_at",
    "sentiment_compound",
    "model_score",
    "model_label",
    "model_version",
    "scored_at",
)
PARTITION_COLUMNS = ("year", "month", "day", "hour")
VERSIONS_DIR = "_versions"
CHECKPOINT = f"{CHECKPOINTS_PREFIX}spark-score/"
RESCORE_CHECKPOINTS = f"{CHECKPOINTS_PREFIX}spark-score-rescore/"
SCORED_LOG_DIR = "_scored_log"
STAGING_DIR = "_staging"
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_version(version: str) -> str:
    """A model version safe to use as a folder name (a bad one is refused, never escaped)."""
    if not _VERSION.match(version):
        raise ValueError(f"model version {version!r} is not a plain name ([A-Za-z0-9._-])")
    return version


def output_key(rescore_version: str | None = None) -> str:
    """The output folder (relative to the lake root) of the stream or of a re-score version."""
    if rescore_version is None:
        return SCORED_PREFIX
    return f"{SCORED_PREFIX}{VERSIONS_DIR}/{check_version(rescore_version)}/"


def checkpoint_key(rescore_version: str | None = None) -> str:
    if rescore_version is None:
        return CHECKPOINT
    return f"{RESCORE_CHECKPOINTS}{check_version(rescore_version)}/"


def scored_log_key(rescore_version: str | None = None) -> str:
    """The folder of the job's commit log (one `<batch>.json` per committed micro-batch)."""
    return f"{checkpoint_key(rescore_version)}{SCORED_LOG_DIR}/"


def staging_key(batch_id: int, rescore_version: str | None = None) -> str:
    """Where Spark writes micro-batch `batch_id` before its files are moved into the hours."""
    return f"{checkpoint_key(rescore_version)}{STAGING_DIR}/{batch_id}/"


def batch_prefix(batch_id: int) -> str:
    """The name prefix of every output file of micro-batch `batch_id`."""
    return f"part-b{batch_id:012d}-"


def part_name(batch_id: int, k: int) -> str:
    return f"{batch_prefix(batch_id)}{k:05d}.parquet"


def hour_folder(
    year: str, month: str, day: str, hour: str, rescore_version: str | None = None
) -> str:
    """`scored/YYYY/MM/DD/HH/` (or the version's), the folder of one `created_at` UTC hour."""
    for value, width in ((year, 4), (month, 2), (day, 2), (hour, 2)):
        if len(value) != width or not value.isdigit():
            raise ValueError(f"not an hour folder: {year}/{month}/{day}/{hour}")
    return f"{output_key(rescore_version)}{year}/{month}/{day}/{hour}/"
