"""Configuration of the embedded profile, read once from the environment at the composition root.

Business logic receives a `Settings` value and never reads the environment itself, so tests and
other processes can run with their own settings side by side.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

DEFAULT_KEYWORDS: tuple[str, ...] = ("music", "NFT", "ETH", "web3", "OpenSea")
PROFILES = ("local", "cloud")
WAREHOUSES = ("embedded", "bigquery")
# Early enough for the original project's captures (late 2021) to be replayed and backfilled.
DEFAULT_PARTITIONS_START = "2021-11-01-00:00"


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _float(
    env: Mapping[str, str], name: str, default: float, minimum: float, maximum: float
) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _warehouse_catalog(env: Mapping[str, str]) -> str:
    value = env.get("MUSICNFT_WAREHOUSE_CATALOG", "").strip()
    if value and not value.startswith("postgres:"):
        raise ConfigError(
            "MUSICNFT_WAREHOUSE_CATALOG must be empty (SQLite under the warehouse dir) or "
            "postgres:<libpq connection string>"
        )
    return value


def _url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = (env.get(name) or default).strip()
    if not value.startswith(schemes):
        raise ConfigError(f"{name} must start with {' or '.join(schemes)}, got {value!r}")
    return value


def _secret_url(env: Mapping[str, str], name: str) -> str:
    """An optional http(s) URL that is itself a secret (a webhook): errors never echo it."""
    value = (env.get(name) or "").strip()
    if value and not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must start with http:// or https:// (value not shown)")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _endpoint_name(env: Mapping[str, str]) -> str:
    """MUSICNFT_SENTIMENT_ENDPOINT: a SageMaker endpoint name (1-63 letters, digits, '-')."""
    value = (env.get("MUSICNFT_SENTIMENT_ENDPOINT") or "").strip()
    if value and (
        len(value) > 63
        or not all(c.isascii() and (c.isalnum() or c == "-") for c in value)
        or value.startswith("-")
    ):
        raise ConfigError(
            f"MUSICNFT_SENTIMENT_ENDPOINT must be a SageMaker endpoint name, got {value[:80]!r}"
        )
    return value


def _clamped_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer kept within [low, high]; a non-number falls back to the default (the dashboard
    must still start)."""
    raw = env.get(name)
    try:
        value = int(raw) if raw and raw.strip() else default
    except ValueError:
        value = default
    return max(low, min(value, high))


def _window_key(env: Mapping[str, str], name: str, default: str) -> str:
    raw = (env.get(name) or default).strip()
    try:
        datetime.strptime(raw, "%Y-%m-%d-%H:%M")
    except ValueError:
        raise ConfigError(f"{name} must look like 2021-11-01-00:00, got {raw!r}") from None
    return raw


def _log_level(env: Mapping[str, str]) -> str:
    level = (env.get("MUSICNFT_LOG_LEVEL") or "INFO").strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(
            f"MUSICNFT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}"
        )
    return level


def _third_party_log_level(env: Mapping[str, str]) -> str:
    """MUSICNFT_THIRD_PARTY_LOG_LEVEL: empty (= WARNING) unless explicitly set."""
    raw = (env.get("MUSICNFT_THIRD_PARTY_LOG_LEVEL") or "").strip().upper()
    if raw and raw not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(
            f"MUSICNFT_THIRD_PARTY_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {raw!r}"
        )
    return raw


def _delivery_timestamps(env: Mapping[str, str], lake_backend: str) -> str:
    default = "int96" if lake_backend == "s3" else "micros"
    value = (env.get("MUSICNFT_DELIVERY_TIMESTAMPS") or default).strip().lower()
    if value not in ("int96", "micros"):
        raise ConfigError(f"MUSICNFT_DELIVERY_TIMESTAMPS must be int96 or micros, got {value!r}")
    return value


def _emr_application_id(env: Mapping[str, str]) -> str:
    """MUSICNFT_EMR_SERVERLESS_APPLICATION_ID: the stack's SparkApplicationId (letters, digits)."""
    value = (env.get("MUSICNFT_EMR_SERVERLESS_APPLICATION_ID") or "").strip()
    if value and not (len(value) <= 64 and value.isascii() and value.isalnum()):
        raise ConfigError(
            f"MUSICNFT_EMR_SERVERLESS_APPLICATION_ID must be an application id, got {value[:80]!r}"
        )
    return value


def _role_arn(env: Mapping[str, str], name: str) -> str:
    value = (env.get(name) or "").strip()
    if value and not (value.startswith("arn:") and ":iam::" in value and ":role/" in value):
        raise ConfigError(f"{name} must be an IAM role ARN, got {value[:120]!r}")
    return value


def _spark_master(env: Mapping[str, str]) -> str:
    """MUSICNFT_SPARK_MASTER: a Spark master URL (`local[*]`, `local[2]`, `spark://host:7077`)."""
    value = (env.get("MUSICNFT_SPARK_MASTER") or "").strip() or "local[*]"
    known = value.startswith(("local", "spark://", "yarn", "k8s://"))
    if not known or any(c.isspace() for c in value):
        raise ConfigError(f"MUSICNFT_SPARK_MASTER must be a Spark master URL, got {value[:80]!r}")
    return value


def parse_keywords(raw: str) -> tuple[str, ...]:
    """Comma-separated keywords; blanks dropped, duplicates (case-insensitive) removed."""
    seen: set[str] = set()
    out: list[str] = []
    for part in raw.split(","):
        word = part.strip()
        if word and word.lower() not in seen:
            seen.add(word.lower())
            out.append(word)
    if not out:
        raise ConfigError("MUSICNFT_KEYWORDS must name at least one keyword")
    return tuple(out)


def parse_collections(raw: str) -> tuple[str, ...]:
    """Comma-separated marketplace collection slugs (lower-case letters, digits, '-', '_');
    blanks and repeats dropped. Raises ConfigError naming a slug that cannot be one."""
    out: list[str] = []
    for part in raw.split(","):
        slug = part.strip().lower()
        if not slug:
            continue
        if len(slug) > 200 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in slug):
            raise ConfigError(
                f"MUSICNFT_NFT_COLLECTIONS: {slug[:60]!r} is not a collection slug "
                "(letters, digits, '-', '_')"
            )
        if slug not in out:
            out.append(slug)
    return tuple(out)


@dataclass(frozen=True)
class Settings:
    """Everything the embedded hot path needs to know; see the README's configuration table."""

    data_dir: Path = field(default_factory=lambda: Path("data"))
    profile: str = "local"
    keywords: tuple[str, ...] = DEFAULT_KEYWORDS
    stream_name: str = "musicnft-posts"
    stream_shards: int = 4
    max_record_bytes: int = 1_048_576
    producer_batch_records: int = 500
    producer_linger_seconds: float = 0.2
    delivery_buffer_bytes: int = 4 * 1024 * 1024
    delivery_buffer_seconds: float = 30.0
    # Under load a batch takes what the stream holds (one posts_hot transaction per batch: 100 a
    # batch held the pipeline to a third of its speed); when quiet the window below bounds the
    # wait. Lambda allows up to 10,000; 5,000 ran as fast in `python -m benchmarks.end_to_end`
    # (0.38-0.43x of VADER against 0.37-0.54x, 3 runs each) and kept the consumer's peak RSS at
    # 286-289 MB, where 10,000 reached 301-332 MB (issue #14 item 9: 300 MB).
    consumer_batch_size: int = 5_000
    # `musicnft run` stops a draining stage whose checkpoint has not moved this long while records
    # wait for it (hung, not slow: a batch commits in seconds), and starts it again with --once.
    stage_stall_seconds: float = 300.0
    consumer_batch_window_seconds: float = 0.25
    consumer_max_retries: int = 2
    stream_retention_hours: float = 24.0
    stream_backend: str = "local"  # local | kinesis
    lake_backend: str = "local"  # local | s3
    s3_bucket: str = ""
    aws_endpoint_url: str | None = None
    # The consumer Lambda's on-failure destination (SQS), which `musicnft redrive` replays.
    redrive_queue_url: str = ""
    spool_max_seconds: float = 30.0
    x_api_base: str = "https://api.x.com"
    x_price_per_post: float = 0.005
    jetstream_url: str = "wss://jetstream2.us-east.bsky.network/subscribe"
    # NFT market sales (issue 17): OpenSea's API, the collections followed (slugs), the pace of
    # requests (OpenSea allows about one a second per key) and of polls. The key comes from
    # OPENSEA_API_KEY; kept out of repr so a logged Settings never prints it.
    opensea_api_base: str = "https://api.opensea.io"
    opensea_api_key: str = field(default="", repr=False)
    nft_collections: tuple[str, ...] = ()
    opensea_request_interval: float = 1.0
    opensea_max_attempts: int = 8  # tries per request (429, 5xx, network) before it fails
    sales_poll_seconds: float = 60.0
    warehouse_backend: str = "embedded"  # embedded | bigquery
    bigquery_project: str = ""
    bigquery_dataset: str = "musicnft"
    bigquery_location: str = "US"
    bigquery_endpoint: str | None = None  # a local emulator; None = Google's API
    # A base64-encoded service-account key (dagster-gcp's convention). Kept out of repr so a
    # logged Settings never prints it; without it the client uses Application Default Credentials.
    bigquery_credentials: str = field(default="", repr=False)
    bigquery_credentials_secret_arn: str = ""
    bigquery_insert_retries: int = 3
    # The first 15-minute window Dagster partitions cover (KEY_FORMAT, UTC).
    partitions_start: str = DEFAULT_PARTITIONS_START
    dashboard_refresh_seconds: int = 60
    log_level: str = "INFO"
    # The X bearer token from the environment (the EC2 unit fills it from Secrets Manager);
    # kept out of repr so a logged Settings never prints it.
    x_bearer_token: str = field(default="", repr=False)
    dagster_home: Path | None = None
    # `musicnft spark score`'s Spark master (issue 16): this machine's cores unless set.
    spark_master: str = "local[*]"
    # Embedded warehouse (DuckLake): how far back time travel reaches; older snapshots and the
    # files only they used are removed by the maintenance job.
    warehouse_retention_hours: float = 24.0
    warehouse_maintenance_cron: str = "23 * * * *"
    # Third-party loggers (botocore, urllib3, google, ...) stay at WARNING or above unless this
    # explicitly lowers them (they can log request and response bodies, secrets included).
    third_party_log_level: str = ""
    # "" = `<warehouse_dir>/catalog.sqlite`; "postgres:<libpq string>" = a PostgreSQL catalog
    # shared by several machines (docs/warehouse.md); data in warehouse_data_path if set.
    warehouse_catalog: str = field(default="", repr=False)
    warehouse_data_path: str = ""
    # Delivery writes timestamps as Firehose's format conversion does (INT96) where it stands in
    # for Firehose in front of S3 (the cloud rehearsal), so every lake reader is proven on them.
    delivery_int96_timestamps: bool = False
    # Issue 15: the trained sentiment model. `promoted` scores in process from the lake's promoted
    # artifact, `off` leaves the model columns null; a SageMaker endpoint name makes the consumer
    # call it instead (with this timeout per call, VADER-only rows when it fails).
    sentiment_model: str = "promoted"
    sentiment_endpoint: str = ""
    sentiment_endpoint_timeout: float = 2.0
    sagemaker_endpoint_url: str | None = None  # the SageMaker runtime API's URL (a local fake)
    sagemaker_bind_port: int | None = None  # SAGEMAKER_BIND_TO_PORT: the serving container's port
    # Issue 18: the entities file (None = the one shipped in musicnft/hotpath/entities.json) and
    # the spike alerts' Slack-compatible webhook (a secret: kept out of repr, never logged).
    entities_file: Path | None = None
    alert_webhook_url: str = field(default="", repr=False)
    # Engagement re-reads (issue 18): Bluesky's public AppView (free), and a daily cap in USD on
    # X's paid post reads (0 = X posts are not re-read).
    bluesky_appview_url: str = "https://public.api.bsky.app"
    x_reread_budget_usd: float = 0.0
    # Spark scoring (issue 16): where the `scored_posts` asset runs the job, `local` (dagster-pyspark
    # on this machine) or `emr-serverless` (the stack's application, through Dagster Pipes), and
    # for EMR Serverless the stack's outputs and where `make spark-package`'s dist/spark/ is.
    spark_backend: str = "local"
    emr_serverless_application_id: str = ""
    emr_serverless_job_role_arn: str = ""
    emr_serverless_log_group: str = "/aws/emr-serverless/musicnft"
    spark_artifacts_uri: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        profile = env.get("MUSICNFT_PROFILE", "local").strip() or "local"
        if profile not in PROFILES:
            raise ConfigError(
                f"MUSICNFT_PROFILE must be one of {', '.join(PROFILES)}, got {profile!r}"
            )
        stream_name = env.get("MUSICNFT_STREAM_NAME", "musicnft-posts").strip()
        if not stream_name or not all(c.isalnum() or c in "-_." for c in stream_name):
            raise ConfigError(
                f"MUSICNFT_STREAM_NAME must be letters, digits, '-', '_' or '.', got {stream_name!r}"
            )
        cloud = profile == "cloud"
        stream_backend = env.get("MUSICNFT_STREAM_BACKEND", "kinesis" if cloud else "local")
        lake_backend = env.get("MUSICNFT_LAKE_BACKEND", "s3" if cloud else "local")
        if stream_backend not in ("local", "kinesis"):
            raise ConfigError(
                f"MUSICNFT_STREAM_BACKEND must be local or kinesis, got {stream_backend!r}"
            )
        if lake_backend not in ("local", "s3"):
            raise ConfigError(f"MUSICNFT_LAKE_BACKEND must be local or s3, got {lake_backend!r}")
        bucket = env.get("MUSICNFT_S3_BUCKET", "").strip()
        if lake_backend == "s3" and not bucket:
            raise ConfigError("MUSICNFT_S3_BUCKET is required when the lake is on S3")
        warehouse = env.get("MUSICNFT_WAREHOUSE", "bigquery" if cloud else "embedded").strip()
        if warehouse not in WAREHOUSES:
            raise ConfigError(
                f"MUSICNFT_WAREHOUSE must be one of {', '.join(WAREHOUSES)}, got {warehouse!r}"
            )
        # Checked when a BigQuery warehouse is opened (wiring), not here: the producer runs in the
        # cloud profile too and never needs one.
        project = env.get("MUSICNFT_BIGQUERY_PROJECT", "").strip()
        dataset = env.get("MUSICNFT_BIGQUERY_DATASET", "musicnft").strip() or "musicnft"
        if not all(c.isalnum() or c == "_" for c in dataset) or len(dataset) > 1024:
            raise ConfigError(
                f"MUSICNFT_BIGQUERY_DATASET must be letters, digits or '_', got {dataset!r}"
            )
        endpoint = env.get("MUSICNFT_BIGQUERY_ENDPOINT", "").strip() or None
        if endpoint is not None:
            endpoint = _url(env, "MUSICNFT_BIGQUERY_ENDPOINT", "", ("http://", "https://"))
        return cls(
            warehouse_backend=warehouse,
            bigquery_project=project,
            bigquery_dataset=dataset,
            bigquery_location=env.get("MUSICNFT_BIGQUERY_LOCATION", "US").strip() or "US",
            bigquery_endpoint=endpoint,
            bigquery_credentials=env.get("MUSICNFT_BIGQUERY_CREDENTIALS", "").strip(),
            bigquery_credentials_secret_arn=env.get(
                "MUSICNFT_BIGQUERY_CREDENTIALS_SECRET_ARN", ""
            ).strip(),
            bigquery_insert_retries=_int(env, "MUSICNFT_BIGQUERY_INSERT_RETRIES", 3, 0, 20),
            stream_backend=stream_backend,
            lake_backend=lake_backend,
            s3_bucket=bucket,
            aws_endpoint_url=env.get("MUSICNFT_AWS_ENDPOINT_URL") or None,
            redrive_queue_url=env.get("MUSICNFT_REDRIVE_QUEUE_URL", "").strip(),
            spool_max_seconds=_float(env, "MUSICNFT_SPOOL_AFTER_SECONDS", 30.0, 0, 3600),
            x_api_base=_url(
                env, "MUSICNFT_X_API_BASE", "https://api.x.com", ("http://", "https://")
            ),
            x_price_per_post=_float(env, "MUSICNFT_X_PRICE_PER_POST", 0.005, 0, 10),
            jetstream_url=_url(
                env,
                "MUSICNFT_JETSTREAM_URL",
                "wss://jetstream2.us-east.bsky.network/subscribe",
                ("ws://", "wss://"),
            ),
            opensea_api_base=_url(
                env, "MUSICNFT_OPENSEA_API_BASE", "https://api.opensea.io", ("http://", "https://")
            ),
            opensea_api_key=(env.get("OPENSEA_API_KEY") or "").strip(),
            nft_collections=parse_collections(env.get("MUSICNFT_NFT_COLLECTIONS", "")),
            opensea_request_interval=_float(env, "MUSICNFT_OPENSEA_REQUEST_INTERVAL", 1.0, 0, 60),
            opensea_max_attempts=_int(env, "MUSICNFT_OPENSEA_MAX_ATTEMPTS", 8, 1, 20),
            sales_poll_seconds=_float(env, "MUSICNFT_SALES_POLL_SECONDS", 60.0, 0.1, 3600),
            data_dir=Path(env.get("MUSICNFT_DATA_DIR", "data") or "data"),
            profile=profile,
            keywords=parse_keywords(env.get("MUSICNFT_KEYWORDS", ",".join(DEFAULT_KEYWORDS))),
            stream_name=stream_name,
            stream_shards=_int(env, "MUSICNFT_STREAM_SHARDS", 4, 1, 64),
            max_record_bytes=_int(env, "MUSICNFT_MAX_RECORD_BYTES", 1_048_576, 1024, 1_048_576),
            producer_batch_records=_int(env, "MUSICNFT_PRODUCER_BATCH_RECORDS", 500, 1, 500),
            producer_linger_seconds=_float(env, "MUSICNFT_PRODUCER_LINGER_SECONDS", 0.2, 0, 60),
            delivery_buffer_bytes=_int(
                env, "MUSICNFT_DELIVERY_BUFFER_BYTES", 4 * 1024 * 1024, 1024, 128 * 1024 * 1024
            ),
            delivery_buffer_seconds=_float(env, "MUSICNFT_DELIVERY_BUFFER_SECONDS", 30.0, 0, 900),
            consumer_batch_size=_int(env, "MUSICNFT_CONSUMER_BATCH_SIZE", 5_000, 1, 10_000),
            stage_stall_seconds=_float(env, "MUSICNFT_STAGE_STALL_SECONDS", 300.0, 5, 86_400),
            consumer_batch_window_seconds=_float(
                env, "MUSICNFT_CONSUMER_BATCH_WINDOW_SECONDS", 0.25, 0, 300
            ),
            consumer_max_retries=_int(env, "MUSICNFT_CONSUMER_MAX_RETRIES", 2, 0, 10_000),
            stream_retention_hours=_float(env, "MUSICNFT_STREAM_RETENTION_HOURS", 24.0, 1, 8760),
            partitions_start=_window_key(
                env, "MUSICNFT_PARTITIONS_START", DEFAULT_PARTITIONS_START
            ),
            dashboard_refresh_seconds=_clamped_int(
                env, "MUSICNFT_DASHBOARD_REFRESH_SECONDS", 60, 5, 900
            ),
            log_level=_log_level(env),
            x_bearer_token=(
                env.get("X_BEARER_TOKEN") or env.get("MUSICNFT_X_BEARER_TOKEN") or ""
            ).strip(),
            dagster_home=Path(env["DAGSTER_HOME"]) if env.get("DAGSTER_HOME") else None,
            spark_master=_spark_master(env),
            warehouse_retention_hours=_float(
                env, "MUSICNFT_WAREHOUSE_RETENTION_HOURS", 24.0, 0, 24 * 365
            ),
            warehouse_maintenance_cron=(
                env.get("MUSICNFT_WAREHOUSE_MAINTENANCE_CRON", "").strip() or "23 * * * *"
            ),
            third_party_log_level=_third_party_log_level(env),
            warehouse_catalog=_warehouse_catalog(env),
            warehouse_data_path=env.get("MUSICNFT_WAREHOUSE_DATA_PATH", "").strip(),
            delivery_int96_timestamps=_delivery_timestamps(env, lake_backend) == "int96",
            sentiment_model=_choice(
                env, "MUSICNFT_SENTIMENT_MODEL", "promoted", ("promoted", "off")
            ),
            sentiment_endpoint=_endpoint_name(env),
            sentiment_endpoint_timeout=_float(
                env, "MUSICNFT_SENTIMENT_ENDPOINT_TIMEOUT_SECONDS", 2.0, 0.05, 60
            ),
            sagemaker_endpoint_url=(
                _url(env, "MUSICNFT_SAGEMAKER_ENDPOINT_URL", "", ("http://", "https://"))
                if (env.get("MUSICNFT_SAGEMAKER_ENDPOINT_URL") or "").strip()
                else None
            ),
            sagemaker_bind_port=(
                _int(env, "SAGEMAKER_BIND_TO_PORT", 8080, 1, 65535)
                if (env.get("SAGEMAKER_BIND_TO_PORT") or "").strip()
                else None
            ),
            entities_file=Path(env["MUSICNFT_ENTITIES_FILE"].strip())
            if (env.get("MUSICNFT_ENTITIES_FILE") or "").strip()
            else None,
            alert_webhook_url=_secret_url(env, "MUSICNFT_ALERT_WEBHOOK_URL"),
            bluesky_appview_url=_url(
                env,
                "MUSICNFT_BLUESKY_APPVIEW_URL",
                "https://public.api.bsky.app",
                ("http://", "https://"),
            ),
            x_reread_budget_usd=_float(env, "MUSICNFT_X_REREAD_BUDGET_USD", 0.0, 0, 100_000),
            spark_backend=_choice(
                env,
                "MUSICNFT_SPARK_BACKEND",
                "emr-serverless" if cloud else "local",
                ("local", "emr-serverless"),
            ),
            emr_serverless_application_id=_emr_application_id(env),
            emr_serverless_job_role_arn=_role_arn(env, "MUSICNFT_EMR_SERVERLESS_JOB_ROLE_ARN"),
            emr_serverless_log_group=(
                env.get("MUSICNFT_EMR_SERVERLESS_LOG_GROUP", "").strip()
                or "/aws/emr-serverless/musicnft"
            ),
            spark_artifacts_uri=(
                _url(env, "MUSICNFT_SPARK_ARTIFACTS_URI", "", ("s3://",)).rstrip("/") + "/"
                if (env.get("MUSICNFT_SPARK_ARTIFACTS_URI") or "").strip()
                else ""
            ),
        )

    def with_data_dir(self, data_dir: Path) -> Settings:
        return replace(self, data_dir=data_dir)

    @property
    def stream_path(self) -> Path:
        return self.data_dir / "stream" / f"{self.stream_name}.sqlite"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def warehouse_dir(self) -> Path:
        return self.data_dir / "warehouse"

    @property
    def spool_path(self) -> Path:
        return self.data_dir / "spool" / f"{self.stream_name}.sqlite"

    @property
    def checkpoint_path(self) -> Path:
        """Reader checkpoints for a stream that keeps none itself (Kinesis)."""
        return self.data_dir / "checkpoints" / f"{self.stream_name}.sqlite"

    @property
    def dead_letter_dir(self) -> Path:
        return self.data_dir / "dead_letter"
