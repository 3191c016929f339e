"""The script EMR Serverless runs (`spark-submit emr_entrypoint.py --lake-root s3://<lake>/`): the
scoring job once over what the lake holds (`--available-now`, then it stops), reported to Dagster.

Launched by Dagster's `PipesEMRServerlessClient`, the driver finds the Pipes bootstrap parameters
in its environment (the client passes them as `spark.emr-serverless.driverEnv.DAGSTER_PIPES_*`
submit parameters); it then reports the materialization (rows written, batches, model version,
output path) as a Pipes message on stdout, which EMR Serverless ships to CloudWatch Logs, where
the client reads it. Started any other way (a plain `aws emr-serverless start-job-run`,
`spark-submit` on a laptop) it runs the same job and logs the same figures as one JSON line.

The packaged form (`make spark-package`, docs/spark-emr-serverless.md) ships this file beside
`musicnft.zip` (--py-files) and the third-party libraries (spark.archives).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

log = logging.getLogger("musicnft.spark.emr_entrypoint")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="emr_entrypoint.py",
        description="Score the lake's posts once with Spark (available-now) and stop.",
    )
    parser.add_argument("--lake-root", required=True, help="the lake's root URI (s3://bucket/)")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="re-score all history under the promoted (or --model) version into a new output",
    )
    parser.add_argument("--model", default=None, help="the model version (default: promoted)")
    parser.add_argument(
        "--max-files-per-trigger",
        type=int,
        default=None,
        help="lake files per micro-batch (default: the job's own)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def result_metadata(result: Any) -> dict[str, Any]:
    """The materialization's metadata, from a `ScoreJobResult`: the same keys on both paths."""
    return {
        "rows_written": int(result.rows_written),
        "batches": int(result.batches),
        "model_version": result.model_version or "",
        "output_path": str(result.output_path),
        "input_rows": int(getattr(result, "input_rows", 0)),
        "dropped_late": int(getattr(result, "dropped_late", 0)),
        "quarantined_files": len(getattr(result, "quarantined", {}) or {}),
    }


def options_from_args(args: argparse.Namespace) -> Any:
    from musicnft.spark.job import ScoreJobOptions

    extra: dict[str, Any] = {}
    if args.max_files_per_trigger is not None:
        extra["max_files_per_trigger"] = args.max_files_per_trigger
    return ScoreJobOptions(
        lake_root=args.lake_root,
        available_now=True,
        rescore=args.rescore,
        model_version=args.model,
        **extra,
    )


def _spark_session() -> Any:
    from pyspark.sql import SparkSession

    # On EMR Serverless the session's settings come from the job run (spark-submit parameters);
    # on a laptop from spark-submit's --master / --conf.
    return SparkSession.builder.appName("musicnft-spark-score").getOrCreate()


def in_dagster_pipes(environ: Mapping[str, str] | None = None) -> bool:
    """Whether Dagster launched this run (its Pipes bootstrap variables are in the environment)."""
    from dagster_pipes import PipesMappingParamsLoader

    loader = PipesMappingParamsLoader(os.environ if environ is None else environ)
    return loader.is_dagster_pipes_process()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the job once and report it: to Dagster through Pipes when launched by it, else a log."""
    from musicnft.spark.job import run_score_job

    options = options_from_args(args)
    spark = _spark_session()
    try:
        if in_dagster_pipes():
            from dagster_pipes import open_dagster_pipes

            with open_dagster_pipes() as pipes:
                pipes.log.info(f"scoring the lake at {args.lake_root} (available-now)")
                metadata = result_metadata(run_score_job(spark, options))
                pipes.report_asset_materialization(metadata=metadata)
        else:
            metadata = result_metadata(run_score_job(spark, options))
        log.info("scored: %s", json.dumps(metadata, sort_keys=True))
        return metadata
    finally:
        spark.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from musicnft.logs import setup_logging

    setup_logging(args.log_level)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
