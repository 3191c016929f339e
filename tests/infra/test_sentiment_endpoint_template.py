"""The sentiment model's part of infra/template.yaml (issue 15): a SageMaker Model, an
EndpointConfig with ServerlessConfig and the Endpoint, created only when a model artifact (and
the serving image) is given; least-privilege grants for SageMaker and the consumer."""

from __future__ import annotations

import re
from typing import Any

import pytest

from musicnft.settings import Settings
from tests.infra.test_infra_template import (
    DEPLOY_SH,
    getatt,
    props,
    ref,
    role_grants,
)
from tests.infra.test_infra_template import template as template

ENDPOINT_RESOURCES = (
    "SentimentModelRole",
    "SentimentModel",
    "SentimentEndpointConfig",
    "SentimentEndpoint",
    "ConsumerEndpointPolicy",
)
SAGEMAKER_NAME_MAX = 63
STACK_NAME_MAX = 55  # deploy.sh's check (see test_names_derived_from_parameters_fit_their_services)


def test_endpoint_exists_only_with_a_model_artifact_and_an_image(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["SentimentModelDataUrl"]["Default"] == ""
    assert params["SentimentModelImage"]["Default"] == ""
    condition = template["Conditions"]["HasSentimentModel"]
    assert condition == {
        "Fn::And": [
            {"Fn::Not": [{"Fn::Equals": [ref("SentimentModelDataUrl"), ""]}]},
            {"Fn::Not": [{"Fn::Equals": [ref("SentimentModelImage"), ""]}]},
        ]
    }
    for logical_id in ENDPOINT_RESOURCES:
        assert template["Resources"][logical_id]["Condition"] == "HasSentimentModel", logical_id
    pattern = re.compile(params["SentimentModelDataUrl"]["AllowedPattern"])
    assert pattern.fullmatch("")
    assert pattern.fullmatch("s3://my-lake/models/sentiment/s4f2b883fcf37/model.tar.gz")
    assert not pattern.fullmatch("s3://my-lake/raw/model.tar.gz")


def test_model_endpoint_config_and_endpoint_chain(template: dict[str, Any]) -> None:
    model = props(template, "SentimentModel")
    assert model["ExecutionRoleArn"] == getatt("SentimentModelRole", "Arn")
    assert model["PrimaryContainer"]["Image"] == ref("SentimentModelImage")
    assert model["PrimaryContainer"]["ModelDataUrl"] == ref("SentimentModelDataUrl")
    (variant,) = props(template, "SentimentEndpointConfig")["ProductionVariants"]
    assert variant["ModelName"] == getatt("SentimentModel", "ModelName")
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": ref("SentimentEndpointMemory"),
        "MaxConcurrency": ref("SentimentEndpointMaxConcurrency"),
    }
    memory = template["Parameters"]["SentimentEndpointMemory"]
    assert set(memory["AllowedValues"]) <= {1024, 2048, 3072, 4096, 5120, 6144}
    concurrency = template["Parameters"]["SentimentEndpointMaxConcurrency"]
    assert (concurrency["MinValue"], concurrency["MaxValue"]) == (1, 200)
    endpoint = props(template, "SentimentEndpoint")
    assert endpoint["EndpointConfigName"] == getatt("SentimentEndpointConfig", "EndpointConfigName")
    name = endpoint["EndpointName"]["Fn::Sub"]
    assert name == "${AWS::StackName}-model"
    assert STACK_NAME_MAX + len("-model") <= SAGEMAKER_NAME_MAX
    Settings.from_env({"MUSICNFT_SENTIMENT_ENDPOINT": "s" * STACK_NAME_MAX + "-model"})


def test_consumer_calls_the_endpoint_only_when_there_is_one(template: dict[str, Any]) -> None:
    env = props(template, "ConsumerFunction")["Environment"]["Variables"]
    assert env["MUSICNFT_SENTIMENT_ENDPOINT"] == {
        "Fn::If": ["HasSentimentModel", {"Fn::Sub": "${AWS::StackName}-model"}, ref("AWS::NoValue")]
    }
    (statement,) = props(template, "ConsumerEndpointPolicy")["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["sagemaker:InvokeEndpoint"]
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:"
        "endpoint/${AWS::StackName}-model"
    }
    assert props(template, "ConsumerEndpointPolicy")["Roles"] == [ref("ConsumerRole")]


def test_sagemaker_role_reads_only_the_models_and_pulls_the_image(template: dict[str, Any]) -> None:
    trust = props(template, "SentimentModelRole")["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "sagemaker.amazonaws.com"}]
    grants = role_grants(template, "SentimentModelRole")
    assert grants["s3:GetObject"] == [{"Fn::Sub": "${LakeBucket.Arn}/models/sentiment/*"}]
    assert not any(a.startswith("s3:Put") or a.startswith("s3:Delete") for a in grants)
    assert grants["ecr:GetAuthorizationToken"] == ["*"]  # no resource-level permission exists
    for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
        (resource,) = grants[action]
        assert resource["Fn::Sub"].endswith(":repository/*")
    logs = grants["logs:PutLogEvents"]
    assert all("/aws/sagemaker/Endpoints/${AWS::StackName}-model" in r["Fn::Sub"] for r in logs)
    assert set(grants) == {
        "s3:GetObject",
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }


@pytest.mark.parametrize(
    "parameter",
    [
        "SentimentModelDataUrl",
        "SentimentModelImage",
        "SentimentEndpointMemory",
        "SentimentEndpointMaxConcurrency",
    ],
)
def test_deploy_sh_passes_the_model_parameters(parameter: str) -> None:
    assert re.search(rf"^\s+[A-Z_]+:{parameter}$", DEPLOY_SH.read_text(), re.MULTILINE)
