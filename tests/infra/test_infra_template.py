"""infra/template.yaml (the AWS side of the cloud profile): lint, structure, and a moto deploy.

Three layers, because no single offline tool checks everything:
- cfn-lint validates the template against CloudFormation's resource schemas;
- structural tests assert the properties the design relies on, on the template as parsed by
  cfn-lint's own loader (short-form tags become `Ref` / `Fn::GetAtt` / `Fn::Sub` mappings);
- a stack is created on moto server's CloudFormation and the resources it creates (Kinesis, S3,
  IAM, Lambda, SQS, EC2, logs) are read back through the service APIs. Moto's CloudFormation skips
  Firehose, Glue, Secrets Manager, CloudWatch alarms, the bucket policy and the log stream, so
  those resources' properties, resolved with the stack's real names, are sent to the service
  APIs directly (botocore validates their shape, moto stores them) and read back.
What none of these can check is listed in infra/README.md ("What the tests cannot check").
"""

from __future__ import annotations

import base64
import importlib.util
import inspect
import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from musicnft.contract.schema import glue_columns
from musicnft.settings import Settings
from tests.support.aws import reset_moto
from tests.support.paths import ROOT

INFRA = ROOT / "infra"
TEMPLATE = INFRA / "template.yaml"
COLUMNS = INFRA / "glue" / "post_columns.json"
DEPLOY_SH = INFRA / "deploy.sh"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account

# moto's CloudFormation warns about every resource type it skips (documented below).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")

# Services whose Allow statements must name actions and resources exactly.
GUARDED = ("kinesis", "s3", "glue", "firehose", "secretsmanager", "sqs", "logs")
# Resource types moto's CloudFormation does not create (an Output naming one fails the deploy).
MOTO_SKIPS = {
    "AWS::KinesisFirehose::DeliveryStream",
    "AWS::Glue::Database",
    "AWS::Glue::Table",
    "AWS::SecretsManager::Secret",
}


# ------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode import decode

    parsed, matches = decode(str(TEMPLATE))
    assert not matches, [str(m) for m in matches]
    # Plain dicts/lists/strings (cfn-lint's nodes carry line marks; equality is unaffected).
    return json.loads(json.dumps(parsed))


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id].get("Properties", {})


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def getatt(name: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [name, attribute]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def referenced_names(node: Any) -> set[str]:
    """Logical ids and parameters a template fragment refers to (Ref, GetAtt, ${...} in Sub)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                if isinstance(value, list):
                    found |= referenced_names(value[1])
            else:
                found |= referenced_names(value)
    elif isinstance(node, list):
        for item in node:
            found |= referenced_names(item)
    return found


POLICY_TYPES = (
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
)


def policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner logical id, policy document) for every identity and resource policy."""
    for logical_id, resource in template["Resources"].items():
        p = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in p.get("Policies", []):
                yield logical_id, policy["PolicyDocument"]
        elif resource["Type"] in POLICY_TYPES:
            yield logical_id, p["PolicyDocument"]


def role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [s for p in props(template, role)["Policies"] for s in p["PolicyDocument"]["Statement"]]


def role_grants(template: dict[str, Any], role: str) -> dict[str, list[Any]]:
    """action -> the resources a role's Allow statements grant it on."""
    grants: dict[str, list[Any]] = {}
    for statement in role_statements(template, role):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            grants.setdefault(action, []).extend(as_list(statement["Resource"]))
    return grants


def user_data_script(template: dict[str, Any]) -> str:
    user_data = props(template, "ProducerInstance")["UserData"]
    return user_data["Fn::Base64"]["Fn::Sub"]


def load_renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_template", INFRA / "render_template.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------- lint


def test_cfn_lint_reports_no_errors() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cfnlint.runner import main; sys.exit(main())",
            "--regions",
            REGION,
            "--",
            str(TEMPLATE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # cfn-lint's exit code is a bit mask: 1 fatal, 2 error, 4 warning, 8 informational.
    assert proc.returncode & 0b11 == 0, proc.stdout + proc.stderr
    # Today it is clean of warnings too; keep it that way when editing.
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_template_fits_a_direct_cloudformation_deploy() -> None:
    # `aws cloudformation deploy` sends the body inline up to 51,200 bytes; above that it needs
    # an S3 bucket for the template, which infra/deploy.sh does not pass.
    assert TEMPLATE.stat().st_size < 51_200


# ------------------------------------------------------------------------------------- Glue columns


def test_glue_columns_equal_the_generated_file_and_the_post_schema(template) -> None:
    columns = props(template, "PostsTable")["TableInput"]["StorageDescriptor"]["Columns"]
    from_file = json.loads(COLUMNS.read_text())
    assert columns == from_file
    assert columns == glue_columns()


def test_render_template_reports_the_template_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(INFRA / "render_template.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_render_template_rewrites_only_the_columns_block(tmp_path: Path) -> None:
    from cfnlint.decode import decode_str

    renderer = load_renderer()
    original = TEMPLATE.read_text()
    columns = [*json.loads(COLUMNS.read_text())]
    columns.append({"Name": "extra", "Type": "array<string>", "Comment": 'quotes " and: colons #'})
    (tmp_path / "cols.json").write_text(json.dumps(columns))
    (tmp_path / "template.yaml").write_text(original)

    argv = ["--template", str(tmp_path / "template.yaml"), "--columns", str(tmp_path / "cols.json")]
    assert renderer.main([*argv, "--check"]) == 1
    assert renderer.main(argv) == 0
    rendered = (tmp_path / "template.yaml").read_text()
    assert renderer.main([*argv, "--check"]) == 0  # idempotent

    parsed, matches = decode_str(rendered)
    assert not matches
    got = parsed["Resources"]["PostsTable"]["Properties"]["TableInput"]["StorageDescriptor"]
    assert json.loads(json.dumps(got["Columns"])) == columns

    def outside_block(text: str) -> list[str]:
        lines = text.splitlines()
        begin = next(i for i, line in enumerate(lines) if renderer.BEGIN in line)
        end = next(i for i, line in enumerate(lines) if renderer.END in line)
        return lines[:begin] + lines[end + 1 :]

    assert outside_block(rendered) == outside_block(original)


def test_glue_table_is_parquet_under_raw(template) -> None:
    table = props(template, "PostsTable")
    assert table["DatabaseName"] == ref("GlueDatabase")
    assert props(template, "GlueDatabase")["DatabaseInput"]["Name"] == ref("GlueDatabaseName")
    table_input = table["TableInput"]
    assert table_input["Name"] == "posts"
    assert table_input["TableType"] == "EXTERNAL_TABLE"
    sd = table_input["StorageDescriptor"]
    assert sd["Location"] == {"Fn::Sub": "s3://${LakeBucket}/raw/"}
    assert (
        sd["SerdeInfo"]["SerializationLibrary"]
        == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert sd["OutputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    # Firehose's default key layout (raw/YYYY/MM/DD/HH/) is not Hive-style: no partition keys.
    assert "PartitionKeys" not in table_input


# ------------------------------------------------------------------------------------- stream and lake


def test_stream_is_on_demand_encrypted_with_24h_retention(template) -> None:
    (logical_id,) = resources(template, "AWS::Kinesis::Stream")
    stream = props(template, logical_id)
    assert stream["Name"] == ref("StreamName")
    assert template["Parameters"]["StreamName"]["Default"] == "musicnft-posts"
    assert stream["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert "ShardCount" not in stream
    assert stream["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}
    assert stream["RetentionPeriodHours"] == 24


def test_lake_bucket_is_encrypted_private_and_expires_errors(template) -> None:
    (logical_id,) = resources(template, "AWS::S3::Bucket")
    assert logical_id == "LakeBucket"
    bucket = props(template, logical_id)
    (sse,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["VersioningConfiguration"] == {"Status": ref("LakeBucketVersioning")}
    rules = bucket["LifecycleConfiguration"]["Rules"]
    (errors_rule,) = [r for r in rules if r.get("Prefix") == "errors/"]
    assert errors_rule["Status"] == "Enabled"
    assert errors_rule["ExpirationInDays"] == ref("ErrorRetentionDays")
    assert template["Parameters"]["ErrorRetentionDays"]["Default"] == 30
    # No rule may expire the lake itself.
    assert all(r.get("Prefix") != "raw/" for r in rules)
    assert all("ExpirationInDays" not in r for r in rules if r is not errors_rule)
    # The lake is the source of truth: stack deletion keeps it.
    assert template["Resources"][logical_id]["DeletionPolicy"] == "Retain"


def test_bucket_policy_denies_requests_without_tls(template) -> None:
    (policy,) = resources(template, "AWS::S3::BucketPolicy").values()
    assert policy["Properties"]["Bucket"] == ref("LakeBucket")
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [
        getatt("LakeBucket", "Arn"),
        {"Fn::Sub": "${LakeBucket.Arn}/*"},
    ]


# ------------------------------------------------------------------------------------- Firehose


def test_firehose_reads_the_stream_and_writes_parquet_with_the_glue_schema(template) -> None:
    (logical_id,) = resources(template, "AWS::KinesisFirehose::DeliveryStream")
    firehose = props(template, logical_id)
    assert firehose["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert firehose["KinesisStreamSourceConfiguration"] == {
        "KinesisStreamARN": getatt("PostsStream", "Arn"),
        "RoleARN": getatt("FirehoseRole", "Arn"),
    }
    s3 = firehose["ExtendedS3DestinationConfiguration"]
    assert s3["BucketARN"] == getatt("LakeBucket", "Arn")
    assert s3["RoleARN"] == getatt("FirehoseRole", "Arn")
    # Plain: Firehose appends its default YYYY/MM/DD/HH/ only when the prefix has no expression.
    assert s3["Prefix"] == "raw/"
    assert "!{" not in s3["Prefix"]
    assert s3["ErrorOutputPrefix"].startswith("errors/")
    assert s3["BufferingHints"] == {"IntervalInSeconds": 300, "SizeInMBs": 64}
    assert s3["CompressionFormat"] == "UNCOMPRESSED"  # conversion compresses (Snappy) itself
    logging = s3["CloudWatchLoggingOptions"]
    assert logging["Enabled"] is True
    assert logging["LogGroupName"] == ref("FirehoseLogGroup")
    assert logging["LogStreamName"] == props(template, "FirehoseLogStream")["LogStreamName"]

    conversion = s3["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert conversion["InputFormatConfiguration"] == {"Deserializer": {"OpenXJsonSerDe": {}}}
    assert conversion["OutputFormatConfiguration"] == {
        "Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}
    }
    assert conversion["SchemaConfiguration"] == {
        "CatalogId": ref("AWS::AccountId"),
        "DatabaseName": ref("GlueDatabase"),
        "TableName": ref("PostsTable"),
        "Region": ref("AWS::Region"),
        "RoleARN": getatt("FirehoseRole", "Arn"),
        "VersionId": "LATEST",
    }


# ------------------------------------------------------------------------------------- Lambda


def test_consumer_function_settings(template) -> None:
    (logical_id,) = resources(template, "AWS::Lambda::Function")
    fn = props(template, logical_id)
    runtime = template["Parameters"]["LambdaRuntime"]
    assert fn["Runtime"] == ref("LambdaRuntime")
    assert set(runtime["AllowedValues"]) <= {"python3.11", "python3.12"}
    assert runtime["Default"] in runtime["AllowedValues"]
    assert fn["Handler"] == "handler.kinesis_handler"
    assert fn["Code"] == {"S3Bucket": ref("ArtifactBucket"), "S3Key": ref("LambdaCodeKey")}
    assert fn["MemorySize"] == 512
    assert fn["Timeout"] == 60
    assert fn["Role"] == getatt("ConsumerRole", "Arn")
    env = fn["Environment"]["Variables"]
    assert env["MUSICNFT_PROFILE"] == "cloud"
    assert env["MUSICNFT_BIGQUERY_CREDENTIALS_SECRET_ARN"] == ref("BigQueryCredentialsSecret")
    # Settings.from_env() in the cloud profile requires the lake bucket's name.
    assert env["MUSICNFT_S3_BUCKET"] == ref("LakeBucket")
    # Every value is a constant name or a reference, never a credential.
    for name, value in env.items():
        assert isinstance(value, dict) or name in ("MUSICNFT_PROFILE",), (name, value)


def test_event_source_mapping_settings(template) -> None:
    (logical_id,) = resources(template, "AWS::Lambda::EventSourceMapping")
    esm = props(template, logical_id)
    assert esm["EventSourceArn"] == getatt("PostsStream", "Arn")
    assert esm["FunctionName"] == ref("ConsumerFunction")
    assert esm["BatchSize"] == 100
    assert esm["StartingPosition"] == "LATEST"
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["BisectBatchOnFunctionError"] is True
    assert esm["MaximumRetryAttempts"] == 3
    assert esm["MaximumRecordAgeInSeconds"] == 3600
    assert esm["ParallelizationFactor"] == 1
    assert esm["DestinationConfig"] == {
        "OnFailure": {"Destination": getatt("DeadLetterQueue", "Arn")}
    }
    assert resources(template, "AWS::SQS::Queue").keys() == {"DeadLetterQueue"}


# ------------------------------------------------------------------------------------- secrets


def test_secrets_are_created_with_generated_placeholders_only(template) -> None:
    secrets = resources(template, "AWS::SecretsManager::Secret")
    assert set(secrets) == {
        "XBearerTokenSecret",
        "BigQueryCredentialsSecret",
        "OpenSeaApiKeySecret",
    }
    for secret in secrets.values():
        p = secret["Properties"]
        assert "SecretString" not in p
        assert "GenerateSecretString" in p
        assert "SecretStringTemplate" not in p["GenerateSecretString"]
    text = TEMPLATE.read_text()
    assert not re.search(r"(?<![A-Za-z])SecretString\s*:", text)
    for marker in ("-----BEGIN", "private_key", "AAAAAAAAAAAAAAAAAAAA", "Bearer "):
        assert marker not in text
    # No parameter carries a secret either (secrets are set after deploy, see the README).
    for name, parameter in template["Parameters"].items():
        assert not re.search(r"token|secret|password|credential", name, re.I), name
        assert "NoEcho" not in parameter


# ------------------------------------------------------------------------------------- IAM


def test_no_wildcard_actions_or_resources_for_guarded_services(template) -> None:
    checked = 0
    for owner, document in policy_documents(template):
        for statement in as_list(document["Statement"]):
            if statement["Effect"] != "Allow":
                continue  # a Deny's wildcard restricts (the bucket's TLS-only policy)
            actions = as_list(statement["Action"])
            assert "*" not in actions, (owner, statement)
            guarded = [a for a in actions if a.split(":")[0].lower() in GUARDED]
            for action in guarded:
                assert "*" not in action, (owner, action)
            if not guarded:
                continue
            checked += 1
            assert "NotAction" not in statement and "NotResource" not in statement
            for resource in as_list(statement["Resource"]):
                assert resource != "*", (owner, statement)
                if isinstance(resource, dict) and "Fn::Sub" in resource:
                    # a wildcard only for "every object / log stream under this one name"
                    stem = re.sub(r"(/\*|:\*)$", "", resource["Fn::Sub"])
                    assert "*" not in stem, (owner, resource)
    assert checked >= 10


def test_producer_role_grants(template) -> None:
    grants = role_grants(template, "ProducerRole")
    stream = [getatt("PostsStream", "Arn")]
    assert grants == {
        "kinesis:PutRecord": stream,
        "kinesis:PutRecords": stream,
        "kinesis:DescribeStreamSummary": stream,
        "secretsmanager:GetSecretValue": [ref("XBearerTokenSecret"), ref("OpenSeaApiKeySecret")],
        "s3:GetObject": [
            {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ArtifactBucket}/${ProducerPackageKey}"}
        ],
        # the sales collector's (tests/infra/test_sales_collector_template.py)
        "s3:PutObject": [{"Fn::Sub": "arn:${AWS::Partition}:s3:::${LakeBucket}/sales/*"}],
    }
    # No managed policy (AmazonSSMManagedInstanceCore allowed GetParameter(s) on every parameter).
    assert "ManagedPolicyArns" not in props(template, "ProducerRole")
    (profile,) = resources(template, "AWS::IAM::InstanceProfile").values()
    assert profile["Properties"]["Roles"] == [ref("ProducerRole")]
    assert props(template, "ProducerInstance")["IamInstanceProfile"] == ref(
        "ProducerInstanceProfile"
    )


def test_firehose_role_grants(template) -> None:
    grants = role_grants(template, "FirehoseRole")
    stream = [getatt("PostsStream", "Arn")]
    bucket = [getatt("LakeBucket", "Arn")]
    objects = [{"Fn::Sub": "${LakeBucket.Arn}/raw/*"}, {"Fn::Sub": "${LakeBucket.Arn}/errors/*"}]
    glue = [
        {"Fn::Sub": "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog"},
        {
            "Fn::Sub": "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:database/${GlueDatabaseName}"
        },
        {
            "Fn::Sub": "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:table/${GlueDatabaseName}/posts"
        },
    ]
    assert grants == {
        "kinesis:DescribeStream": stream,
        "kinesis:GetShardIterator": stream,
        "kinesis:GetRecords": stream,
        "kinesis:ListShards": stream,
        "glue:GetTable": glue,
        "glue:GetTableVersion": glue,
        "glue:GetTableVersions": glue,
        "s3:GetBucketLocation": bucket,
        "s3:ListBucket": bucket,
        "s3:ListBucketMultipartUploads": bucket,
        "s3:PutObject": objects,
        # AWS's documented S3 destination policy includes GetObject; on the two prefixes only.
        "s3:GetObject": objects,
        "s3:AbortMultipartUpload": objects,
        "logs:PutLogEvents": [
            {
                "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${FirehoseLogGroup}:log-stream:DestinationDelivery"
            }
        ],
    }
    trust = props(template, "FirehoseRole")["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "firehose.amazonaws.com"}]


def test_consumer_role_grants(template) -> None:
    grants = role_grants(template, "ConsumerRole")
    stream = [getatt("PostsStream", "Arn")]
    kinesis_read = (
        "DescribeStream",
        "DescribeStreamSummary",
        "GetRecords",
        "GetShardIterator",
        "ListShards",
        "SubscribeToShard",
    )
    log_group = {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${ConsumerLogGroup}:*"
    }
    # kinesis:ListStreams is deliberately absent: it only works on Resource "*".
    assert grants == {
        **{f"kinesis:{a}": stream for a in kinesis_read},
        "sqs:SendMessage": [getatt("DeadLetterQueue", "Arn")],
        "secretsmanager:GetSecretValue": [ref("BigQueryCredentialsSecret")],
        "logs:CreateLogStream": [log_group],
        "logs:PutLogEvents": [log_group],
        # the promoted sentiment model (issue 15): its objects, and listing only their prefix
        "s3:GetObject": [{"Fn::Sub": "${LakeBucket.Arn}/models/sentiment/*"}],
        "s3:ListBucket": [getatt("LakeBucket", "Arn")],
    }
    (listing,) = [s for s in role_statements(template, "ConsumerRole") if "Condition" in s]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "models/sentiment/*"}}
    assert props(template, "ConsumerLogGroup")["LogGroupName"] == {
        "Fn::Sub": "/aws/lambda/${AWS::StackName}-consumer"
    }
    assert props(template, "ConsumerFunction")["FunctionName"] == {
        "Fn::Sub": "${AWS::StackName}-consumer"
    }


# ------------------------------------------------------------------------------------- alarms


def test_alarms_watch_the_stream_the_consumer_and_delivery(template) -> None:
    alarms = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"]): a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
    }
    stream = alarms[("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds")]
    assert stream["Dimensions"] == [{"Name": "StreamName", "Value": ref("PostsStream")}]
    consumer = alarms[("AWS/Lambda", "IteratorAge")]
    assert consumer["Dimensions"] == [{"Name": "FunctionName", "Value": ref("ConsumerFunction")}]
    freshness = alarms[("AWS/Firehose", "DeliveryToS3.DataFreshness")]
    assert freshness["Dimensions"] == [
        {"Name": "DeliveryStreamName", "Value": ref("DeliveryStream")}
    ]
    assert freshness["Threshold"] == ref("DataFreshnessAlarmSeconds")
    assert template["Parameters"]["DataFreshnessAlarmSeconds"]["Default"] == 900
    for alarm in (stream, consumer, freshness):
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["Statistic"] == "Maximum"
        assert alarm["AlarmActions"] == [ref("AlarmTopic")]
    # A silent stream (no data at all) is itself the alarm condition.
    silent = alarms[("AWS/Kinesis", "IncomingRecords")]
    assert silent["ComparisonOperator"] == "LessThanThreshold"
    assert silent["TreatMissingData"] == "breaching"
    dlq = alarms[("AWS/SQS", "ApproximateAgeOfOldestMessage")]
    assert dlq["Dimensions"] == [
        {"Name": "QueueName", "Value": getatt("DeadLetterQueue", "QueueName")}
    ]
    # Every alarm says when it clears, too.
    for alarm in alarms.values():
        assert alarm["OKActions"] == [ref("AlarmTopic")], alarm["MetricName"]


def test_on_failure_queue_alarm_does_not_clear_while_messages_wait(template) -> None:
    """SQS stops emitting metrics for a queue nobody calls, even with messages in it; the alarm
    must not fall back to OK in that gap, nor clear when someone merely receives a message."""
    (dlq,) = [
        a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == "AWS/SQS"
    ]
    # The age of the oldest non-deleted message (in-flight included), not the visible count.
    assert dlq["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert dlq["Statistic"] == "Maximum"
    assert (dlq["ComparisonOperator"], dlq["Threshold"]) == ("GreaterThanThreshold", 0)
    # A gap in the data keeps the current state (ALARM stays ALARM); "notBreaching" would turn
    # OK silently. "breaching" would alarm forever on an idle empty queue: not used.
    assert dlq["TreatMissingData"] == "ignore"
    assert dlq["AlarmActions"] == [ref("AlarmTopic")]
    assert dlq["OKActions"] == [ref("AlarmTopic")]
    # The queue keeps a message longer than the records it names stay in the stream.
    retention = props(template, "DeadLetterQueue")["MessageRetentionPeriod"]
    assert retention == 14 * 24 * 3600


# ------------------------------------------------------------------------------------- producer host


def test_producer_host_ami_network_and_security_group(template) -> None:
    params = template["Parameters"]
    assert params["SubnetId"]["Type"] == "AWS::EC2::Subnet::Id"
    assert "Default" in params["InstanceType"]
    assert params["KeyName"]["Default"] == ""  # optional
    instance = props(template, "ProducerInstance")
    assert instance["ImageId"] == ref("ProducerAmiId")
    assert instance["InstanceType"] == ref("InstanceType")
    assert instance["SubnetId"] == ref("SubnetId")
    assert instance["KeyName"] == {"Fn::If": ["HasKeyName", ref("KeyName"), ref("AWS::NoValue")]}
    assert instance["SecurityGroupIds"] == [ref("ProducerSecurityGroup")]
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert all(m["Ebs"]["Encrypted"] for m in instance["BlockDeviceMappings"])

    sg = props(template, "ProducerSecurityGroup")
    assert "SecurityGroupIngress" not in sg
    assert not resources(template, "AWS::EC2::SecurityGroupIngress")
    assert sg["SecurityGroupEgress"], "egress only"


def test_producer_user_data_installs_a_restarting_systemd_unit(template) -> None:
    script = user_data_script(template)
    assert script.startswith("#!/bin/bash\n")
    unit = script.split("/etc/systemd/system/musicnft-producer.service <<'EOF'\n", 1)[1]
    unit = unit.split("\nEOF\n", 1)[0]
    lines = unit.splitlines()
    for line in (
        "Restart=on-failure",
        "RestartSec=5",
        "Environment=MUSICNFT_PROFILE=cloud",
        "Environment=MUSICNFT_STREAM_NAME=${StreamName}",
        "Environment=MUSICNFT_X_BEARER_TOKEN_SECRET_ARN=${XBearerTokenSecret}",
        "Environment=MUSICNFT_S3_BUCKET=${LakeBucket}",
        "Environment=AWS_REGION=${AWS::Region}",
        "ExecStart=/opt/musicnft/bin/start-producer",
        "WantedBy=multi-user.target",
    ):
        assert line in lines, line
    assert "systemctl enable --now musicnft-producer.service" in script
    # Restarts stay under X's limit of 50 connects per 15 minutes.
    settings = dict(line.split("=", 1) for line in lines if line.startswith("StartLimit"))
    interval, burst = int(settings["StartLimitIntervalSec"]), int(settings["StartLimitBurst"])
    assert interval >= 900 and burst < 50

    start = script.split("/opt/musicnft/bin/start-producer <<'EOF'\n", 1)[1].split("\nEOF\n")[0]
    assert start.rstrip().endswith(
        "exec /opt/musicnft/venv/bin/musicnft produce --source x --catch-up"
    )
    # The token is fetched from Secrets Manager when the service starts, never written here.
    (assignment,) = [line for line in start.splitlines() if "MUSICNFT_X_BEARER_TOKEN=" in line]
    assert '="$(aws secretsmanager get-secret-value --secret-id ' in assignment
    assert "$MUSICNFT_X_BEARER_TOKEN_SECRET_ARN" in assignment
    # The Sub names only the stream, the secrets' ARNs, the artifact, the region and the
    # collections the sales collector follows (tests/infra/test_sales_collector_template.py).
    assert referenced_names({"Fn::Sub": script}) == {
        "StreamName",
        "XBearerTokenSecret",
        "OpenSeaApiKeySecret",
        "NftCollections",
        "ArtifactBucket",
        "ProducerPackageKey",
        "LakeBucket",
        "AWS::Region",
    }


def test_producer_image_is_pinned_not_resolved_at_every_update(template) -> None:
    """An SSM parameter type is re-resolved on every stack update, even when the previous value
    is reused, and a new ImageId replaces the instance: the image is a plain id instead."""
    params = template["Parameters"]
    assert "LatestAmiId" not in params
    for name, parameter in params.items():
        assert not parameter["Type"].startswith("AWS::SSM::Parameter::Value"), name
    ami = params["ProducerAmiId"]
    assert ami["Type"] == "AWS::EC2::Image::Id"
    assert "Default" not in ami  # deploy.sh always passes it (kept, or latest on request)
    assert props(template, "ProducerInstance")["ImageId"] == ref("ProducerAmiId")
    text = TEMPLATE.read_text()
    assert "resolve:ssm" not in text and "ami-amazon-linux-latest" not in text


def test_session_manager_is_off_by_default_and_never_reads_parameters(template) -> None:
    params = template["Parameters"]
    assert params["EnableSessionManager"]["Default"] == "false"
    assert template["Conditions"]["UseSessionManager"] == {
        "Fn::Equals": [ref("EnableSessionManager"), "true"]
    }
    # No AWS managed policy anywhere (AmazonSSMManagedInstanceCore allows ssm:GetParameter(s)
    # and ssm:GetDocument on every parameter and document in the account).
    for logical_id, resource in template["Resources"].items():
        assert "ManagedPolicyArns" not in resource.get("Properties", {}), logical_id
    assert "policy/AmazonSSMManagedInstanceCore" not in TEMPLATE.read_text()

    policy = template["Resources"]["ProducerSessionManagerPolicy"]
    assert policy["Type"] == "AWS::IAM::Policy"
    assert policy["Condition"] == "UseSessionManager"
    assert policy["Properties"]["Roles"] == [ref("ProducerRole")]
    actions = set()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow"
        actions |= set(as_list(statement["Action"]))
    # The agent's channel only: registration, Session Manager, Run Command messages.
    assert actions == {
        "ssm:UpdateInstanceInformation",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
        "ec2messages:AcknowledgeMessage",
        "ec2messages:DeleteMessage",
        "ec2messages:FailMessage",
        "ec2messages:GetEndpoint",
        "ec2messages:GetMessages",
        "ec2messages:SendReply",
    }
    # No Allow in any policy of the stack reads parameters, documents or KMS keys, or grants a
    # service-wide wildcard action (the bucket policy's "s3:*" is a Deny).
    for owner, document in policy_documents(template):
        for statement in as_list(document["Statement"]):
            if statement["Effect"] != "Allow":
                continue
            for action in as_list(statement.get("Action", [])):
                assert not action.lower().startswith(("ssm:get", "ssm:describe", "kms:")), owner
                assert not action.endswith(":*"), (owner, action)


def _unit_text(script: str) -> list[str]:
    unit = script.split("/etc/systemd/system/musicnft-producer.service <<'EOF'\n", 1)[1]
    return unit.split("\nEOF\n", 1)[0].splitlines()


def _directives(lines: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in lines:
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_producer_unit_drains_on_stop_and_keeps_the_spool_on_a_retained_volume(template) -> None:
    """A stop (systemctl, instance stop, termination, replacement) lets the producer drain its
    spool to the stream, and what it cannot send stays on a volume that outlives the host."""
    from musicnft.adapters.kinesis_sink import KinesisSink

    script = user_data_script(template)
    unit = _directives(_unit_text(script))

    # Where the spool is: MUSICNFT_DATA_DIR/spool/<stream>.sqlite.
    env = dict(value.split("=", 1) for value in unit["Environment"])
    data_dir = env["MUSICNFT_DATA_DIR"]
    assert data_dir == "/var/lib/musicnft"
    settings = Settings.from_env({**env, "MUSICNFT_STREAM_NAME": "musicnft-posts"})
    assert settings.spool_path == Path(data_dir) / "spool" / "musicnft-posts.sqlite"
    assert unit["StateDirectory"] == ["musicnft"]

    # Stop = SIGTERM to the producer (its drain trigger), with time for the drain before SIGKILL.
    assert unit["KillSignal"] == ["SIGTERM"]
    assert unit["KillMode"] == ["mixed"]  # SIGTERM to the producer itself, SIGKILL for leftovers
    drain_budget = inspect.signature(KinesisSink.close).parameters["drain_seconds"].default
    (timeout,) = unit["TimeoutStopSec"]
    assert int(timeout) >= drain_budget + 30, (timeout, drain_budget)
    # No ExecStop: there is no drain subcommand; SIGTERM is the drain. If one is added, it must
    # be a real command of the CLI.
    for command in unit.get("ExecStop", []):
        words = command.split()
        assert words[0] == "/opt/musicnft/venv/bin/musicnft"
        help_text = subprocess.run(
            [str(Path(sys.executable).parent / "musicnft"), "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        assert re.search(rf"^\s+{re.escape(words[1])}\s", help_text, re.MULTILINE), command
    # The unit stops before the spool's file system is unmounted, and starts only once mounted.
    assert unit["RequiresMountsFor"] == [data_dir]
    assert "network-online.target" in unit["After"][0]  # the network is still up while draining

    # The spool's volume: its own EBS device, kept when the instance goes away, tagged.
    instance = props(template, "ProducerInstance")
    mappings = {m["DeviceName"]: m["Ebs"] for m in instance["BlockDeviceMappings"]}
    spool_device = "/dev/sdf"
    assert mappings[spool_device]["DeleteOnTermination"] is False
    assert mappings[spool_device]["Encrypted"] is True
    assert mappings["/dev/xvda"]["DeleteOnTermination"] is True
    assert instance["PropagateTagsToVolumeOnCreation"] is True
    # ... mounted at the data dir by label, formatted only when it has no file system yet.
    lines = script.splitlines()
    assert f"spool_dev={spool_device}" in lines
    blkid = next(i for i, line in enumerate(lines) if "blkid" in line)
    mkfs = next(i for i, line in enumerate(lines) if "mkfs" in line)
    assert lines[blkid].startswith("if ! blkid ") and blkid < mkfs
    found = re.search(r"-L (\S+) ", lines[mkfs])
    assert found
    label = found.group(1)
    assert len(label) <= 12  # XFS labels hold at most 12 characters
    fstab = next(line for line in lines if "/etc/fstab" in line)
    assert f"LABEL={label} {data_dir} xfs" in fstab and "nofail" in fstab
    mount = lines.index(f"mount {data_dir}")
    assert mount < lines.index("systemctl enable --now musicnft-producer.service")


def test_producer_user_data_is_valid_bash(template) -> None:
    script = user_data_script(template)
    rendered = re.sub(r"\$\{([^!}][^}]*)\}", "x", script).replace("${!", "${")
    proc = subprocess.run(
        ["bash", "-n"], input=rendered, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------- names


FIREHOSE_SUFFIX = "-to-lake"
FUNCTION_SUFFIX = "-consumer"
LAMBDA_NAME_MAX = 64  # a function *name* (the API also accepts ARNs, hence its larger max)


def _firehose_name_max() -> int:
    import botocore.session

    model = botocore.session.get_session().get_service_model("firehose")
    shape = model.operation_model("CreateDeliveryStream").input_shape
    return shape.members["DeliveryStreamName"].metadata["max"]


def test_names_derived_from_parameters_fit_their_services(template) -> None:
    stream = template["Parameters"]["StreamName"]
    assert props(template, "DeliveryStream")["DeliveryStreamName"] == {
        "Fn::Sub": "${StreamName}" + FIREHOSE_SUFFIX
    }
    assert _firehose_name_max() == 64
    assert stream["MaxLength"] + len(FIREHOSE_SUFFIX) <= _firehose_name_max()
    # Firehose names allow what Kinesis names allow ([a-zA-Z0-9_.-]).
    assert stream["AllowedPattern"] == "[a-zA-Z0-9_.-]+"
    # The function name comes from the stack name, which deploy.sh checks (no parameter to
    # constrain): 55 + len("-consumer") == 64.
    assert props(template, "ConsumerFunction")["FunctionName"] == {
        "Fn::Sub": "${AWS::StackName}" + FUNCTION_SUFFIX
    }
    assert re.search(r"\{0,54\}", DEPLOY_SH.read_text())
    assert 55 + len(FUNCTION_SUFFIX) == LAMBDA_NAME_MAX


# ------------------------------------------------------------------------------------- outputs


def test_outputs_name_only_resources_moto_creates(template) -> None:
    outputs = template["Outputs"]
    assert {"StreamName", "StreamArn", "LakeBucketName", "ConsumerFunctionName"} <= set(outputs)
    assert "DeadLetterQueueUrl" in outputs
    types = {k: v["Type"] for k, v in template["Resources"].items()}
    for key, output in outputs.items():
        for name in referenced_names(output["Value"]):
            assert types.get(name) not in MOTO_SKIPS, (key, name)


# ------------------------------------------------------------------------------------- deploy.sh


LATEST_AMI = "ami-0aaaaaaaaaaaaaaaa"  # what the stub's SSM parameter resolves to
CURRENT_AMI = "ami-0123456789abcdef0"  # what the stub's existing stack runs


OLD_HOST = "i-0123456789abcdef0"  # the stub stack's ProducerInstanceId output


class StubAws:
    """An `aws` on PATH that records every call and answers what deploy.sh asks: describe-stacks
    (the parameters from `existing_stack`, the producer's instance id, or "does not exist"),
    ssm get-parameter, ec2 stop-instances / wait, and cloudformation deploy (exit `deploy_exit`)."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.calls_file = tmp_path / "aws-calls"
        self.deploy_file = tmp_path / "aws-deploy-args"
        self.stack_file = tmp_path / "stack-parameters"
        self.describe_error: str | None = None
        stub = self.bin / "aws"
        stub.write_text(
            "#!/bin/bash\n"
            f'printf "%s\\n" "$*" >> "{self.calls_file}"\n'
            'case "$1 $2" in\n'
            '  "cloudformation describe-stacks")\n'
            f'    if [ -f "{self.stack_file}.error" ]; then cat "{self.stack_file}.error" >&2; exit 255; fi\n'
            f'    case "$*" in *Outputs*) echo "{OLD_HOST}"; exit 0 ;; esac\n'
            f'    if [ -f "{self.stack_file}" ]; then cat "{self.stack_file}"; exit 0; fi\n'
            '    echo "An error occurred (ValidationError) when calling the DescribeStacks'
            ' operation: Stack with id $4 does not exist" >&2\n'
            "    exit 254 ;;\n"
            f'  "ssm get-parameter") echo "{LATEST_AMI}" ;;\n'
            f'  "cloudformation deploy") printf "%s\\n" "$@" > "{self.deploy_file}"\n'
            f'    exit "$(cat "{self.deploy_file}.exit" 2>/dev/null || echo 0)" ;;\n'
            '  "ec2 stop-instances" | "ec2 wait") ;;\n'
            '  *) echo "stub aws: unexpected call: $*" >&2; exit 99 ;;\n'
            "esac\n"
        )
        stub.chmod(0o755)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "STACK", "ARTIFACT_", "VPC_", "SUBNET_", "AMI_"))
            and k not in ("UPGRADE_HOST", "STREAM_NAME", "BIGQUERY_PROJECT")
        }
        self.env["PATH"] = f"{self.bin}{os.pathsep}{self.env.get('PATH', '')}"

    def existing_stack(self, rows: list[tuple[str, str, str]]) -> None:
        """describe-stacks' text output: ParameterKey, ParameterValue, ResolvedValue per line."""
        self.stack_file.write_text("".join("\t".join(row) + "\n" for row in rows))

    def failing_deploy(self) -> None:
        Path(f"{self.deploy_file}.exit").write_text("255\n")

    def failing_describe(self, message: str) -> None:
        Path(f"{self.stack_file}.error").write_text(message + "\n")

    @property
    def calls(self) -> list[str]:
        return self.calls_file.read_text().splitlines() if self.calls_file.exists() else []

    @property
    def deploy_args(self) -> list[str]:
        return self.deploy_file.read_text().splitlines() if self.deploy_file.exists() else []

    def overrides(self) -> dict[str, str]:
        args = self.deploy_args
        pairs = args[args.index("--parameter-overrides") + 1 :]
        return dict(pair.split("=", 1) for pair in pairs)

    def run(self, **variables: str) -> subprocess.CompletedProcess[str]:
        env = {
            **self.env,
            "ARTIFACT_BUCKET": "my-artifacts",
            "VPC_ID": "vpc-0abc",
            "SUBNET_ID": "subnet-0def",
            "BIGQUERY_PROJECT": "my-project",
            **variables,
        }
        return subprocess.run(
            ["bash", str(DEPLOY_SH)], env=env, capture_output=True, text=True, timeout=30
        )


def test_deploy_sh_refuses_to_run_without_required_parameters(tmp_path: Path) -> None:
    aws = StubAws(tmp_path)
    env = {**aws.env, "VPC_ID": "vpc-0abc"}
    proc = subprocess.run(
        ["bash", str(DEPLOY_SH)], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    first_line = proc.stderr.splitlines()[0]
    assert "ARTIFACT_BUCKET" in first_line and "SUBNET_ID" in first_line
    assert "BIGQUERY_PROJECT" in first_line
    assert "VPC_ID" not in first_line
    assert aws.calls == [], "aws must not be called"


def test_deploy_sh_passes_parameters_and_never_prints_secrets(tmp_path: Path) -> None:
    aws = StubAws(tmp_path)
    proc = aws.run(
        STACK="musicnft-test",
        INSTANCE_TYPE="t3.micro",
        KEY_NAME="",  # set but empty: not passed
        # Nothing in deploy.sh reads these; they must not leak into its output either.
        X_BEARER_TOKEN="not-a-real-token-123",
        MUSICNFT_X_BEARER_TOKEN="not-a-real-token-123",
    )
    assert proc.returncode == 0, proc.stderr
    args = aws.deploy_args
    assert args[:2] == ["cloudformation", "deploy"]
    assert args[args.index("--template-file") + 1] == str(TEMPLATE)
    assert args[args.index("--stack-name") + 1] == "musicnft-test"
    assert args[args.index("--capabilities") + 1] == "CAPABILITY_NAMED_IAM"
    overrides = args[args.index("--parameter-overrides") + 1 :]
    assert overrides == [
        "ArtifactBucket=my-artifacts",
        "VpcId=vpc-0abc",
        "SubnetId=subnet-0def",
        "BigQueryProject=my-project",
        "InstanceType=t3.micro",
        f"ProducerAmiId={LATEST_AMI}",  # a new stack: the latest image
    ]
    assert "not-a-real-token" not in proc.stdout + proc.stderr + "\n".join(aws.calls)


# ---- names: a name CloudFormation would reject only after the stream exists stops deploy.sh


def _path_without_aws() -> str:
    """PATH minus every directory holding an `aws` (this machine has one)."""
    kept = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not (Path(d) / "aws").exists()
    ]
    return os.pathsep.join(kept)


BAD_NAMES = [
    pytest.param({"STACK": "s" * 56}, "STACK", id="stack-56-chars"),
    pytest.param({"STACK": "9lives"}, "STACK", id="stack-starts-with-digit"),
    pytest.param({"STACK": "my_stack"}, "STACK", id="stack-underscore"),
    pytest.param({"STACK": ""}, None, id="stack-empty-means-default"),
    pytest.param({"STREAM_NAME": "p" * 57}, "STREAM_NAME", id="stream-57-chars"),
    pytest.param({"STREAM_NAME": "posts/raw"}, "STREAM_NAME", id="stream-slash"),
    pytest.param({"AMI_ID": "ami-xyz"}, "AMI_ID", id="ami-not-hex"),
    pytest.param({"UPGRADE_HOST": "yes"}, "UPGRADE_HOST", id="upgrade-not-0-or-1"),
]


@pytest.mark.parametrize(("variables", "named"), BAD_NAMES)
def test_deploy_sh_rejects_bad_names_before_calling_aws(
    tmp_path: Path, variables: dict[str, str], named: str | None
) -> None:
    aws = StubAws(tmp_path)
    proc = aws.run(**variables)
    if named is None:  # STACK="" falls back to the default name, which is fine
        assert proc.returncode == 0, proc.stderr
        assert aws.deploy_args[aws.deploy_args.index("--stack-name") + 1] == "musicnft"
        return
    assert proc.returncode == 2
    assert aws.calls == [], "aws must not be called"
    (line,) = proc.stderr.splitlines()  # one clear line
    assert line.startswith(f"deploy: {named} ")
    # Without any aws CLI at all, the name error still comes first (not "install the AWS CLI").
    env = {**aws.env, "PATH": _path_without_aws(), "ARTIFACT_BUCKET": "a", "VPC_ID": "vpc-1"}
    env.update(SUBNET_ID="subnet-1", BIGQUERY_PROJECT="my-project", **variables)
    proc = subprocess.run(
        ["bash", str(DEPLOY_SH)], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"deploy: {named} ")


def test_deploy_sh_accepts_the_longest_names(tmp_path: Path) -> None:
    aws = StubAws(tmp_path)
    stack = "m" + "-x" * 27  # 55 characters: "<stack>-consumer" is 64
    stream = "s" * 56  # "<stream>-to-lake" is 64
    proc = aws.run(STACK=stack, STREAM_NAME=stream)
    assert proc.returncode == 0, proc.stderr
    assert len(stack + FUNCTION_SUFFIX) == LAMBDA_NAME_MAX
    assert len(stream + FIREHOSE_SUFFIX) == _firehose_name_max()
    assert aws.overrides()["StreamName"] == stream


def test_deploy_sh_without_aws_cli_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in StubAws(tmp_path).env.items()}
    env.update(
        PATH=_path_without_aws(),
        ARTIFACT_BUCKET="a",
        VPC_ID="vpc-1",
        SUBNET_ID="subnet-1",
        BIGQUERY_PROJECT="my-project",
    )
    proc = subprocess.run(
        ["bash", str(DEPLOY_SH)], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert "AWS CLI" in proc.stderr


# ---- the producer image: pinned, so that an unrelated deploy never replaces the host


def test_deploy_sh_new_stack_takes_the_latest_image(tmp_path: Path) -> None:
    aws = StubAws(tmp_path)
    proc = aws.run(AMI_SSM_PARAMETER="/my/own/ami-parameter")
    assert proc.returncode == 0, proc.stderr
    assert aws.overrides()["ProducerAmiId"] == LATEST_AMI
    assert aws.calls[0].startswith("cloudformation describe-stacks --stack-name musicnft ")
    assert aws.calls[1].startswith("ssm get-parameter --name /my/own/ami-parameter ")
    assert "REPLACED" not in proc.stdout


def test_deploy_sh_update_keeps_the_image_the_stack_runs(tmp_path: Path) -> None:
    aws = StubAws(tmp_path)
    aws.existing_stack(
        [
            ("ArtifactBucket", "my-artifacts", "None"),
            ("ProducerAmiId", CURRENT_AMI, "None"),
            ("StreamName", "musicnft-posts", "None"),
            ("SubnetId", "subnet-0def", "None"),
            ("KeyName", "ops", "None"),
        ]
    )
    proc = aws.run(INSTANCE_TYPE="t3.medium", KEY_NAME="ops")
    assert proc.returncode == 0, proc.stderr
    assert aws.overrides()["ProducerAmiId"] == CURRENT_AMI
    assert not any(call.startswith("ssm ") for call in aws.calls), "no lookup of the latest"
    assert not any(call.startswith("ec2 ") for call in aws.calls), "the host is left alone"
    assert "REPLACED" not in proc.stdout
    assert f"producer image {CURRENT_AMI} (kept" in proc.stdout


def test_deploy_sh_update_from_the_ssm_typed_template_keeps_the_resolved_image(
    tmp_path: Path,
) -> None:
    # A stack deployed before the image was pinned: LatestAmiId holds the SSM parameter name,
    # and describe-stacks reports the image it resolved to (the host's) as ResolvedValue.
    aws = StubAws(tmp_path)
    aws.existing_stack(
        [
            (
                "LatestAmiId",
                "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
                CURRENT_AMI,
            ),
            ("VpcId", "vpc-0abc", "None"),
        ]
    )
    proc = aws.run()
    assert proc.returncode == 0, proc.stderr
    overrides = aws.overrides()
    assert overrides["ProducerAmiId"] == CURRENT_AMI
    assert "LatestAmiId" not in overrides
    # Adding the spool volume (a new block device) replaces the host once: stopped first, so
    # that it drains its spool (still on the root volume) before CloudFormation terminates it.
    assert "REPLACED (this template version gives the producer its own spool volume)" in (
        proc.stdout
    )
    stop = next(i for i, call in enumerate(aws.calls) if call.startswith("ec2 stop-instances"))
    deploy = next(i for i, c in enumerate(aws.calls) if c.startswith("cloudformation deploy"))
    assert stop < deploy


def test_deploy_sh_other_replacing_changes_stop_the_old_host_too(tmp_path: Path) -> None:
    aws = StubAws(tmp_path)
    aws.existing_stack(
        [
            ("ProducerAmiId", CURRENT_AMI, "None"),
            ("SubnetId", "subnet-0old", "None"),
            ("KeyName", "", "None"),
        ]
    )
    proc = aws.run(SUBNET_ID="subnet-0new", KEY_NAME="ops")
    assert proc.returncode == 0, proc.stderr
    assert "REPLACED (subnet subnet-0old -> subnet-0new; key pair)" in proc.stdout
    assert any(call.startswith("ec2 stop-instances") for call in aws.calls)
    assert aws.overrides()["ProducerAmiId"] == CURRENT_AMI  # the image is still kept


def test_deploy_sh_upgrade_host_stops_the_old_host_then_moves_to_the_latest_image(
    tmp_path: Path,
) -> None:
    aws = StubAws(tmp_path)
    aws.existing_stack([("ProducerAmiId", CURRENT_AMI, "None")])
    proc = aws.run(UPGRADE_HOST="1")
    assert proc.returncode == 0, proc.stderr
    assert aws.overrides()["ProducerAmiId"] == LATEST_AMI
    assert f"REPLACED (image {CURRENT_AMI} -> {LATEST_AMI})" in proc.stdout
    # CloudFormation starts the new host before it terminates the old one: the old host is
    # stopped (its producer drains the spool on the way down) before the stack is touched.
    verbs = [" ".join(call.split()[:2]) for call in aws.calls]
    assert verbs == [
        "cloudformation describe-stacks",  # parameters: the current image
        "ssm get-parameter",  # the latest image
        "cloudformation describe-stacks",  # the producer's instance id
        "ec2 stop-instances",
        "ec2 wait",
        "cloudformation deploy",
    ]
    assert f"--instance-ids {OLD_HOST}" in aws.calls[3]
    assert aws.calls[4].startswith(f"ec2 wait instance-stopped --instance-ids {OLD_HOST}")


def test_deploy_sh_failed_upgrade_says_how_to_restart_the_old_host(tmp_path: Path) -> None:
    aws = StubAws(tmp_path)
    aws.existing_stack([("ProducerAmiId", CURRENT_AMI, "None")])
    aws.failing_deploy()
    proc = aws.run(UPGRADE_HOST="1")
    assert proc.returncode == 255
    assert f"aws ec2 start-instances --instance-ids {OLD_HOST}" in proc.stderr


def test_deploy_sh_upgrade_host_with_the_latest_image_already_changes_nothing(
    tmp_path: Path,
) -> None:
    aws = StubAws(tmp_path)
    aws.existing_stack([("ProducerAmiId", LATEST_AMI, "None")])
    proc = aws.run(UPGRADE_HOST="1")
    assert proc.returncode == 0, proc.stderr
    assert aws.overrides()["ProducerAmiId"] == LATEST_AMI
    assert "REPLACED" not in proc.stdout
    assert not any(call.startswith("ec2 ") for call in aws.calls)


def test_deploy_sh_explicit_ami_id_wins(tmp_path: Path) -> None:
    aws = StubAws(tmp_path)
    aws.existing_stack([("ProducerAmiId", CURRENT_AMI, "None")])
    proc = aws.run(AMI_ID="ami-0bbbbbbbbbbbbbbbb", UPGRADE_HOST="1")
    assert proc.returncode == 0, proc.stderr
    assert aws.overrides()["ProducerAmiId"] == "ami-0bbbbbbbbbbbbbbbb"
    assert not any(call.startswith("ssm ") for call in aws.calls)
    assert "REPLACED" in proc.stdout
    assert any(call.startswith("ec2 stop-instances") for call in aws.calls)


def test_deploy_sh_stops_when_the_current_image_is_unknown(tmp_path: Path) -> None:
    # Never fall back to "latest" for an existing stack: that is the accidental replacement.
    aws = StubAws(tmp_path)
    aws.existing_stack([("VpcId", "vpc-0abc", "None")])
    proc = aws.run()
    assert proc.returncode == 1
    assert "AMI_ID" in proc.stderr and "UPGRADE_HOST=1" in proc.stderr
    assert aws.deploy_args == []


def test_deploy_sh_stops_when_the_stack_cannot_be_read(tmp_path: Path) -> None:
    # An error other than "does not exist" (credentials, throttling) is not a new stack.
    aws = StubAws(tmp_path)
    aws.failing_describe("Unable to locate credentials. You can configure credentials ...")
    proc = aws.run()
    assert proc.returncode == 1
    assert "Unable to locate credentials" in proc.stderr
    assert aws.deploy_args == []
    assert not any(call.startswith("ssm ") for call in aws.calls)


def test_deploy_sh_covers_every_template_parameter(template) -> None:
    text = DEPLOY_SH.read_text()
    mapped = set(re.findall(r"^\s+[A-Z_]+:([A-Za-z]+)$", text, re.MULTILINE))
    required = set(re.findall(r'^\s+"([A-Za-z]+)=\$\{[A-Z_]+\}"$', text, re.MULTILINE))
    computed = set(re.findall(r'^overrides\+=\("([A-Za-z]+)=', text, re.MULTILINE))
    assert required == {"ArtifactBucket", "VpcId", "SubnetId", "BigQueryProject"}
    assert computed == {"ProducerAmiId"}
    assert mapped | required | computed == set(template["Parameters"])
    # Always passed here = no default in the template.
    no_default = {k for k, v in template["Parameters"].items() if "Default" not in v}
    assert no_default == required | computed


# ------------------------------------------------------------------------------------- moto deploy


class MotoStack:
    """A stack created from infra/template.yaml on moto server's CloudFormation."""

    def __init__(self, endpoint: str, template: dict[str, Any]) -> None:
        import boto3

        self.endpoint = endpoint
        self.template = template
        self.parameters: dict[str, str] = {}
        self.status = ""
        self.outputs: dict[str, str] = {}
        self.physical: dict[str, str] = {}
        self.kw = {
            "endpoint_url": endpoint,
            "region_name": REGION,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        self._boto3 = boto3

    def client(self, service: str) -> Any:
        return self._boto3.client(service, **self.kw)


@pytest.fixture(scope="module")
def moto_stack(template) -> Iterator[MotoStack]:
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as mp:
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(key, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            reset_moto(f"http://{host}:{port}")  # moto's state is per process, not per server
            stack = MotoStack(f"http://{host}:{port}", template)
            _create_stack(stack)
            yield stack
        finally:
            reset_moto(f"http://{host}:{port}")  # leave no stack behind for the next test
            server.stop()


def _create_stack(stack: MotoStack) -> None:
    s3 = stack.client("s3")
    ec2 = stack.client("ec2")
    cfn = stack.client("cloudformation")

    s3.create_bucket(Bucket="musicnft-artifacts")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as zf:
        zf.writestr("handler.py", "def kinesis_handler(event, context=None):\n    return {}\n")
    s3.put_object(Bucket="musicnft-artifacts", Key="musicnft/lambda.zip", Body=code.getvalue())
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    # What deploy.sh passes for a new stack: the image the public SSM parameter names today.
    ami = stack.client("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    )["Parameter"]["Value"]
    stack.parameters = {
        "ArtifactBucket": "musicnft-artifacts",
        "VpcId": vpc,
        "SubnetId": subnet,
        "BigQueryProject": "musicnft-test",
        "ProducerAmiId": ami,
    }

    # The YAML text itself, as `aws cloudformation deploy` sends it.
    cfn.create_stack(
        StackName="musicnft",
        TemplateBody=TEMPLATE.read_text(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in stack.parameters.items()],
    )
    deadline = time.monotonic() + 30
    while True:
        described = cfn.describe_stacks(StackName="musicnft")["Stacks"][0]
        if not described["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    stack.status = described["StackStatus"]
    stack.outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    stack.physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName="musicnft")["StackResourceSummaries"]
        if r.get("LogicalResourceId")
    }


def test_moto_stack_reaches_create_complete(moto_stack: MotoStack) -> None:
    assert moto_stack.status == "CREATE_COMPLETE"
    assert set(moto_stack.outputs) == set(moto_stack.template["Outputs"])
    created = {
        "PostsStream",
        "LakeBucket",
        "FirehoseRole",
        "ConsumerRole",
        "ProducerRole",
        "ProducerInstanceProfile",
        "ConsumerFunction",
        "ConsumerEventSourceMapping",
        "DeadLetterQueue",
        "ConsumerLogGroup",
        "FirehoseLogGroup",
        "ProducerSecurityGroup",
        "ProducerInstance",
        "AlarmTopic",
    }
    assert created <= set(moto_stack.physical)


def test_moto_stream_and_bucket(moto_stack: MotoStack) -> None:
    from botocore.exceptions import ClientError

    summary = moto_stack.client("kinesis").describe_stream_summary(
        StreamName=moto_stack.outputs["StreamName"]
    )["StreamDescriptionSummary"]
    assert summary["StreamName"] == "musicnft-posts"
    assert summary["StreamARN"] == moto_stack.outputs["StreamArn"]
    assert summary["StreamStatus"] == "ACTIVE"
    assert summary["RetentionPeriodHours"] == 24
    # moto 5.2's CloudFormation ignores StreamModeDetails and StreamEncryption (it reports
    # PROVISIONED / NONE); the structural test covers them.

    s3 = moto_stack.client("s3")
    bucket = moto_stack.outputs["LakeBucketName"]
    s3.head_bucket(Bucket=bucket)
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # moto's CloudFormation does not apply PublicAccessBlockConfiguration (nor versioning,
    # lifecycle or ownership controls); if a later moto does, it must report all four as true.
    try:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration"
    else:
        assert all(block.values()) and len(block) == 4


def test_moto_roles_have_resolved_least_privilege_policies(moto_stack: MotoStack) -> None:
    iam = moto_stack.client("iam")
    services = {
        "ProducerRole": "ec2.amazonaws.com",
        "FirehoseRole": "firehose.amazonaws.com",
        "ConsumerRole": "lambda.amazonaws.com",
    }
    stream_arn = moto_stack.outputs["StreamArn"]
    for logical_id, service in services.items():
        role = iam.get_role(RoleName=moto_stack.physical[logical_id])["Role"]
        trust = role["AssumeRolePolicyDocument"]
        if isinstance(trust, str):
            trust = json.loads(trust)
        assert [s["Principal"] for s in trust["Statement"]] == [{"Service": service}]
        names = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
        assert len(names) == 1
        document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=names[0])[
            "PolicyDocument"
        ]
        if isinstance(document, str):
            # moto returns the document as the Python repr of what CloudFormation resolved
            document = json.loads(
                document.replace("'", '"').replace("True", "true").replace("False", "false")
            )
        for statement in document["Statement"]:
            actions = as_list(statement["Action"])
            if "Resource" not in statement:
                # moto skips Secrets Manager, so a Ref to a secret resolves to nothing here.
                assert actions == ["secretsmanager:GetSecretValue"], statement
                continue
            for resource in as_list(statement["Resource"]):
                assert resource != "*" and "${" not in resource, (logical_id, statement)
                assert resource.startswith(f"arn:aws:{actions[0].split(':')[0]}:"), resource
            if any(a.startswith("kinesis:") for a in actions):
                assert statement["Resource"] == stream_arn

    (profile,) = iam.list_instance_profiles()["InstanceProfiles"]
    assert [r["RoleName"] for r in profile["Roles"]] == [moto_stack.physical["ProducerRole"]]


def test_moto_lambda_and_event_source_mapping(moto_stack: MotoStack) -> None:
    lam = moto_stack.client("lambda")
    name = moto_stack.outputs["ConsumerFunctionName"]
    assert name == "musicnft-consumer"
    config = lam.get_function_configuration(FunctionName=name)
    assert config["Runtime"] == "python3.12"
    assert config["Handler"] == "handler.kinesis_handler"
    assert config["MemorySize"] == 512
    assert config["Timeout"] == 60
    assert config["Role"].endswith("/" + moto_stack.physical["ConsumerRole"])
    env = config["Environment"]["Variables"]
    assert env["MUSICNFT_PROFILE"] == "cloud"
    assert env["MUSICNFT_STREAM_NAME"] == "musicnft-posts"
    assert env["MUSICNFT_S3_BUCKET"] == moto_stack.outputs["LakeBucketName"]
    # MUSICNFT_BIGQUERY_CREDENTIALS_SECRET_ARN is absent here only because moto skips secrets.
    settings = Settings.from_env(env)  # what lambda/handler.py does at first use
    assert (settings.profile, settings.stream_backend) == ("cloud", "kinesis")
    assert (settings.warehouse_backend, settings.bigquery_project) == ("bigquery", "musicnft-test")
    assert settings.bigquery_dataset == "musicnft"

    (esm,) = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    queue_arn = moto_stack.client("sqs").get_queue_attributes(
        QueueUrl=moto_stack.outputs["DeadLetterQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert esm["EventSourceArn"] == moto_stack.outputs["StreamArn"]
    assert esm["FunctionArn"] == config["FunctionArn"]
    assert esm["State"] == "Enabled"
    assert esm["BatchSize"] == 100
    assert esm["StartingPosition"] == "LATEST"
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["BisectBatchOnFunctionError"] is True
    assert esm["MaximumRetryAttempts"] == 3
    assert esm["MaximumRecordAgeInSeconds"] == 3600
    assert esm["ParallelizationFactor"] == 1
    assert esm["DestinationConfig"] == {"OnFailure": {"Destination": queue_arn}}


def test_moto_queue_and_log_groups(moto_stack: MotoStack) -> None:
    attributes = moto_stack.client("sqs").get_queue_attributes(
        QueueUrl=moto_stack.outputs["DeadLetterQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert attributes["MessageRetentionPeriod"] == "1209600"
    groups = {
        g["logGroupName"]: g for g in moto_stack.client("logs").describe_log_groups()["logGroups"]
    }
    for name in ("/aws/lambda/musicnft-consumer", "/aws/kinesisfirehose/musicnft-posts-to-lake"):
        assert groups[name]["retentionInDays"] == 14


def test_moto_producer_instance(moto_stack: MotoStack) -> None:
    ec2 = moto_stack.client("ec2")
    instance_id = moto_stack.outputs["ProducerInstanceId"]
    (reservation,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    (instance,) = reservation["Instances"]
    assert instance["ImageId"] == moto_stack.parameters["ProducerAmiId"]
    assert instance["InstanceType"] == "t3.small"
    assert instance["SubnetId"] == moto_stack.parameters["SubnetId"]
    assert moto_stack.physical["ProducerInstanceProfile"] in instance["IamInstanceProfile"]["Arn"]

    (group,) = ec2.describe_security_groups(
        GroupIds=[moto_stack.physical["ProducerSecurityGroup"]]
    )["SecurityGroups"]
    assert group["VpcId"] == moto_stack.parameters["VpcId"]
    assert group["IpPermissions"] == []  # no inbound rule
    # moto's CloudFormation keeps the default allow-all egress instead of the template's
    # HTTPS-only rule, and reports HttpTokens "optional"; the structural tests cover both.

    user_data = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    script = base64.b64decode(user_data["UserData"]["Value"]).decode()
    assert "Environment=MUSICNFT_STREAM_NAME=musicnft-posts\n" in script
    assert f"Environment=AWS_DEFAULT_REGION={REGION}\n" in script
    assert "s3://musicnft-artifacts/musicnft/musicnft-src.tar.gz" in script
    assert "Restart=on-failure\nRestartSec=5\n" in script
    # The unit's environment is a valid cloud-profile configuration for the producer.
    unit_env = dict(
        line.removeprefix("Environment=").split("=", 1)
        for line in script.splitlines()
        if line.startswith("Environment=")
    )
    settings = Settings.from_env(unit_env)
    assert (settings.profile, settings.stream_backend) == ("cloud", "kinesis")
    assert settings.stream_name == "musicnft-posts"
    assert settings.s3_bucket == moto_stack.outputs["LakeBucketName"]
    # The rendered unit drains on stop and keeps the spool on the mounted spool volume.
    unit = _directives(_unit_text(script))
    assert (unit["KillSignal"], unit["KillMode"]) == (["SIGTERM"], ["mixed"])
    assert int(unit["TimeoutStopSec"][0]) >= 60
    assert unit["RequiresMountsFor"] == [str(settings.data_dir)]
    assert settings.spool_path.is_relative_to(settings.data_dir)
    assert "mount /var/lib/musicnft\n" in script
    # moto's CloudFormation creates only the root device; the structural test covers /dev/sdf.
    devices = {m["DeviceName"] for m in instance.get("BlockDeviceMappings", [])}
    assert devices <= {"/dev/xvda", "/dev/sda1", "/dev/sdf"}, devices


def _resolver(stack: MotoStack) -> dict[str, Any]:
    """Values for Ref / GetAtt / ${...}: the moto stack's names, and for the resources moto
    skips the names CloudFormation would give them (all fixed by the template)."""
    template = stack.template
    values: dict[str, Any] = {
        "AWS::AccountId": ACCOUNT,
        "AWS::Region": REGION,
        "AWS::Partition": "aws",
        "AWS::StackName": "musicnft",
    }
    for name, parameter in template["Parameters"].items():
        value = stack.parameters.get(name, parameter.get("Default"))
        values[name] = int(value) if parameter["Type"] == "Number" else value
    values.update(stack.physical)
    bucket = stack.outputs["LakeBucketName"]
    iam = stack.client("iam")
    queue_arn = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.outputs["DeadLetterQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    values.update(
        {
            "PostsStream.Arn": stack.outputs["StreamArn"],
            "LakeBucket.Arn": f"arn:aws:s3:::{bucket}",
            "FirehoseRole.Arn": iam.get_role(RoleName=stack.physical["FirehoseRole"])["Role"][
                "Arn"
            ],
            "DeadLetterQueue.Arn": queue_arn,
            "DeadLetterQueue.QueueName": queue_arn.rsplit(":", 1)[1],
            "GlueDatabase": values["GlueDatabaseName"],
            "PostsTable": "posts",
            "DeliveryStream": f"{values['StreamName']}-to-lake",
            "ConsumerFunction": stack.outputs["ConsumerFunctionName"],
        }
    )
    return values


def _resolve(node: Any, values: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Ref"}:
            return values[node["Ref"]]
        if set(node) == {"Fn::GetAtt"}:
            return values[".".join(node["Fn::GetAtt"])]
        if set(node) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^!}][^}]*)\}", lambda m: str(values[m.group(1)]), node["Fn::Sub"])
        return {k: _resolve(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, values) for v in node]
    return node


def test_moto_skipped_resources_are_accepted_by_their_service_apis(moto_stack: MotoStack) -> None:
    """Glue, Firehose, alarms and the bucket's policy/public access block, resolved with the
    stack's names and sent to the service APIs (botocore validates names and types)."""
    values = _resolver(moto_stack)
    template = moto_stack.template
    bucket = moto_stack.outputs["LakeBucketName"]

    glue = moto_stack.client("glue")
    db = _resolve(props(template, "GlueDatabase"), values)
    glue.create_database(CatalogId=db["CatalogId"], DatabaseInput=db["DatabaseInput"])
    table = _resolve(props(template, "PostsTable"), values)
    glue.create_table(
        CatalogId=table["CatalogId"],
        DatabaseName=table["DatabaseName"],
        TableInput=table["TableInput"],
    )
    stored = glue.get_table(DatabaseName="musicnft", Name="posts")["Table"]
    assert stored["StorageDescriptor"]["Columns"] == json.loads(COLUMNS.read_text())
    assert stored["StorageDescriptor"]["Location"] == f"s3://{bucket}/raw/"

    firehose = moto_stack.client("firehose")
    delivery = _resolve(props(template, "DeliveryStream"), values)
    firehose.create_delivery_stream(**delivery)
    described = firehose.describe_delivery_stream(DeliveryStreamName="musicnft-posts-to-lake")
    description = described["DeliveryStreamDescription"]
    assert (
        description["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"]
        == (moto_stack.outputs["StreamArn"])
    )
    (destination,) = description["Destinations"]
    s3_dest = destination["ExtendedS3DestinationDescription"]
    assert s3_dest["BucketARN"] == f"arn:aws:s3:::{bucket}"
    assert s3_dest["Prefix"] == "raw/"
    assert s3_dest["BufferingHints"] == {"IntervalInSeconds": 300, "SizeInMBs": 64}
    schema = s3_dest["DataFormatConversionConfiguration"]["SchemaConfiguration"]
    assert (schema["DatabaseName"], schema["TableName"]) == ("musicnft", "posts")

    cloudwatch = moto_stack.client("cloudwatch")
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    for logical_id in alarms:
        cloudwatch.put_metric_alarm(
            AlarmName=logical_id, **_resolve(props(template, logical_id), values)
        )
    stored_alarms = {
        a["AlarmName"]: a
        for a in cloudwatch.describe_alarms(AlarmNames=list(alarms))["MetricAlarms"]
    }
    assert stored_alarms["DeliveryFreshnessAlarm"]["Dimensions"] == [
        {"Name": "DeliveryStreamName", "Value": "musicnft-posts-to-lake"}
    ]
    assert stored_alarms["DeliveryFreshnessAlarm"]["Threshold"] == 900

    s3 = moto_stack.client("s3")
    policy = _resolve(props(template, "LakeBucketPolicy"), values)
    assert policy["Bucket"] == bucket
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy["PolicyDocument"]))
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy["PolicyDocument"]
    block = props(template, "LakeBucket")["PublicAccessBlockConfiguration"]
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)
    stored_block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert stored_block == block


def _heredoc(script: str, path: str) -> str:
    return script.split(f"{path} <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]


def test_the_producer_catches_up_gaps_and_a_timer_probes_its_health(template) -> None:
    """After a restart or a disconnect the X source fills the gap from recent search, and every
    5 minutes `status --check --local-only` (the probe that needs no warehouse) runs as a unit
    whose failure the journal shows with one line saying why."""
    script = user_data_script(template)
    start = _heredoc(script, "/opt/musicnft/bin/start-producer")
    assert "musicnft produce --source x --catch-up" in start
    health = _directives(
        _heredoc(script, "/etc/systemd/system/musicnft-health.service").splitlines()
    )
    assert health["Type"] == ["oneshot"]
    assert health["ExecStart"] == ["/opt/musicnft/venv/bin/musicnft status --check --local-only"]
    producer_env = set(_directives(_unit_text(script))["Environment"])
    assert set(health["Environment"]) <= producer_env  # same profile, stream, bucket, data dir
    assert "MUSICNFT_DATA_DIR=/var/lib/musicnft" in health["Environment"]
    timer = _directives(_heredoc(script, "/etc/systemd/system/musicnft-health.timer").splitlines())
    assert timer["OnUnitActiveSec"] == ["5min"]
    assert "systemctl enable --now musicnft-health.timer" in script
    # the probe's flags are real
    help_text = subprocess.run(
        [str(Path(sys.executable).parent / "musicnft"), "status", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "--check" in help_text and "--local-only" in help_text
