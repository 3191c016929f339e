"""The scoring job's sink: each micro-batch written once into the bare hour folders
`scored/YYYY/MM/DD/HH/`, exactly once across a kill at any point.

Spark's own file sink names partition folders Hive-style (`year=2021/...`), not the lake's
contract path, so the query hands each micro-batch to `BatchWriter` (`foreachBatch`). Spark
replays a micro-batch that was planned but not committed in its checkpoint with the same input
files and the same dedup state, so batch N's rows are the same on every attempt; the writer makes
the attempts idempotent, keyed by N:

1. `_scored_log/<N>.json` exists: an earlier attempt finished writing (it was killed before Spark
   recorded the commit): nothing to do.
2. Spark writes the batch to `<checkpoint>/_staging/<N>/` (overwriting an earlier attempt's),
   partitioned by the `created_at` hour.
3. The plan (staged file -> `scored/YYYY/MM/DD/HH/part-b<N:012d>-<k:05d>.parquet`) is recorded in
   `_scored_log/<N>.pending`; every `part-b<N>-*` file already in those hour folders, and every
   file an earlier attempt's `.pending` named, is removed (an earlier attempt's, never committed).
4. The staged files are moved into place (a local rename is atomic; an S3 object appears whole).
5. `_scored_log/<N>.json` lists the batch's files: the batch is committed for readers
   (`scored.committed_files`); the `.pending` file and the staging folder are removed.
6. Every `commit_log.COMPACT_INTERVAL`-th batch folds the log into `_scored_log/<N>.compact` and
   removes the entries it holds (commit_log.py); step 1 looks in the compact too.

So after a successful run every file under the output is listed by a committed batch; between a
kill and the restart, files of the killed batch may lie in the hour folders, listed nowhere.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from musicnft.spark import commit_log
from musicnft.spark.lake_fs import LakeRoot
from musicnft.spark.layout import (
    PARTITION_COLUMNS,
    batch_prefix,
    hour_folder,
    part_name,
    staging_key,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger("musicnft.spark")


def plan_moves(
    staged: list[str], staging: str, batch_id: int, rescore_version: str | None = None
) -> list[tuple[str, str]]:
    """(staged key, output key) for each staged Parquet file of a batch: the Hive-style folders
    Spark wrote (`<staging>year=Y/month=M/day=D/hour=H/part-*.parquet`) to the bare hour folder,
    numbered per hour in key order. Files outside such folders (none are written) are refused."""
    by_hour: dict[str, list[str]] = {}
    for key in sorted(staged):
        if not key.startswith(staging):
            raise ValueError(f"{key} is not under {staging}")
        parts = key[len(staging) :].split("/")
        values = dict(p.split("=", 1) for p in parts[:-1] if "=" in p)
        if len(parts) != 5 or tuple(values) != PARTITION_COLUMNS:
            raise ValueError(f"staged file {key} is not in a year=/month=/day=/hour= folder")
        folder = hour_folder(
            values["year"], values["month"], values["day"], values["hour"], rescore_version
        )
        by_hour.setdefault(folder, []).append(key)
    return [
        (key, folder + part_name(batch_id, k))
        for folder, keys in sorted(by_hour.items())
        for k, key in enumerate(keys)
    ]


@dataclass
class BatchWriter:
    """The `foreachBatch` function of the scoring query (runs on the driver)."""

    lake: LakeRoot
    rescore_version: str | None = None
    rows: dict[int, int] = field(default_factory=dict)  # batch id -> rows written, this run
    compact_interval: int | None = None  # None: commit_log.COMPACT_INTERVAL

    def __call__(self, df: DataFrame, batch_id: int) -> None:
        self.write(df, int(batch_id))

    def committed_key(self, batch_id: int) -> str:
        return commit_log.entry_key(batch_id, self.rescore_version)

    def pending_key(self, batch_id: int) -> str:
        return commit_log.pending_key(batch_id, self.rescore_version)

    def write(self, df: DataFrame, batch_id: int) -> None:
        if commit_log.is_committed(self.lake, batch_id, self.rescore_version):
            log.info("batch %d: already written (replayed after a kill), skipped", batch_id)
            self.rows.setdefault(batch_id, 0)
        else:
            self._write(df, batch_id)
        self._compact(batch_id)

    def _compact(self, batch_id: int) -> None:
        """Every COMPACT_INTERVAL-th batch folds the log into `<batch_id>.compact` (also when
        the batch is a replay: the kill may have come between its entry and its compaction)."""
        if not commit_log.is_compaction_batch(batch_id, self.compact_interval):
            return
        newest = commit_log.latest_compact(self.lake, self.rescore_version)
        if newest is None or newest < batch_id:
            commit_log.compact(self.lake, batch_id, self.rescore_version)

    def _write(self, df: DataFrame, batch_id: int) -> None:
        lake = self.lake
        staging = staging_key(batch_id, self.rescore_version)
        df.write.mode("overwrite").partitionBy(*PARTITION_COLUMNS).parquet(lake.uri(staging))
        staged = [k for k, _size, _mtime in lake.list(staging, ".parquet")]
        moves = plan_moves(staged, staging, batch_id, self.rescore_version)
        earlier = self._pending(batch_id)
        stale = set(earlier)
        for folder in sorted({dst.rsplit("/", 1)[0] + "/" for _src, dst in moves}):
            stale |= {
                key
                for key, _size, _mtime in lake.list(folder)
                if key.rsplit("/", 1)[-1].startswith(batch_prefix(batch_id))
            }
        # the plan, and what an earlier attempt planned, before anything in the hours changes
        planned = sorted({dst for _src, dst in moves} | set(earlier))
        lake.put(self.pending_key(batch_id), _doc(batch_id, planned))
        for key in sorted(stale):
            log.info("batch %d: removing %s, left by an earlier attempt", batch_id, key)
            lake.delete(key)
        rows = 0
        for src, dst in moves:
            rows += _num_rows(lake, src)
            lake.move(src, dst)
        lake.put(self.committed_key(batch_id), _doc(batch_id, [d for _s, d in moves], rows))
        lake.delete(self.pending_key(batch_id))
        lake.delete_dir(staging)
        self.rows[batch_id] = rows

    def _pending(self, batch_id: int) -> list[str]:
        try:
            doc = json.loads(self.lake.get(self.pending_key(batch_id)))
        except FileNotFoundError:
            return []
        return [str(k) for k in doc.get("files", [])]


def _doc(batch_id: int, files: list[str], rows: int | None = None) -> bytes:
    doc: dict[str, Any] = {"batch": batch_id, "files": files}
    if rows is not None:
        doc["rows"] = rows
    return json.dumps(doc, indent=0).encode()


def _num_rows(lake: LakeRoot, key: str) -> int:
    import pyarrow.parquet as pq

    with lake.fs.open_input_file(lake.path(key)) as fh:
        return int(pq.read_metadata(fh).num_rows)
