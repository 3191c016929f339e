"""The Spark scoring job (issue 16): Structured Streaming over the lake's `raw/` drops, every post
scored with VADER and the promoted sentiment model, written once to `scored/`.

- Source: Spark's file source over `raw/YYYY/MM/DD/HH/*.parquet` (Firehose's key layout), the
  schema taken from the post contract, at most `max_files_per_trigger` files per micro-batch, in
  the files' modification order. INT96 timestamps (Firehose's format conversion writes them) are
  read as UTC instants (session time zone UTC, CORRECTED rebase: no Julian-calendar shift).
- Duplicates: the lake holds source duplicates and redeliveries. `dropDuplicatesWithinWatermark`
  on `post_id`, with the watermark on `ingested_at` (see `DEDUP_DELAY` for the bound and why not
  `created_at`).
- Scoring: `mapInPandas` with the hot path's own functions (`scoring.score_frames`), the model
  parsed once per iterator.
- Sink: `foreachBatch` with `sink.BatchWriter`: Parquet in the bare hour folders
  `scored/YYYY/MM/DD/HH/` of the post's `created_at` (`layout`), file names keyed by the
  micro-batch id, so a batch replayed after a kill replaces its earlier attempt's files; checkpoint
  under `checkpoints/`, with the writer's commit log `_scored_log/` (readers:
  `scored.read_scored` / `scored.committed_files`).
- Corrupt files: skipped by Spark (`ignoreCorruptFiles`), recorded by `quarantine.FileCheck`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from musicnft.contract.lake_layout import RAW_PREFIX
from musicnft.contract.schema import POST_FIELDS
from musicnft.spark.arguments import DEFAULT_MAX_FILES_PER_TRIGGER
from musicnft.spark.lake_fs import LakeRoot
from musicnft.spark.layout import SCORED_COLUMNS, checkpoint_key, output_key
from musicnft.spark.model import resolve_model
from musicnft.spark.quarantine import FileCheck
from musicnft.spark.scoring import SCORED_DDL, score_frames
from musicnft.spark.sink import BatchWriter

if TYPE_CHECKING:
    import pyspark.sql
    from pyspark.sql.types import StructType

log = logging.getLogger("musicnft.spark")

# Firehose's key layout: raw/YYYY/MM/DD/HH/<stream>-1-YYYY-MM-DD-HH-MM-SS-<uuid>.parquet
RAW_GLOB = f"{RAW_PREFIX}*/*/*/*/*.parquet"
# A micro-batch of this many drops (Firehose writes one per 1-5 MB or 60-900 s): a backlog is
# worked off in bounded steps, and a kill loses at most one batch's work (redone on restart).
# The dedup bound (docs/spark.md, "Duplicates"). The watermark is on `ingested_at` (when the
# producer read the post), which follows arrival: a replay of 2021 captures arriving today is not
# "late", so it is scored; with the watermark on `created_at` it would be older than the watermark
# and dropped unscored. Any copy of a post ingested within DEDUP_DELAY of its first copy is dropped
# (by the state, or as late); 26 h covers Firehose's 24 h of delivery retries. A row ingested
# before the watermark (newest ingest of earlier batches minus DEDUP_DELAY) is dropped by Spark as
# late: harmless for a duplicate, a loss for a first sighting, so such rows are counted
# (`ScoreJobResult.dropped_late`, logged) and `--rescore` (a fresh checkpoint) scores them. A copy
# ingested more than DEDUP_DELAY after the first may be written again (readers: one row per
# post_id, the greatest `scored_at`).
DEDUP_DELAY = "26 hours"
WATERMARK_COLUMN = "ingested_at"
QUERY_NAME = "musicnft-spark-score"

_SPARK_TYPES = {
    "string": "string",
    "int": "bigint",
    "int32": "int",
    "bool": "boolean",
    "timestamp": "timestamp",
    "float": "double",
    "list": "array<string>",
}


@dataclass(frozen=True)
class ScoreJobOptions:
    lake_root: str
    available_now: bool = False
    rescore: bool = False
    model_version: str | None = None
    trigger_seconds: float = 30.0
    max_files_per_trigger: int = DEFAULT_MAX_FILES_PER_TRIGGER


@dataclass(frozen=True)
class ScoreJobResult:
    output_path: str
    model_version: str | None
    batches: int
    rows_written: int
    input_rows: int = 0
    dropped_late: int = 0  # rows older than the watermark, dropped by Spark (see DEDUP_DELAY)
    quarantined: dict[str, str] = field(default_factory=dict)  # corrupt raw files, this run
    checkpoint_path: str = ""


@dataclass(frozen=True)
class BatchProgress:
    """One finished micro-batch, as Spark's progress reports it."""

    batch_id: int
    input_rows: int
    rows_written: int
    dropped_late: int
    duration_ms: int


def post_schema() -> StructType:
    """The Spark schema of a raw drop, from the post contract (POST_FIELDS)."""
    from pyspark.sql.types import StructType

    ddl = ", ".join(f"{f.name} {_SPARK_TYPES[f.kind]}" for f in POST_FIELDS)
    schema = StructType.fromDDL(ddl)
    assert isinstance(schema, StructType)
    return schema


def configure(spark: pyspark.sql.SparkSession) -> None:
    """Session settings the job depends on (set at runtime: they are SQL confs)."""
    conf = spark.conf
    conf.set("spark.sql.session.timeZone", "UTC")
    # Firehose's INT96 and old-calendar timestamps are read as written (no Julian rebase)
    conf.set("spark.sql.parquet.int96RebaseModeInRead", "CORRECTED")
    conf.set("spark.sql.parquet.datetimeRebaseModeInRead", "CORRECTED")
    conf.set("spark.sql.parquet.int96RebaseModeInWrite", "CORRECTED")
    conf.set("spark.sql.parquet.datetimeRebaseModeInWrite", "CORRECTED")
    # scored/ is read by more than Spark: write standard UTC microsecond timestamps, not INT96
    conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    # one corrupt drop must not stop the stream; FileCheck records it (quarantine.py)
    conf.set("spark.sql.files.ignoreCorruptFiles", "true")
    conf.set("spark.sql.files.ignoreMissingFiles", "true")
    # The dedup state's partitions: fixed in the checkpoint by the query's first run. Spark's
    # default of 200 makes every micro-batch of a small lake run 200 tasks; one per core (at
    # least 2) unless the session was given its own number.
    if conf.get("spark.sql.shuffle.partitions", "200") == "200":
        cores = spark.sparkContext.defaultParallelism
        conf.set("spark.sql.shuffle.partitions", str(max(2, cores)))


def build_query(
    spark: pyspark.sql.SparkSession,
    options: ScoreJobOptions,
    model_json: bytes | None,
    checkpoint: str,
    writer: BatchWriter,
) -> pyspark.sql.streaming.StreamingQuery:
    from pyspark.sql import functions as F

    lake = LakeRoot.of(options.lake_root)
    raw = (
        spark.readStream.schema(post_schema())
        .option("maxFilesPerTrigger", int(options.max_files_per_trigger))
        .parquet(lake.uri(RAW_GLOB))
    )
    posts = (
        raw.select("post_id", "created_at", "ingested_at", "text")
        .where(
            F.col("post_id").isNotNull()
            & F.col("created_at").isNotNull()
            & F.col(WATERMARK_COLUMN).isNotNull()
        )
        .withWatermark(WATERMARK_COLUMN, DEDUP_DELAY)
        .dropDuplicatesWithinWatermark(["post_id"])
    )
    scored = posts.select("post_id", "created_at", "text").mapInPandas(
        score_frames(model_json), SCORED_DDL
    )
    out = scored.withColumn("scored_at", F.current_timestamp()).select(
        *SCORED_COLUMNS,
        F.date_format("created_at", "yyyy").alias("year"),
        F.date_format("created_at", "MM").alias("month"),
        F.date_format("created_at", "dd").alias("day"),
        F.date_format("created_at", "HH").alias("hour"),
    )
    stream = (
        out.writeStream.foreachBatch(writer)
        .outputMode("append")
        .option("checkpointLocation", checkpoint)
        .queryName(QUERY_NAME)
    )
    if options.available_now:
        stream = stream.trigger(availableNow=True)
    else:
        stream = stream.trigger(processingTime=f"{options.trigger_seconds} seconds")
    return stream.start()


def _progress(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if hasattr(raw, "json"):
        return json.loads(raw.json)
    return dict(raw)


def batch_progress(raw: Any) -> BatchProgress:
    p = _progress(raw)
    ops = p.get("stateOperators") or [{}]
    written = int(ops[0].get("numRowsUpdated", 0) or 0)
    sink_rows = int((p.get("sink") or {}).get("numOutputRows", -1) or -1)
    return BatchProgress(
        batch_id=int(p["batchId"]),
        input_rows=int(p.get("numInputRows", 0) or 0),
        rows_written=sink_rows if sink_rows >= 0 else written,
        dropped_late=sum(int(o.get("numRowsDroppedByWatermark", 0) or 0) for o in ops),
        duration_ms=int((p.get("durationMs") or {}).get("triggerExecution", 0) or 0),
    )


def run_score_job(
    spark: pyspark.sql.SparkSession,
    options: ScoreJobOptions,
    *,
    stop: threading.Event | None = None,
    on_batch: Callable[[BatchProgress], None] | None = None,
    poll_seconds: int = 1,
) -> ScoreJobResult:
    """Run the query to completion (`available_now`) or until `stop` is set (then stop it
    cleanly: the running batch is interrupted and redone on the next start, exactly once)."""
    if options.max_files_per_trigger < 1:
        raise ValueError("max_files_per_trigger must be at least 1")
    if options.trigger_seconds <= 0:
        raise ValueError("trigger_seconds must be positive")
    lake = LakeRoot.of(options.lake_root)
    version, model_json = resolve_model(lake, options.model_version)
    if options.rescore and version is None:
        raise ValueError("--rescore needs a model: none is promoted (run `musicnft model train`)")
    rescore_version = version if options.rescore else None
    output = lake.uri(output_key(rescore_version))
    checkpoint = lake.uri(checkpoint_key(rescore_version))
    configure(spark)
    check = FileCheck(lake)
    quarantined = dict(check.run())
    log.info(
        "spark score: %s -> %s (model %s, checkpoint %s, %s)",
        lake.uri(RAW_GLOB),
        output,
        version or "none",
        checkpoint,
        "available-now" if options.available_now else f"every {options.trigger_seconds:g} s",
    )
    writer = BatchWriter(lake, rescore_version)
    query = build_query(spark, options, model_json, checkpoint, writer)
    seen: set[int] = set()
    batches = rows = input_rows = dropped = 0
    last_check = time.monotonic()

    def collect() -> None:
        nonlocal batches, rows, input_rows, dropped
        for raw in query.recentProgress:
            b = batch_progress(raw)
            if b.batch_id in seen or (b.input_rows == 0 and b.rows_written == 0):
                continue
            seen.add(b.batch_id)
            if b.batch_id in writer.rows:  # the writer's own count (the sink reports none)
                b = replace(b, rows_written=writer.rows[b.batch_id])
            batches += 1
            rows += b.rows_written
            input_rows += b.input_rows
            dropped += b.dropped_late
            if b.dropped_late:
                log.warning(
                    "batch %d: %d rows older than the watermark dropped", b.batch_id, b.dropped_late
                )
            if on_batch is not None:
                on_batch(b)

    try:
        while True:
            finished = query.awaitTermination(poll_seconds)
            collect()
            if finished:
                break
            if stop is not None and stop.is_set():
                log.info("spark score: stopping the query")
                query.stop()
                break
            if not options.available_now and time.monotonic() - last_check >= max(
                options.trigger_seconds, 5.0
            ):
                quarantined.update(check.run())
                last_check = time.monotonic()
    except BaseException:
        if query.isActive:
            query.stop()
        raise
    collect()
    exc = query.exception()
    if exc is not None:
        raise RuntimeError(f"the scoring query failed: {exc}")
    quarantined.update(check.run())
    return ScoreJobResult(
        output_path=output,
        model_version=version,
        batches=batches,
        rows_written=rows,
        input_rows=input_rows,
        dropped_late=dropped,
        quarantined=quarantined,
        checkpoint_path=checkpoint,
    )
