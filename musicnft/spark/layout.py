"""Where the Spark job writes: the scored output, its checkpoint, per output version.

- The stream (`musicnft spark score`): `scored/year=YYYY/month=MM/day=DD/hour=HH/part-*.parquet`,
  checkpoint `checkpoints/spark-score/`.
- A re-score under model version V (`--rescore`): `scored/_versions/V/year=.../`, checkpoint
  `checkpoints/spark-score-rescore/V/`. Each version is a separate file sink with its own
  `_spark_metadata` log and checkpoint: a re-score never touches the stream's output or another
  version's, and a re-score that was stopped resumes where it stopped.

The hour folders are Hive-style (`year=2021/month=12/...`) rather than the raw drops' bare
`2021/12/...`: Spark's file sink (whose metadata log is what makes the output exactly-once) names
partition folders `column=value`, and the path it writes is the path its log lists. Versions live
under `scored/` (the `_` hides them from Spark's reader of the stream's output) so that the
deletions sweep, which rewrites every Parquet file under `scored/`, reaches them too.
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
