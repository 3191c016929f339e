"""Where the Spark scoring job runs, as a resource: `scored_posts` asks for a `SparkScoringRunner`
and never learns which one it got, as it never learns which lake it reads.

- `LocalSparkScoringRunner` (embedded profile): dagster-pyspark's `PySparkResource` gives a
  SparkSession on this machine (`local[*]`); the job runs in the step's process.
- `EmrServerlessScoringRunner` (cloud profile): dagster-aws's `PipesEMRServerlessClient` submits
  the packaged `emr_entrypoint.py` (`make spark-package`) to the stack's EMR Serverless
  application with its job role, waits, and takes the materialization the script reports through
  Dagster Pipes (its driver's stdout, read back from CloudWatch Logs).

Both run the same `musicnft.spark.job.run_score_job` with `--available-now`, so the metadata keys
are the same: rows_written, batches, model_version, output_path.
"""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from musicnft.settings import Settings

# What `make spark-package` builds into dist/spark/ and uploads under MUSICNFT_SPARK_ARTIFACTS_URI.
ENTRY_SCRIPT = "emr_entrypoint.py"
CODE_ZIP = "musicnft.zip"
DEPS_ARCHIVE = "pydeps.tar.gz"
DEPS_ALIAS = "pydeps"  # the folder spark.archives unpacks the libraries into, on every node


class ScoredPostsConfig(dg.Config):
    """Run configuration of `scored_posts` (the launchpad shows it)."""

    rescore: bool = False  # re-score all history under the model into a new output version
    model_version: str | None = None  # default: the promoted model


class SparkScoringRunner(dg.ConfigurableResource, ABC):
    """Runs the scoring job once over what the lake holds (available-now) and says what it did."""

    lake_root: str

    @abstractmethod
    def score(
        self, context: dg.AssetExecutionContext, config: ScoredPostsConfig
    ) -> dg.MaterializeResult: ...


def job_metadata(result: Any) -> dict[str, Any]:
    """A `ScoreJobResult` as materialization metadata (the EMR entry script reports the same)."""
    from musicnft.spark.emr_entrypoint import result_metadata

    return result_metadata(result)


class LocalSparkScoringRunner(SparkScoringRunner):
    """The job on this machine through dagster-pyspark: `spark_config` is the session's
    configuration (`spark.master` `local[*]` by default; the venv's Python on both sides).

    It holds a dagster-pyspark `PySparkResource` rather than being one, so that loading the code
    location (the code server, the daemon, every run worker) does not import pyspark: that import
    costs about half a second, and only a `scored_posts` run needs it."""

    spark_config: dict[str, Any]
    _pyspark: Any = PrivateAttr(default=None)
    _owns_session: bool = PrivateAttr(default=False)

    @property
    def spark_session(self) -> Any:
        return None if self._pyspark is None else self._pyspark.spark_session

    def score(
        self, context: dg.AssetExecutionContext, config: ScoredPostsConfig
    ) -> dg.MaterializeResult:
        from musicnft.spark.job import ScoreJobOptions, run_score_job

        options = ScoreJobOptions(
            lake_root=self.lake_root,
            available_now=True,
            rescore=config.rescore,
            model_version=config.model_version,
        )
        context.log.info("scoring %s on %s", self.lake_root, self.spark_config.get("spark.master"))
        result = run_score_job(self.spark_session, options)
        return dg.MaterializeResult(metadata=job_metadata(result))

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from dagster_pyspark import PySparkResource
        from pyspark.sql import SparkSession

        # PySpark starts its Python workers with PYSPARK_PYTHON (the `spark.pyspark.python`
        # setting counts only for spark-submit): this process's Python unless one was chosen.
        python = self.spark_config.get("spark.pyspark.python", sys.executable)
        os.environ.setdefault("PYSPARK_PYTHON", python)
        self._owns_session = SparkSession.getActiveSession() is None
        pyspark = PySparkResource(spark_config=self.spark_config)
        pyspark.setup_for_execution(context)
        self._pyspark = pyspark

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # The session's JVM is a child process: stop it with the run, unless the session was
        # there before (getOrCreate handed us someone else's).
        if self._owns_session and self.spark_session is not None:
            self.spark_session.stop()


def local_spark_config(master: str = "local[*]") -> dict[str, str]:
    return {
        "spark.master": master,
        "spark.app.name": "musicnft-spark-score",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
    }


def start_job_run_params(
    *,
    application_id: str,
    job_role_arn: str,
    artifacts_uri: str,
    lake_root: str,
    log_group: str,
    config: ScoredPostsConfig,
    client_token: str,
    execution_timeout_minutes: int = 120,
) -> dict[str, Any]:
    """EMR Serverless StartJobRun's request for one scoring run (Pipes adds its own variables
    and tags): the packaged entry script, the code zip on --py-files, the libraries unpacked from
    spark.archives onto PYTHONPATH of the driver and the executors, and the driver's logs in
    CloudWatch (where the Pipes client reads the script's messages)."""
    base = artifacts_uri.rstrip("/")
    arguments = ["--lake-root", lake_root]
    if config.rescore:
        arguments.append("--rescore")
    if config.model_version:
        arguments += ["--model", config.model_version]
    submit = [
        f"--py-files {base}/{CODE_ZIP}",
        f"--conf spark.archives={base}/{DEPS_ARCHIVE}#{DEPS_ALIAS}",
        f"--conf spark.emr-serverless.driverEnv.PYTHONPATH=./{DEPS_ALIAS}",
        f"--conf spark.executorEnv.PYTHONPATH=./{DEPS_ALIAS}",
        "--conf spark.sql.session.timeZone=UTC",
    ]
    return {
        "applicationId": application_id,
        "executionRoleArn": job_role_arn,
        "clientToken": client_token,
        "name": "musicnft-scored-posts",
        "executionTimeoutMinutes": execution_timeout_minutes,
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": f"{base}/{ENTRY_SCRIPT}",
                "entryPointArguments": arguments,
                "sparkSubmitParameters": " ".join(submit),
            }
        },
        "configurationOverrides": {
            "monitoringConfiguration": {
                "cloudWatchLoggingConfiguration": {"enabled": True, "logGroupName": log_group}
            }
        },
    }


class EmrServerlessScoringRunner(SparkScoringRunner):
    """The job on the stack's EMR Serverless application (outputs `SparkApplicationId`,
    `SparkJobRoleArn`, `SparkLogGroupName`), submitted through Dagster Pipes."""

    application_id: str
    job_role_arn: str
    artifacts_uri: str  # s3://<artifact bucket>/<SparkArtifactsPrefix>/
    log_group: str = "/aws/emr-serverless/musicnft"
    region_name: str | None = None
    endpoint_url: str | None = None  # a local EMR Serverless and CloudWatch Logs (moto) in tests
    poll_interval: float = 10.0
    execution_timeout_minutes: int = 120

    def _clients(self) -> tuple[Any, Any]:
        import boto3

        kw = {"region_name": self.region_name, "endpoint_url": self.endpoint_url}
        return boto3.client("emr-serverless", **kw), boto3.client("logs", **kw)

    def check(self) -> None:
        missing = [
            name
            for name, value in (
                ("MUSICNFT_EMR_SERVERLESS_APPLICATION_ID", self.application_id),
                ("MUSICNFT_EMR_SERVERLESS_JOB_ROLE_ARN", self.job_role_arn),
                ("MUSICNFT_SPARK_ARTIFACTS_URI", self.artifacts_uri),
            )
            if not value
        ]
        if not self.lake_root.startswith("s3://") or self.lake_root.startswith("s3:///"):
            missing.append(f"an S3 lake (MUSICNFT_S3_BUCKET; lake root is {self.lake_root!r})")
        if missing:
            raise dg.Failure(
                f"EMR Serverless scoring needs {', '.join(missing)} (the stack's outputs and "
                "where `make spark-package` was uploaded: docs/spark-emr-serverless.md)"
            )

    def score(
        self, context: dg.AssetExecutionContext, config: ScoredPostsConfig
    ) -> dg.MaterializeResult:
        from dagster_aws.pipes import PipesCloudWatchMessageReader, PipesEMRServerlessClient

        self.check()
        emr, logs = self._clients()
        params = start_job_run_params(
            application_id=self.application_id,
            job_role_arn=self.job_role_arn,
            artifacts_uri=self.artifacts_uri,
            lake_root=self.lake_root,
            log_group=self.log_group,
            config=config,
            client_token=context.run.run_id,
            execution_timeout_minutes=self.execution_timeout_minutes,
        )
        pipes = PipesEMRServerlessClient(
            client=emr,
            message_reader=PipesCloudWatchMessageReader(client=logs),
            poll_interval=self.poll_interval,
        )
        invocation = pipes.run(context=context, start_job_run_params=params)
        return invocation.get_materialize_result()


def _lake_root(settings: Settings) -> str:
    """The lake as Spark is given it: the local directory, or `s3://<bucket>/`."""
    if settings.lake_backend == "s3":
        return f"s3://{settings.s3_bucket}/"
    return str(settings.lake_dir.resolve())


def _local_runner(settings: Settings) -> SparkScoringRunner:
    return LocalSparkScoringRunner(
        lake_root=_lake_root(settings),
        spark_config=local_spark_config(settings.spark_master),
    )


def _emr_serverless_runner(settings: Settings) -> SparkScoringRunner:
    return EmrServerlessScoringRunner(
        lake_root=_lake_root(settings),
        application_id=settings.emr_serverless_application_id,
        job_role_arn=settings.emr_serverless_job_role_arn,
        artifacts_uri=settings.spark_artifacts_uri,
        log_group=settings.emr_serverless_log_group,
        endpoint_url=settings.aws_endpoint_url,
    )


# Keyed by `Settings.spark_backend` (MUSICNFT_SPARK_BACKEND), as the lake and the warehouse are.
SPARK_RUNNERS: dict[str, Callable[[Settings], SparkScoringRunner]] = {
    "local": _local_runner,
    "emr-serverless": _emr_serverless_runner,
}


def spark_runner_for(settings: Settings) -> SparkScoringRunner:
    return SPARK_RUNNERS[settings.spark_backend](settings)
