#!/usr/bin/env bash
# Deploy (create or update) the musicnft stack: infra/template.yaml with CloudFormation.
# `make deploy` calls this. Parameters come from environment variables; see infra/README.md.
#
#   required: ARTIFACT_BUCKET  VPC_ID  SUBNET_ID  BIGQUERY_PROJECT
#   optional: STACK (default musicnft), AWS_REGION / AWS_PROFILE (the AWS CLI's own),
#             STREAM_NAME, GLUE_DATABASE, LAKE_VERSIONING, ERROR_RETENTION_DAYS,
#             LOG_RETENTION_DAYS, LAMBDA_CODE_KEY, PRODUCER_PACKAGE_KEY, LAMBDA_RUNTIME,
#             BIGQUERY_DATASET, INSTANCE_TYPE, KEY_NAME, ENABLE_SESSION_MANAGER, ALARM_EMAIL,
#             ITERATOR_AGE_ALARM_MS, DATA_FRESHNESS_ALARM_SECONDS,
#             SPARK_RELEASE_LABEL, SPARK_MAX_VCPU, SPARK_MAX_MEMORY_GB, SPARK_IDLE_TIMEOUT_MINUTES,
#             SPARK_ARTIFACTS_PREFIX (EMR Serverless scoring: docs/spark-emr-serverless.md)
#   sales collector: NFT_COLLECTIONS (OpenSea slugs, comma-separated; empty: not started)
#   producer image: UPGRADE_HOST=1 (move to the latest image: replaces the host),
#             AMI_ID (an explicit ami-...), AMI_SSM_PARAMETER (where "latest" is read; default
#             Amazon Linux 2023 x86_64)
#
# Unset optional variables are not passed, so CloudFormation keeps the template default (new
# stack) or the value the stack already has (update). The producer image (ProducerAmiId) is always
# passed: the stack's current one on an update, so that a deploy never replaces the host by
# accident; the latest Amazon Linux 2023 image for a new stack or with UPGRADE_HOST=1.
# Names are checked before anything is called: a name CloudFormation would only reject after the
# stream exists (Lambda's <stack>-consumer, Firehose's <stream>-to-lake, both at most 64
# characters) stops here. No secret is passed or printed here: the secrets are set after deploy
# with `aws secretsmanager put-secret-value` (infra/README.md).
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

# Names (before any call to AWS). The function is <stack>-consumer (64 characters at most), so the
# stack name has at most 55; CloudFormation's own rule is a letter, then letters, digits, hyphens.
if [[ ! "${stack}" =~ ^[A-Za-z][A-Za-z0-9-]{0,54}$ ]]; then
  echo "deploy: STACK '${stack}' is not usable: 1-55 letters, digits or hyphens, starting with a letter (the Lambda function '<stack>-consumer' must fit in 64 characters)" >&2
  exit 2
fi
# The delivery stream is <stream>-to-lake (64 characters at most): 56 for the stream name.
if [[ -n "${STREAM_NAME:-}" && ! "${STREAM_NAME}" =~ ^[A-Za-z0-9_.-]{1,56}$ ]]; then
  echo "deploy: STREAM_NAME '${STREAM_NAME}' is not usable: 1-56 letters, digits, '_', '.' or '-' (the Firehose stream '<stream>-to-lake' must fit in 64 characters)" >&2
  exit 2
fi
if [[ -n "${AMI_ID:-}" && ! "${AMI_ID}" =~ ^ami-[0-9a-f]{8,17}$ ]]; then
  echo "deploy: AMI_ID '${AMI_ID}' is not an image id (ami- and 8 to 17 hex digits)" >&2
  exit 2
fi
upgrade_host="${UPGRADE_HOST:-0}"
if [[ "${upgrade_host}" != 0 && "${upgrade_host}" != 1 ]]; then
  echo "deploy: UPGRADE_HOST must be 0 or 1, not '${upgrade_host}'" >&2
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
  KEY_NAME:KeyName
  ENABLE_SESSION_MANAGER:EnableSessionManager
  ALARM_EMAIL:AlarmEmail
  ITERATOR_AGE_ALARM_MS:IteratorAgeAlarmMilliseconds
  DATA_FRESHNESS_ALARM_SECONDS:DataFreshnessAlarmSeconds
  SENTIMENT_MODEL_DATA_URL:SentimentModelDataUrl
  SENTIMENT_MODEL_IMAGE:SentimentModelImage
  SENTIMENT_ENDPOINT_MEMORY:SentimentEndpointMemory
  SENTIMENT_ENDPOINT_MAX_CONCURRENCY:SentimentEndpointMaxConcurrency
  NFT_COLLECTIONS:NftCollections
  SPARK_RELEASE_LABEL:SparkReleaseLabel
  SPARK_MAX_VCPU:SparkMaxVcpu
  SPARK_MAX_MEMORY_GB:SparkMaxMemoryGb
  SPARK_IDLE_TIMEOUT_MINUTES:SparkIdleTimeoutMinutes
  SPARK_ARTIFACTS_PREFIX:SparkArtifactsPrefix
)
for pair in "${optional[@]}"; do
  var="${pair%%:*}"
  param="${pair#*:}"
  if [[ -n "${!var:-}" ]]; then
    overrides+=("${param}=${!var}")
  fi
done

# The producer image. CloudFormation would replace the host for any new ImageId, losing the old
# host's running state and overlapping two producers on the X connection, so an update keeps the
# image the stack already runs unless UPGRADE_HOST=1 (or AMI_ID) asks for another one.
ami_parameter="${AMI_SSM_PARAMETER:-/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64}"
stack_exists=0
current_ami=""
if described="$(aws cloudformation describe-stacks --stack-name "${stack}" \
  --query 'Stacks[0].Parameters[].[ParameterKey,ParameterValue,ResolvedValue]' --output text 2>&1)"; then
  stack_exists=1
  # ProducerAmiId's value; a stack from before the pinned image has LatestAmiId, an SSM
  # parameter name, whose ResolvedValue is the image its host runs.
  current_ami="$(awk -F'\t' '$1 == "ProducerAmiId" { print $2 }' <<<"${described}")"
  if [[ -z "${current_ami}" ]]; then
    current_ami="$(awk -F'\t' '$1 == "LatestAmiId" { print $3 }' <<<"${described}")"
  fi
  if [[ ! "${current_ami}" =~ ^ami-[0-9a-f]+$ ]]; then
    current_ami=""
  fi
elif [[ "${described}" != *"does not exist"* ]]; then
  echo "deploy: cannot read stack ${stack}: ${described}" >&2
  exit 1
fi

latest_ami() {
  local ami
  ami="$(aws ssm get-parameter --name "${ami_parameter}" --query Parameter.Value --output text)"
  if [[ ! "${ami}" =~ ^ami-[0-9a-f]+$ ]]; then
    echo "deploy: ${ami_parameter} did not resolve to an image id: '${ami}'" >&2
    exit 1
  fi
  printf '%s\n' "${ami}"
}

if [[ -n "${AMI_ID:-}" ]]; then
  ami="${AMI_ID}"
  why="AMI_ID"
elif ((stack_exists)) && [[ "${upgrade_host}" == 0 ]]; then
  if [[ -z "${current_ami}" ]]; then
    echo "deploy: cannot find the producer image of stack ${stack}; set AMI_ID=ami-... (the host's current image) or UPGRADE_HOST=1 (replaces the host)" >&2
    exit 1
  fi
  ami="${current_ami}"
  why="kept from the stack; UPGRADE_HOST=1 moves to the latest image"
else
  ami="$(latest_ami)"
  why="latest from ${ami_parameter}"
fi
overrides+=("ProducerAmiId=${ami}")
echo "deploy: producer image ${ami} (${why})"

# Changes that replace the host: a new image, another subnet or key pair, and the move from the
# template version without the spool volume (a new block device replaces an instance).
# CloudFormation starts the new host before it terminates the old one: two producers would share
# the X connection. So the old host is stopped first; its shutdown stops the producer, which drains
# its spool to the stream (what is left stays on the kept spool volume).
stack_value() {
  awk -F'\t' -v key="$1" '$1 == key { print $2 }' <<<"${described:-}"
}
replace_reasons=()
if ((stack_exists)); then
  if [[ -n "${current_ami}" && "${ami}" != "${current_ami}" ]]; then
    replace_reasons+=("image ${current_ami} -> ${ami}")
  fi
  if [[ -n "$(stack_value LatestAmiId)" && -z "$(stack_value ProducerAmiId)" ]]; then
    replace_reasons+=("this template version gives the producer its own spool volume")
  fi
  current_subnet="$(stack_value SubnetId)"
  if [[ -n "${current_subnet}" && "${current_subnet}" != "${SUBNET_ID}" ]]; then
    replace_reasons+=("subnet ${current_subnet} -> ${SUBNET_ID}")
  fi
  if [[ -n "${KEY_NAME:-}" && "$(stack_value KeyName)" != "${KEY_NAME}" ]]; then
    replace_reasons+=("key pair")
  fi
fi
stopped_host=""
if ((${#replace_reasons[@]})); then
  reasons="$(printf '%s; ' "${replace_reasons[@]}")"
  echo "deploy: the producer host will be REPLACED (${reasons%; })"
  old_host="$(aws cloudformation describe-stacks --stack-name "${stack}" \
    --query "Stacks[0].Outputs[?OutputKey=='ProducerInstanceId'].OutputValue" --output text)"
  if [[ "${old_host}" =~ ^i-[0-9a-f]+$ ]]; then
    echo "deploy: stopping the old producer host ${old_host} first (it drains its spool on the way down)"
    aws ec2 stop-instances --instance-ids "${old_host}" >/dev/null
    aws ec2 wait instance-stopped --instance-ids "${old_host}"
    stopped_host="${old_host}"
  else
    echo "deploy: warning: no ProducerInstanceId output on stack ${stack}; stop the old host yourself before the new one starts" >&2
  fi
fi

echo "deploy: stack ${stack} from ${template} (parameters: ${overrides[*]%%=*})"
status=0
aws cloudformation deploy \
  --template-file "${template}" \
  --stack-name "${stack}" \
  --capabilities CAPABILITY_NAMED_IAM \
  --no-fail-on-empty-changeset \
  --tags project=musicnft \
  --parameter-overrides "${overrides[@]}" || status=$?
if ((status)) && [[ -n "${stopped_host}" ]]; then
  echo "deploy: the deploy failed and the old producer host ${stopped_host} is stopped; start it again with: aws ec2 start-instances --instance-ids ${stopped_host}" >&2
fi
exit "${status}"
