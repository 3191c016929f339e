"""The Spark scoring part of infra/template.yaml (issue 16): an EMR Serverless application (SPARK,
auto start/stop, capacity bounded by parameters, driver logs in the stack's log group) and a
least-privilege job runtime role whose S3 grants are exactly the prefixes the job's code uses.

moto's CloudFormation does not create `AWS::EMRServerless::Application` (it warns and skips it),
so the moto test checks what moto does create (the role with its resolved policy, the log group),
that the application's output comes back unresolved rather than missing, and sends the
application's resolved properties to moto's EMR Serverless API directly (botocore validates the
request's shape), then starts a job run with the stack's role.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from musicnft.contract.lake_layout import MODELS_PREFIX, RAW_PREFIX, SCORED_PREFIX
from musicnft.settings import Settings
from musicnft.spark.layout import CHECKPOINT, RESCORE_CHECKPOINTS
from musicnft.spark.quarantine import LEDGER_PREFIX
from musicnft_dagster.spark_resources import start_job_run_params
from tests.infra.test_infra_template import (
    MotoStack,
    _resolve,
    _resolver,
    as_list,
    getatt,
    props,
    ref,
    role_grants,
    role_statements,
)
from tests.infra.test_infra_template import moto_stack as moto_stack
from tests.infra.test_infra_template import template as template

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")

# What the job reads and what it writes, from its own code (a new prefix there fails here).
READ_PREFIXES = {RAW_PREFIX, MODELS_PREFIX}
WRITE_PREFIXES = {SCORED_PREFIX, CHECKPOINT, RESCORE_CHECKPOINTS, LEDGER_PREFIX}
S3_WRITES = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}


def _lake_prefix(resource: Any) -> str | None:
    """`scored/` for {"Fn::Sub": "${LakeBucket.Arn}/scored/*"}; None for other resources."""
    text = resource.get("Fn::Sub", "") if isinstance(resource, dict) else ""
    if not text.startswith("${LakeBucket.Arn}/"):
        return None
    assert text.endswith("/*"), text
    return text.removeprefix("${LakeBucket.Arn}/").removesuffix("*")


def test_application_is_spark_on_the_pinned_release_and_starts_and_stops_itself(template) -> None:
    app = template["Resources"]["SparkApplication"]
    assert app["Type"] == "AWS::EMRServerless::Application"
    p = app["Properties"]
    assert p["Type"] == "SPARK"
    assert p["ReleaseLabel"] == ref("SparkReleaseLabel")
    assert template["Parameters"]["SparkReleaseLabel"]["Default"] == "emr-spark-8.0.0"
    assert p["AutoStartConfiguration"] == {"Enabled": True}
    assert p["AutoStopConfiguration"] == {
        "Enabled": True,
        "IdleTimeoutMinutes": ref("SparkIdleTimeoutMinutes"),
    }
    assert p["Name"] == {"Fn::Sub": "${AWS::StackName}-spark-score"}


def test_maximum_capacity_is_bounded_by_parameters(template) -> None:
    capacity = props(template, "SparkApplication")["MaximumCapacity"]
    assert capacity == {
        "Cpu": {"Fn::Sub": "${SparkMaxVcpu} vCPU"},
        "Memory": {"Fn::Sub": "${SparkMaxMemoryGb} GB"},
    }
    params = template["Parameters"]
    for name in ("SparkMaxVcpu", "SparkMaxMemoryGb", "SparkIdleTimeoutMinutes"):
        p = params[name]
        assert p["Type"] == "Number"
        assert p["MinValue"] <= p["Default"] <= p["MaxValue"], name
    # EMR Serverless' own limits: a worker has at most 16 vCPU / 120 GB, an application 400 vCPU
    # by default quota; the defaults allow a driver and three 4-vCPU executors.
    assert params["SparkMaxVcpu"]["MaxValue"] <= 400
    assert params["SparkMaxVcpu"]["Default"] == 16


def test_driver_logs_go_to_the_stacks_log_group_where_pipes_reads_them(template) -> None:
    monitoring = props(template, "SparkApplication")["MonitoringConfiguration"]
    assert monitoring == {
        "CloudWatchLoggingConfiguration": {"Enabled": True, "LogGroupName": ref("SparkLogGroup")}
    }
    group = props(template, "SparkLogGroup")
    assert group["LogGroupName"] == {"Fn::Sub": "/aws/emr-serverless/${AWS::StackName}"}
    assert group["RetentionInDays"] == ref("LogRetentionDays")
    # The default stack name's group is the runner's default (MUSICNFT_EMR_SERVERLESS_LOG_GROUP).
    assert Settings.from_env({}).emr_serverless_log_group == "/aws/emr-serverless/musicnft"


def test_job_role_is_assumed_only_by_emr_serverless_of_this_account(template) -> None:
    (trust,) = props(template, "SparkJobRole")["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "emr-serverless.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}}


def test_job_role_s3_grants_are_exactly_the_jobs_prefixes(template) -> None:
    grants = role_grants(template, "SparkJobRole")
    for action, resources in grants.items():
        if action.startswith("s3:"):
            assert "*" not in action, action
            assert "*" not in resources, action
    read = {_lake_prefix(r) for r in grants["s3:GetObject"]} - {None}
    assert read == READ_PREFIXES | WRITE_PREFIXES
    for action in S3_WRITES:
        assert {_lake_prefix(r) for r in grants[action]} == WRITE_PREFIXES, action
    # raw/ and models/ are never written or deleted
    for action, resources in grants.items():
        if action in S3_WRITES:
            assert not {_lake_prefix(r) for r in resources} & READ_PREFIXES
    # the stream's checkpoint grant is `checkpoints/spark-score/*`: it does not cover the
    # re-score checkpoints or the ledger by accident (they are granted by name)
    assert CHECKPOINT == "checkpoints/spark-score/"
    assert not RESCORE_CHECKPOINTS.startswith(CHECKPOINT)
    assert not LEDGER_PREFIX.startswith(CHECKPOINT)
    # the packaged code: read-only, under its prefix of the artifact bucket only
    others = [r for r in grants["s3:GetObject"] if _lake_prefix(r) is None]
    assert others == [
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ArtifactBucket}/${SparkArtifactsPrefix}/*"}
    ]
    assert set(grants) == {
        "s3:GetObject",
        *S3_WRITES,
        "s3:ListBucket",
        "logs:DescribeLogGroups",
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    }


def test_job_role_lists_only_the_jobs_prefixes(template) -> None:
    (listing,) = [
        s
        for s in role_statements(template, "SparkJobRole")
        if "s3:ListBucket" in as_list(s["Action"])
    ]
    assert listing["Resource"] == getatt("LakeBucket", "Arn")
    patterns = listing["Condition"]["StringLike"]["s3:prefix"]
    for prefix in READ_PREFIXES | WRITE_PREFIXES:
        key = f"{prefix}2021/12/01/09/part-0.parquet"
        assert any(re.fullmatch(p.replace("*", ".*"), key) for p in patterns), prefix
    for outside in ("errors/x", "sales/2021/x", "deletions/x", "checkpoints/other/x", ""):
        assert not any(re.fullmatch(p.replace("*", ".*"), outside) for p in patterns), outside


def test_job_role_logs_only_to_its_log_group(template) -> None:
    grants = role_grants(template, "SparkJobRole")
    for action in ("logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"):
        (resource,) = grants[action]
        assert resource["Fn::Sub"].endswith(":log-group:${SparkLogGroup}:*"), action
    (describe,) = grants["logs:DescribeLogGroups"]
    assert describe["Fn::Sub"].endswith(":log-group:*")  # a listing: no name to scope it to


def test_outputs_name_the_application_the_role_and_the_log_group(template) -> None:
    outputs = template["Outputs"]
    assert outputs["SparkApplicationId"]["Value"] == {"Fn::Sub": "${SparkApplication}"}
    assert outputs["SparkJobRoleArn"]["Value"] == getatt("SparkJobRole", "Arn")
    assert outputs["SparkLogGroupName"]["Value"] == ref("SparkLogGroup")


def test_runner_submits_what_the_role_may_read() -> None:
    params = start_job_run_params(
        application_id="00abc",
        job_role_arn="arn:aws:iam::123456789012:role/musicnft-SparkJobRole-X",
        artifacts_uri="s3://musicnft-artifacts/musicnft/spark/",
        lake_root="s3://lake-bucket/",
        log_group="/aws/emr-serverless/musicnft",
        config=_config(),
        client_token="run-1",
    )
    driver = params["jobDriver"]["sparkSubmit"]
    # the template's default SparkArtifactsPrefix, under which the role may read
    assert driver["entryPoint"].startswith("s3://musicnft-artifacts/musicnft/spark/")
    for uri in re.findall(r"s3://\S+", driver["sparkSubmitParameters"]):
        assert uri.startswith("s3://musicnft-artifacts/musicnft/spark/"), uri


def _config() -> Any:
    from musicnft_dagster.spark_resources import ScoredPostsConfig

    return ScoredPostsConfig()


# ------------------------------------------------------------------------------------- moto


def _camel(node: Any) -> Any:
    """CloudFormation's PascalCase properties as the EMR Serverless API's camelCase."""
    if isinstance(node, dict):
        return {k[0].lower() + k[1:]: _camel(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_camel(v) for v in node]
    return node


@pytest.mark.slow
def test_moto_creates_the_role_and_log_group_and_keeps_the_application_output(
    moto_stack: MotoStack,
) -> None:
    assert moto_stack.status == "CREATE_COMPLETE"
    # moto skips the application: its output is the unresolved text, not a missing key
    assert "SparkApplication" not in moto_stack.physical
    assert moto_stack.outputs["SparkApplicationId"] == "${SparkApplication}"

    iam = moto_stack.client("iam")
    role = iam.get_role(RoleName=moto_stack.physical["SparkJobRole"])["Role"]
    assert role["Arn"] == moto_stack.outputs["SparkJobRoleArn"]
    (name,) = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
    document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(
            document.replace("'", '"').replace("True", "true").replace("False", "false")
        )
    bucket = moto_stack.outputs["LakeBucketName"]
    resources = {r for s in document["Statement"] for r in as_list(s["Resource"])}
    assert f"arn:aws:s3:::{bucket}/scored/*" in resources
    assert f"arn:aws:s3:::{bucket}/raw/*" in resources
    assert "arn:aws:s3:::musicnft-artifacts/musicnft/spark/*" in resources
    assert not any(r == "*" or "${" in r for r in resources), resources

    group = moto_stack.outputs["SparkLogGroupName"]
    assert group == "/aws/emr-serverless/musicnft"
    found = moto_stack.client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in found] == [group]


@pytest.mark.slow
def test_moto_emr_serverless_accepts_the_application_and_a_job_run(moto_stack: MotoStack) -> None:
    values = _resolver(moto_stack)
    values["SparkLogGroup"] = moto_stack.outputs["SparkLogGroupName"]
    app = _camel(_resolve(props(moto_stack.template, "SparkApplication"), values))
    assert app["releaseLabel"] == "emr-spark-8.0.0"
    assert app["maximumCapacity"] == {"cpu": "16 vCPU", "memory": "64 GB"}
    emr = moto_stack.client("emr-serverless")
    # moto accepts only labels shaped `emr-N.N.0` (its own pattern, older than the `emr-spark-`
    # labels REFERENCE.md gives for Spark 4.0.2): it refuses this one, so the label is checked
    # by cfn-lint and the structural test only, and the rest of the request goes with one it knows.
    with pytest.raises(emr.exceptions.ValidationException, match="release label"):
        emr.create_application(**app, clientToken="t0")
    created = emr.create_application(**(app | {"releaseLabel": "emr-7.5.0"}), clientToken="t")
    stored = emr.get_application(applicationId=created["applicationId"])["application"]
    assert stored["type"] == "Spark" and stored["name"] == "musicnft-spark-score"
    assert stored["maximumCapacity"] == {"cpu": "16 vCPU", "memory": "64 GB"}
    assert stored["autoStopConfiguration"] == {"enabled": True, "idleTimeoutMinutes": 15}

    params = start_job_run_params(
        application_id=created["applicationId"],
        job_role_arn=moto_stack.outputs["SparkJobRoleArn"],
        artifacts_uri="s3://musicnft-artifacts/musicnft/spark/",
        lake_root=f"s3://{moto_stack.outputs['LakeBucketName']}/",
        log_group=moto_stack.outputs["SparkLogGroupName"],
        config=_config(),
        client_token="run-1",
    )
    run = emr.start_job_run(**params)
    job = emr.get_job_run(applicationId=run["applicationId"], jobRunId=run["jobRunId"])["jobRun"]
    assert job["executionRole"] == moto_stack.outputs["SparkJobRoleArn"]
    assert job["jobDriver"] == params["jobDriver"]
