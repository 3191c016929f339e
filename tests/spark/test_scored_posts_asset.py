"""The Dagster asset `scored_posts` (issue 16 item 3): wired by profile like the lake, run on this
machine through dagster-pyspark, and submitted to EMR Serverless through Dagster Pipes.

EMR Serverless is moto server's: it records a job run and reports it SUCCESS at once without
running anything. `FakeEmrDriver` stands in for the driver EMR Serverless would start: it runs the
submitted entry script with the environment the request gives the driver
(`spark.emr-serverless.driverEnv.*`, where the Pipes client puts its bootstrap parameters) and
puts the script's stdout and stderr into moto's CloudWatch Logs under the stream EMR Serverless
names (`/applications/<app>/jobs/<run>/SPARK_DRIVER/stdout`), where the Pipes client reads the
messages back. What this cannot cover: EMR Serverless actually starting the packaged script from
S3 with the job role (spark.archives, --py-files), and its job states between SUBMITTED and
SUCCESS (moto has none); the runner's handling of a FAILED run is tested with moto's state set.
"""

from __future__ import annotations

import itertools
import os
import shlex
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
import pytest

from musicnft.settings import Settings
from musicnft_dagster.assets.scored_posts import scored_posts
from musicnft_dagster.resources import resources_for
from musicnft_dagster.spark_resources import (
    EmrServerlessScoringRunner,
    LocalSparkScoringRunner,
    local_spark_config,
)
from tests.support.aws import client, moto_server
from tests.support.paths import ROOT

ACCOUNT = "123456789012"  # moto's
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/musicnft-SparkJobRole-TEST"
ARTIFACTS = "s3://musicnft-artifacts/musicnft/spark/"
LOG_GROUP = "/aws/emr-serverless/musicnft"
ENTRY = ROOT / "musicnft" / "spark" / "emr_entrypoint.py"


# ------------------------------------------------------------------------------ wiring


def test_definitions_load_with_scored_posts_and_a_runner_per_profile() -> None:
    from musicnft_dagster.definitions import defs

    repo = defs.get_repository_def()
    assert dg.AssetKey("scored_posts") in repo.asset_graph.get_all_asset_keys()
    assert "spark_scoring" in {j.name for j in repo.get_all_jobs()}
    local = resources_for(Settings.from_env({}))["spark_scoring"]
    assert isinstance(local, LocalSparkScoringRunner)
    assert local.spark_config["spark.master"] == "local[*]"
    assert local.spark_config["spark.pyspark.python"] == sys.executable
    cloud = resources_for(
        Settings.from_env(
            {
                "MUSICNFT_PROFILE": "cloud",
                "MUSICNFT_S3_BUCKET": "lake-bucket",
                "MUSICNFT_EMR_SERVERLESS_APPLICATION_ID": "00fabc123",
                "MUSICNFT_EMR_SERVERLESS_JOB_ROLE_ARN": ROLE_ARN,
                "MUSICNFT_SPARK_ARTIFACTS_URI": "s3://musicnft-artifacts/musicnft/spark",
            }
        )
    )["spark_scoring"]
    assert isinstance(cloud, EmrServerlessScoringRunner)
    assert (cloud.application_id, cloud.job_role_arn) == ("00fabc123", ROLE_ARN)
    assert cloud.artifacts_uri == ARTIFACTS and cloud.lake_root == "s3://lake-bucket/"
    assert cloud.log_group == LOG_GROUP


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MUSICNFT_SPARK_BACKEND", "yarn"),
        ("MUSICNFT_EMR_SERVERLESS_APPLICATION_ID", "00f/../x"),
        ("MUSICNFT_EMR_SERVERLESS_JOB_ROLE_ARN", "SparkJobRole"),
        ("MUSICNFT_SPARK_ARTIFACTS_URI", "https://bucket/musicnft/spark/"),
    ],
)
def test_bad_spark_settings_stop_with_the_variable_named(name: str, value: str) -> None:
    from musicnft.settings import ConfigError

    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_emr_runner_without_its_settings_fails_naming_them() -> None:
    runner = EmrServerlessScoringRunner(
        lake_root="s3://lake/", application_id="", job_role_arn="", artifacts_uri=""
    )
    with pytest.raises(dg.Failure, match="MUSICNFT_EMR_SERVERLESS_APPLICATION_ID") as info:
        runner.check()
    assert "MUSICNFT_SPARK_ARTIFACTS_URI" in str(info.value)


# ------------------------------------------------------------------------------ EMR Serverless


def driver_env(spark_submit_parameters: str) -> dict[str, str]:
    """The driver's environment a StartJobRun request sets (`--conf
    spark.emr-serverless.driverEnv.NAME=value`), as EMR Serverless applies it."""
    prefix = "spark.emr-serverless.driverEnv."
    words = shlex.split(spark_submit_parameters)
    out: dict[str, str] = {}
    for flag, value in itertools.pairwise(words):
        if flag == "--conf" and value.startswith(prefix):
            name, _, setting = value[len(prefix) :].partition("=")
            out[name] = setting
    return out


class FakeEmrDriver:
    """moto's EMR Serverless client, plus a driver: see the module docstring."""

    def __init__(self, emr: Any, logs: Any, script: Path, lake_dir: Path | None) -> None:
        self._emr, self._logs, self.script, self.lake_dir = emr, logs, script, lake_dir
        self.requests: list[dict[str, Any]] = []
        self.outputs: list[subprocess.CompletedProcess[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._emr, name)

    def get_dashboard_for_job_run(self, applicationId: str, jobRunId: str) -> Any:
        # not in moto; the Pipes client asks for it when a run ends other than SUCCESS
        return {"url": f"https://emr-serverless.invalid/{applicationId}/{jobRunId}"}

    def start_job_run(self, **params: Any) -> Any:
        response = self._emr.start_job_run(**params)
        self.requests.append(params)
        driver = params["jobDriver"]["sparkSubmit"]
        args = list(driver["entryPointArguments"])
        if self.lake_dir is not None:  # the same lake, on disk instead of S3
            args[args.index("--lake-root") + 1] = str(self.lake_dir)
        submitted = driver_env(driver["sparkSubmitParameters"])
        # the packaged deps (./deps on EMR) are this checkout here: import the code under test,
        # not whatever copy of musicnft the virtualenv has installed
        if "PYTHONPATH" in submitted:
            submitted["PYTHONPATH"] += os.pathsep + str(ROOT)
        env = {
            **os.environ,
            **submitted,
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_SUBMIT_ARGS": "--master local[2] --conf spark.ui.enabled=false "
            "--conf spark.sql.shuffle.partitions=2 pyspark-shell",
        }
        proc = subprocess.run(
            [sys.executable, str(self.script), *args],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            cwd=ROOT,
        )
        self.outputs.append(proc)
        group = params["configurationOverrides"]["monitoringConfiguration"][
            "cloudWatchLoggingConfiguration"
        ]["logGroupName"]
        stream = f"/applications/{response['applicationId']}/jobs/{response['jobRunId']}"
        with _suppress_exists(self._logs):
            self._logs.create_log_group(logGroupName=group)
        for name, text in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            log_stream = f"{stream}/SPARK_DRIVER/{name}"
            self._logs.create_log_stream(logGroupName=group, logStreamName=log_stream)
            now = int(time.time() * 1000)
            events = [{"timestamp": now, "message": line} for line in text.splitlines() if line]
            if events:
                self._logs.put_log_events(
                    logGroupName=group, logStreamName=log_stream, logEvents=events
                )
        if proc.returncode != 0:  # what EMR Serverless reports for a driver that failed
            from moto.emrserverless.models import emrserverless_backends

            backend = emrserverless_backends[ACCOUNT]["us-east-1"]
            for run in backend.job_runs[response["applicationId"]]:
                if run.id == response["jobRunId"]:
                    run.state = "FAILED"
                    run.state_details = f"driver exited with status {proc.returncode}"
        return response


class _suppress_exists:
    def __init__(self, logs: Any) -> None:
        self.logs = logs

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        return kind is not None and issubclass(
            kind, self.logs.exceptions.ResourceAlreadyExistsException
        )


class MotoEmrRunner(EmrServerlessScoringRunner):
    """The cloud runner with moto's clients and `FakeEmrDriver` in place of the real driver."""

    script: str
    lake_dir: str | None = None
    drivers: ClassVar[list[FakeEmrDriver]] = []

    def _clients(self) -> tuple[Any, Any]:
        emr, logs = super()._clients()
        driver = FakeEmrDriver(
            emr, logs, Path(self.script), Path(self.lake_dir) if self.lake_dir else None
        )
        MotoEmrRunner.drivers.append(driver)
        return driver, logs


@pytest.fixture()
def emr() -> Iterator[tuple[str, str]]:
    """moto server with an EMR Serverless SPARK application: (endpoint, application id)."""
    with moto_server() as url:
        app = client("emr-serverless", url).create_application(
            name="musicnft-spark-score", releaseLabel="emr-7.5.0", type="SPARK", clientToken="t"
        )
        MotoEmrRunner.drivers.clear()
        yield url, app["applicationId"]


STAND_IN = textwrap.dedent(
    """
    # A stand-in for the scoring script on the driver: Pipes' protocol, no Spark.
    import sys
    from dagster_pipes import open_dagster_pipes
    with open_dagster_pipes() as pipes:
        pipes.log.info("stand-in driver: " + " ".join(sys.argv[1:]))
        pipes.report_asset_materialization(
            metadata={"rows_written": 7, "batches": 2, "model_version": "m1",
                      "output_path": sys.argv[sys.argv.index("--lake-root") + 1] + "scored/",
                      "argv": " ".join(sys.argv[1:])}
        )
    """
)


def _runner(url: str, app_id: str, script: Path, **kw: Any) -> MotoEmrRunner:
    return MotoEmrRunner(
        lake_root="s3://lake-bucket/",
        application_id=app_id,
        job_role_arn=ROLE_ARN,
        artifacts_uri=ARTIFACTS,
        log_group=LOG_GROUP,
        endpoint_url=url,
        poll_interval=0.1,
        script=str(script),
        **kw,
    )


def test_emr_runner_submits_the_packaged_script_and_takes_the_pipes_report(
    emr: tuple[str, str], tmp_path: Path
) -> None:
    url, app_id = emr
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    result = dg.materialize(
        [scored_posts],
        resources={"spark_scoring": _runner(url, app_id, script)},
        run_config={"ops": {"scored_posts": {"config": {"rescore": True, "model_version": "m1"}}}},
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["rows_written"] == 7 and metadata["batches"] == 2
    assert metadata["output_path"] == "s3://lake-bucket/scored/"
    assert metadata["AWS EMR Serverless Application ID"] == app_id

    (driver,) = MotoEmrRunner.drivers
    (request,) = driver.requests
    assert metadata["AWS EMR Serverless Job Run ID"]
    job = client("emr-serverless", url).get_job_run(
        applicationId=app_id, jobRunId=metadata["AWS EMR Serverless Job Run ID"]
    )["jobRun"]
    assert job["executionRole"] == ROLE_ARN
    submit = job["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"] == ARTIFACTS + "emr_entrypoint.py"
    assert submit["entryPointArguments"] == [
        "--lake-root",
        "s3://lake-bucket/",
        "--rescore",
        "--model",
        "m1",
    ]
    params = submit["sparkSubmitParameters"]
    assert f"--py-files {ARTIFACTS}musicnft.zip" in params
    assert f"spark.archives={ARTIFACTS}pydeps.tar.gz#pydeps" in params
    env = driver_env(params)
    assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES", "PYTHONPATH"} <= set(env)
    assert job["tags"]["dagster/run-id"] == result.run_id
    assert request["clientToken"] == result.run_id  # a retried submission is the same run
    assert metadata["argv"] == "--lake-root s3://lake-bucket/ --rescore --model m1"


def test_emr_runner_fails_the_asset_when_the_job_run_fails(
    emr: tuple[str, str], tmp_path: Path
) -> None:
    url, app_id = emr
    script = tmp_path / "broken.py"
    script.write_text("import sys\nprint('no lake here', file=sys.stderr)\nsys.exit(3)\n")
    result = dg.materialize(
        [scored_posts],
        resources={"spark_scoring": _runner(url, app_id, script)},
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("scored_posts")
    assert failure is not None and "EMR Serverless job failed" in str(failure.error)
    assert result.get_asset_materialization_events() == []


# ------------------------------------------------------------------------------ real Spark


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.support.spark_lake import build_spark_lake

    return build_spark_lake(tmp_path_factory.mktemp("lake") / "lake", drops=2, per_drop=10)


@pytest.mark.slow
def test_local_materialization_scores_every_post_once(small_lake: Any) -> None:
    from musicnft.spark.scored import read_committed_table
    from tests.support.spark_lake import expected_scores

    runner = LocalSparkScoringRunner(
        lake_root=str(small_lake.root),
        spark_config=local_spark_config("local[2]") | {"spark.sql.shuffle.partitions": "2"},
    )
    first = dg.materialize([scored_posts], resources={"spark_scoring": runner})
    assert first.success
    (event,) = first.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    expected = expected_scores(small_lake)
    assert metadata["rows_written"] == len(expected)
    assert metadata["model_version"] == small_lake.model_version
    assert metadata["output_path"].endswith("/scored/")
    rows = read_committed_table(str(small_lake.root)).to_pylist()
    assert sorted(r["post_id"] for r in rows) == sorted(expected)
    for r in rows:
        compound, score, label = expected[r["post_id"]]
        assert r["sentiment_compound"] == compound
        assert r["model_label"] == label
        assert r["model_score"] == pytest.approx(score, abs=1e-6)

    again = dg.materialize([scored_posts], resources={"spark_scoring": runner})
    assert again.success  # nothing new since: nothing written twice
    (event,) = again.get_asset_materialization_events()
    assert event.materialization.metadata["rows_written"].value == 0
    assert len(read_committed_table(str(small_lake.root))) == len(expected)


@pytest.mark.slow
def test_emr_entry_script_reports_the_real_job_through_pipes(
    emr: tuple[str, str], tmp_path: Path
) -> None:
    """The real entry script (Spark local[2] in the fake driver) on a fresh small lake."""
    from musicnft.spark.scored import read_committed_table
    from tests.support.spark_lake import build_spark_lake, expected_scores

    url, app_id = emr
    lake = build_spark_lake(tmp_path / "lake", drops=1, per_drop=8)
    result = dg.materialize(
        [scored_posts],
        resources={"spark_scoring": _runner(url, app_id, ENTRY, lake_dir=str(lake.root))},
        raise_on_error=False,
    )
    (driver,) = MotoEmrRunner.drivers
    assert result.success, driver.outputs[-1].stderr[-3000:]
    (event,) = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    expected = expected_scores(lake)
    assert metadata["rows_written"] == len(expected)
    assert metadata["model_version"] == lake.model_version
    assert metadata["batches"] >= 1
    assert len(read_committed_table(str(lake.root))) == len(expected)
