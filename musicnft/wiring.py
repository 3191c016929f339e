"""The composition root: settings → adapters. The one place a backend is chosen.

Every process (producer, delivery, consumer, Lambda, Dagster, dashboard, CLI) opens its stream,
sink, lake and warehouse here and hands them on as ports (`musicnft.ports`); business logic never
asks which profile it runs in. Adapters are imported inside the functions, so a process loads only
the ones it uses (the Lambda bundle carries just the BigQuery adapter).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from musicnft.contract.keywords import KeywordMatcher
from musicnft.hotpath.deadletter import DeadLetter
from musicnft.ports import Lake, StreamReader, StreamSink, Warehouse
from musicnft.settings import ConfigError, Settings

if TYPE_CHECKING:
    from musicnft.adapters.local_stream import LocalStream
    from musicnft.hotpath.model_scoring import Scoring


def open_stream(settings: Settings) -> LocalStream:
    from musicnft.adapters.local_stream import LocalStream

    return LocalStream(settings.stream_path, shards=settings.stream_shards)


def open_stream_readers(settings: Settings) -> list[StreamReader]:
    """The stream as its readers see it: the local log, or one reader per Kinesis shard."""
    if settings.stream_backend == "kinesis":
        from musicnft.adapters.kinesis_stream import (
            CheckpointStore,
            KinesisShardReader,
            kinesis_client,
            list_shards,
        )

        client = kinesis_client(settings.aws_endpoint_url)
        store = CheckpointStore(settings.checkpoint_path)
        return [
            KinesisShardReader(client, settings.stream_name, shard, store)
            for shard in list_shards(client, settings.stream_name)
        ]
    return [open_stream(settings)]


def open_sink(settings: Settings) -> StreamSink:
    """The producer's sink: the local stream, or Kinesis with its on-disk spool."""
    if settings.stream_backend == "kinesis":
        from musicnft.adapters.kinesis_sink import KinesisSink
        from musicnft.adapters.kinesis_stream import kinesis_client
        from musicnft.adapters.spool import Spool

        return KinesisSink(
            kinesis_client(settings.aws_endpoint_url),
            settings.stream_name,
            Spool(settings.spool_path),
            give_up_after=settings.spool_max_seconds,
        )
    from musicnft.adapters.local_stream import LocalStreamSink

    return LocalStreamSink(open_stream(settings))


def open_lake(settings: Settings) -> Lake:
    if settings.lake_backend == "s3":
        from musicnft.adapters.s3_lake import S3Lake

        return S3Lake(settings.s3_bucket, endpoint_url=settings.aws_endpoint_url)
    from musicnft.adapters.local_lake import LocalLake

    return LocalLake(settings.lake_dir)


def open_warehouse(settings: Settings, read_only: bool = False) -> Warehouse:
    """The profile's warehouse; `read_only` for readers (status, sql, the dashboard): the embedded
    one then attaches its catalog read-only and refuses every write."""
    # Imported here: the Lambda bundle imports this module and must not need DuckDB/pyarrow
    # until a warehouse is actually opened.
    if settings.warehouse_backend == "bigquery":
        from musicnft.adapters.bigquery.warehouse import BigQueryWarehouse

        return BigQueryWarehouse(
            bigquery_client_for(settings),
            settings.bigquery_dataset,
            insert_retries=settings.bigquery_insert_retries,
        )
    from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse

    return EmbeddedWarehouse(
        settings.warehouse_dir,
        read_only=read_only,
        catalog=settings.warehouse_catalog or None,
        data_path=settings.warehouse_data_path or None,
        s3_endpoint_url=settings.aws_endpoint_url,
    )


def describe_warehouse(settings: Settings) -> str:
    """Where the warehouse is, for logs (never credentials)."""
    if settings.warehouse_backend == "bigquery":
        where = settings.bigquery_endpoint or "Google"
        return f"BigQuery {settings.bigquery_project}.{settings.bigquery_dataset} ({where})"
    return str(settings.warehouse_dir)


def bigquery_credentials(settings: Settings) -> str:
    """The service-account key: given directly, or read from AWS Secrets Manager (the deployed
    consumer: the key never sits in the Lambda's environment or its zip)."""
    if settings.bigquery_credentials:
        return settings.bigquery_credentials
    if settings.bigquery_credentials_secret_arn:
        import boto3

        secrets = boto3.client("secretsmanager", endpoint_url=settings.aws_endpoint_url)
        secret = secrets.get_secret_value(SecretId=settings.bigquery_credentials_secret_arn)
        return str(secret["SecretString"])
    return ""


def bigquery_client_for(settings: Settings) -> Any:
    from musicnft.adapters.bigquery.warehouse import bigquery_client

    if not settings.bigquery_project:
        raise ConfigError(
            "MUSICNFT_BIGQUERY_PROJECT is required when the warehouse is BigQuery "
            "(or set MUSICNFT_WAREHOUSE=embedded)"
        )

    return bigquery_client(
        settings.bigquery_project,
        settings.bigquery_location,
        settings.bigquery_endpoint,
        bigquery_credentials(settings),
    )


def dead_letter(settings: Settings, stage: str) -> DeadLetter:
    return DeadLetter(settings.dead_letter_dir, stage)


def keyword_matcher(settings: Settings) -> KeywordMatcher:
    return KeywordMatcher(settings.keywords)


def sagemaker_invoker(settings: Settings) -> Callable[[bytes], bytes]:
    """One call to the SageMaker endpoint `settings.sentiment_endpoint`: a JSON body in, the
    answer's bytes out. One attempt per call (no SDK retries) within the settings' timeout, so a
    slow endpoint costs a Lambda batch at most that long before its rows fall back to VADER."""
    import boto3
    from botocore.config import Config

    timeout = settings.sentiment_endpoint_timeout
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=settings.sagemaker_endpoint_url,
        config=Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
        ),
    )
    name = settings.sentiment_endpoint

    def invoke(body: bytes) -> bytes:
        answer = client.invoke_endpoint(
            EndpointName=name, ContentType="application/json", Accept="application/json", Body=body
        )
        return bytes(answer["Body"].read())

    return invoke


def model_scoring(settings: Settings, lake: Lake | None = None) -> Scoring | None:
    """How this process fills the model columns: the SageMaker endpoint when one is named, else
    the lake's promoted model in process, or nothing (`MUSICNFT_SENTIMENT_MODEL=off`)."""
    from musicnft.hotpath.model_scoring import EndpointScoring, PromotedScoring

    if settings.sentiment_endpoint:
        return EndpointScoring(sagemaker_invoker(settings), settings.sentiment_endpoint)
    if settings.sentiment_model == "off":
        return None
    return PromotedScoring(lake if lake is not None else open_lake(settings))


def install_model_scoring(settings: Settings) -> None:
    """Install `model_scoring(settings)` for this process's consumer (`enrich_rows`)."""
    from musicnft.hotpath.model_scoring import install

    try:
        scoring = model_scoring(settings)
    except Exception as exc:  # the model is optional: posts are scored by VADER regardless
        logging.getLogger("musicnft.model").error(
            "sentiment model scoring unavailable (%s: %s); model columns stay null",
            type(exc).__name__,
            str(exc)[:200],
        )
        scoring = None
    install(scoring)
