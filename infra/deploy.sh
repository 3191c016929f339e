#!/usr/bin/env bash
# Deploy (create or update) the musicnft stack: infra/template.yaml with CloudFormation.
# `make deploy` calls this. Parameters come from environment variables; see infra/README.md.
#
#   required: ARTIFACT_BUCKET  VPC_ID  SUBNET_ID  BIGQUERY_PROJECT
#   optional: STACK (default musicnft), AWS_REGION / AWS_PROFILE (the AWS CLI's own),
#             STREAM_NAME, GLUE_DATABASE, LAKE_VERSIONING, ERROR_RETENTION_DAYS,
#             LOG_RETENTION_DAYS, LAMBDA_CODE_KEY, PRODUCER_PACKAGE_KEY, LAMBDA_RUNTIME,
#             BIGQUERY_DATASET, INSTANCE_TYPE, AMI_SSM_PARAMETER, KEY_NAME,
#             ENABLE_SESSION_MANAGER, ALARM_EMAIL, ITERATOR_AGE_ALARM_MS,
#             DATA_FRESHNESS_ALARM_SECONDS
#
# Unset optional variables are not passed, so CloudFormation keeps the template default (new
# stack) or the value the stack already has (update). No secret is passed or printed here: the
# secrets are set after deploy with `aws secretsmanager put-secret-value` (infra/README.md).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
template="${here}/template.yaml"
stack="${STACK:-musicnft}"

missing=()
for name in ARTIFACT_BUCKET VPC_ID SUBNET_ID BIGQUERY_PROJECT; do
  if [[ -z "${!name:-}" ]]; then
    missing+=("${name}")
  fi
done
if ((${#missing[@]})); then
  {
    echo "deploy: missing required environment variable(s): ${missing[*]}"
    echo "  ARTIFACT_BUCKET  existing S3 bucket holding the Lambda zip and the producer archive"
    echo "  VPC_ID           VPC of the producer host (vpc-...)"
    echo "  SUBNET_ID        subnet of the producer host, with outbound HTTPS (subnet-...)"
    echo "  BIGQUERY_PROJECT Google Cloud project of the warehouse (the consumer writes posts_hot there)"
    echo "example: ARTIFACT_BUCKET=my-artifacts VPC_ID=vpc-0abc SUBNET_ID=subnet-0def BIGQUERY_PROJECT=my-project infra/deploy.sh"
  } >&2
  exit 2
fi

if ! command -v aws >/dev/null 2>&1; then
  echo "deploy: the AWS CLI (aws) is not on PATH; install AWS CLI v2 first" >&2
  exit 2
fi

overrides=(
  "ArtifactBucket=${ARTIFACT_BUCKET}"
  "VpcId=${VPC_ID}"
  "SubnetId=${SUBNET_ID}"
  "BigQueryProject=${BIGQUERY_PROJECT}"
)
# environment variable -> template parameter, passed only when set
optional=(
  STREAM_NAME:StreamName
  GLUE_DATABASE:GlueDatabaseName
  LAKE_VERSIONING:LakeBucketVersioning
  ERROR_RETENTION_DAYS:ErrorRetentionDays
  LOG_RETENTION_DAYS:LogRetentionDays
  LAMBDA_CODE_KEY:LambdaCodeKey
  PRODUCER_PACKAGE_KEY:ProducerPackageKey
  LAMBDA_RUNTIME:LambdaRuntime
  BIGQUERY_DATASET:BigQueryDataset
  INSTANCE_TYPE:InstanceType
  AMI_SSM_PARAMETER:LatestAmiId
  KEY_NAME:KeyName
  ENABLE_SESSION_MANAGER:EnableSessionManager
  ALARM_EMAIL:AlarmEmail
  ITERATOR_AGE_ALARM_MS:IteratorAgeAlarmMilliseconds
  DATA_FRESHNESS_ALARM_SECONDS:DataFreshnessAlarmSeconds
)
for pair in "${optional[@]}"; do
  var="${pair%%:*}"
  param="${pair#*:}"
  if [[ -n "${!var:-}" ]]; then
    overrides+=("${param}=${!var}")
  fi
done

echo "deploy: stack ${stack} from ${template} (parameters: ${overrides[*]%%=*})"
exec aws cloudformation deploy \
  --template-file "${template}" \
  --stack-name "${stack}" \
  --capabilities CAPABILITY_NAMED_IAM \
  --no-fail-on-empty-changeset \
  --tags project=musicnft \
  --parameter-overrides "${overrides[@]}"
