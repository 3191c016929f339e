"""Cost and scale on paper: the monthly bill per service and the capacity needed, for a volume of
posts per day. Pure arithmetic over `musicnft.app.prices` and the assumptions below; see
docs/cost.md for the reasoning behind each line.

Sizes were measured on the shipped sample (`musicnft/devtools/data/sample.jsonl.gz`, 20,000 lines,
19,705 posts after the normalizer) on 2026-11-30:
- the stream record the producer writes (`json.dumps(to_json_record(post))`): 670 bytes on
  average, largest 922, plus the 21-byte partition key Kinesis counts;
- the `posts_hot` row (enriched, as JSON): 828 bytes on average, largest 1,084;
- Parquet (snappy, INT96 timestamps, as delivery writes it): about 8.7 KB of fixed cost per file
  plus 116 bytes per post (files of 1,000 posts; 87 bytes per post in one 19,705-post file);
- burstiness: the busiest minute holds 13.4× the average minute's posts (5.4× for the busiest
  hour).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from musicnft.app.prices import PRICES, price

GB = 1024**3
TIB = 1024**4
MIB = 1024**2
KIB = 1024
HOURS_PER_MONTH = 730.0  # AWS's monthly convention
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
SECONDS_PER_DAY = 86_400.0

# "Today's volume": the original dashboard's ~256 posts an hour (the seed; the sample's default).
TODAY_POSTS_PER_DAY = 256 * 24
SCALES = (1, 10, 100, 1000)

# Kinesis per-shard write limits (REFERENCE.md, AWS)
SHARD_WRITE_BYTES_PER_SECOND = 1_000_000
SHARD_WRITE_RECORDS_PER_SECOND = 1_000
X_MONTHLY_READ_CAP = 3_000_000
X_STREAM_MAX_POSTS_PER_SECOND = 250


@dataclass(frozen=True)
class Assumptions:
    """Every input of the model besides the prices. Defaults: measured on the sample, read from
    infra/template.yaml and the settings, or stated as an assumption (docs/cost.md)."""

    # sizes (measured on the sample)
    record_bytes: float = 670.0
    partition_key_bytes: float = 21.0
    row_bytes: float = 828.0
    parquet_bytes_per_post: float = 116.0
    parquet_file_overhead_bytes: float = 8_700.0
    peak_factor: float = 13.4  # busiest minute / average minute
    # Kinesis (template: ON_DEMAND; readers: Firehose and the Lambda mapping, shared throughput)
    stream_readers: int = 2
    on_demand_min_shards: int = 4  # an on-demand stream starts at 4 MB/s of write capacity
    # Lambda (template: BatchSize 100, ParallelizationFactor 1, MemorySize 512, x86_64)
    lambda_batch_size: int = 100  # the template's BatchSize (the local consumer takes more)
    lambda_memory_mb: int = 512
    parallelization_factor: int = 1
    lambda_base_seconds: float = 0.3  # assumed: one insertAll round trip to BigQuery
    lambda_seconds_per_record: float = 0.002  # assumed: enrichment on ~0.3 vCPU
    # Firehose (template: 300 s / 64 MiB buffering)
    firehose_buffer_seconds: float = 300.0
    firehose_buffer_bytes: float = 64 * MIB
    # BigQuery
    bq_table_copies: int = 2  # each post is stored in posts_hot and posts
    dashboard_queries_per_day: float = 96 * 8  # 8 panels refreshed every 15 minutes
    window_tables: int = 6  # tables one 15-minute window run writes (a MERGE each)
    bq_min_query_bytes: float = 10 * MIB
    # producer host (template default t3.small, 20 + 4 GB gp3)
    ebs_gb: float = 24.0
    producer_posts_per_second: float = 5_750.0  # issue #14: the producer on 2 cores
    producer_cpu_share: float = 0.2  # t3.small's baseline: 20% of each vCPU


@dataclass(frozen=True)
class Line:
    service: str
    item: str
    quantity: float
    unit: str
    price_key: str
    usd: float


@dataclass(frozen=True)
class Scale:
    multiple: float
    posts_per_day: float
    avg_posts_per_second: float
    peak_posts_per_second: float
    peak_write_bytes_per_second: float
    shards_needed: int  # shard-equivalents for the peak write, on-demand or provisioned
    on_demand_shards: int  # what an on-demand stream has at least
    lambda_concurrency: int  # shards × parallelization factor
    lambda_records_per_second_per_shard: float  # what one concurrent batch keeps up with
    parallelization_factor_needed: int
    producer_utilization: float  # peak posts/s over what one host sustains
    producer_keeps_up: bool
    x_reads_per_month: float
    x_within_cap: bool
    x_within_stream_rate: bool


@dataclass(frozen=True)
class CostEstimate:
    posts_per_day: float
    lines: tuple[Line, ...]
    assumptions: Assumptions

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines)

    def by_service(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in self.lines:
            out[line.service] = out.get(line.service, 0.0) + line.usd
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "posts_per_day": self.posts_per_day,
            "total_usd_per_month": self.total,
            "services": self.by_service(),
            "lines": [asdict(line) for line in self.lines],
            "assumptions": asdict(self.assumptions),
        }


def firehose_billed_bytes(record_bytes: float) -> float:
    """Firehose bills each record in 5 KB increments (a 3 KB record as 5 KB, 12 KB as 15 KB)."""
    return math.ceil(record_bytes / (5 * KIB)) * 5 * KIB if record_bytes > 0 else 0.0


def kinesis_billed_bytes(record_bytes: float) -> float:
    """Kinesis on-demand bills each written record rounded up to the nearest 1 KB."""
    return math.ceil(record_bytes / KIB) * KIB if record_bytes > 0 else 0.0


def _line(service: str, item: str, quantity: float, unit: str, key: str) -> Line:
    return Line(service, item, quantity, unit, key, quantity * price(key))


def lambda_invocations_per_second(posts_per_second: float, shards: int, a: Assumptions) -> float:
    """Lambda polls each shard about once a second and, with no batching window, invokes with what
    arrived: at low volume one invocation per shard-second that has records (at most one per
    record), at high volume one per full batch."""
    if posts_per_second <= 0:
        return 0.0
    per_shard = posts_per_second / shards
    return shards * max(per_shard / a.lambda_batch_size, min(per_shard, 1.0))


def firehose_files_per_month(posts_per_day: float, a: Assumptions) -> float:
    """One object per buffer flush: every `firehose_buffer_seconds` if anything arrived (at most
    one per post), more often when the buffer fills first."""
    if posts_per_day <= 0:
        return 0.0
    intervals_per_day = SECONDS_PER_DAY / a.firehose_buffer_seconds
    posts_per_interval = posts_per_day / intervals_per_day
    by_time = min(posts_per_interval, 1.0)
    by_size = posts_per_interval * a.record_bytes / a.firehose_buffer_bytes
    return max(by_time, by_size) * intervals_per_day * DAYS_PER_MONTH


def monthly_cost(posts_per_day: float, assumptions: Assumptions | None = None) -> CostEstimate:
    """The monthly list-price bill for `posts_per_day` posts (every post accepted once, no
    duplicates), without free tiers."""
    if posts_per_day < 0 or math.isnan(posts_per_day) or math.isinf(posts_per_day):
        raise ValueError(f"posts_per_day must be a finite number >= 0, got {posts_per_day}")
    a = assumptions or Assumptions()
    posts = posts_per_day * DAYS_PER_MONTH
    kinesis_record = a.record_bytes + a.partition_key_bytes
    pps = posts_per_day / SECONDS_PER_DAY
    shards = scale_for(posts_per_day, a).on_demand_shards

    invocations = lambda_invocations_per_second(pps, shards, a) * SECONDS_PER_DAY * DAYS_PER_MONTH
    lambda_seconds = invocations * a.lambda_base_seconds + posts * a.lambda_seconds_per_record
    files = firehose_files_per_month(posts_per_day, a)
    parquet_month_gb = (
        files * a.parquet_file_overhead_bytes + posts * a.parquet_bytes_per_post
    ) / GB
    bq_row_gb = posts * max(a.row_bytes, KIB) / GB
    bq_month_gb = posts * a.row_bytes * a.bq_table_copies / GB
    posts_per_window = posts_per_day / 96
    window_query_bytes = max(a.bq_min_query_bytes, posts_per_window * a.row_bytes)
    query_bytes = DAYS_PER_MONTH * (
        a.dashboard_queries_per_day * a.bq_min_query_bytes
        + 96 * a.window_tables * window_query_bytes
    )

    lines = (
        _line("Kinesis", "stream-hours", HOURS_PER_MONTH, "stream-hour", "kinesis_stream_hour"),
        _line(
            "Kinesis",
            "data written (1 KB per record)",
            posts * kinesis_billed_bytes(kinesis_record) / GB,
            "GB",
            "kinesis_ingest_gb",
        ),
        _line(
            "Kinesis",
            f"data read ({a.stream_readers} readers)",
            posts * a.record_bytes * a.stream_readers / GB,
            "GB",
            "kinesis_retrieval_gb",
        ),
        _line(
            "Firehose",
            "ingested (5 KB per record)",
            posts * firehose_billed_bytes(a.record_bytes) / GB,
            "GB",
            "firehose_ingest_gb",
        ),
        _line(
            "Firehose",
            "Parquet conversion (5 KB per record)",
            posts * firehose_billed_bytes(a.record_bytes) / GB,
            "GB",
            "firehose_conversion_gb",
        ),
        _line("Lambda", "invocations", invocations, "request", "lambda_request"),
        _line(
            "Lambda",
            f"duration at {a.lambda_memory_mb} MB",
            lambda_seconds * a.lambda_memory_mb / 1024,
            "GB-second",
            "lambda_gb_second",
        ),
        _line(
            "S3",
            "lake storage (first month's average)",
            parquet_month_gb / 2,
            "GB-month",
            "s3_standard_gb_month",
        ),
        _line("S3", "PUTs (one per Firehose file)", files, "request", "s3_put_request"),
        _line(
            "BigQuery",
            "streaming inserts (1 KB minimum per row)",
            bq_row_gb,
            "GB",
            "bq_streaming_insert_gb",
        ),
        _line(
            "BigQuery",
            "storage (first month's average)",
            bq_month_gb / 2,
            "GB-month",
            "bq_active_logical_storage_gb_month",
        ),
        _line("BigQuery", "queries (dashboard, windows)", query_bytes / TIB, "TiB", "bq_query_tib"),
        _line("X API", "post reads", posts, "post", "x_api_post_read"),
        _line("EC2 (producer)", "t3.small", HOURS_PER_MONTH, "instance-hour", "ec2_t3_small_hour"),
        _line("EC2 (producer)", "EBS gp3", a.ebs_gb, "GB-month", "ebs_gp3_gb_month"),
    )
    return CostEstimate(posts_per_day, lines, a)


def scale_for(
    posts_per_day: float, assumptions: Assumptions | None = None, multiple: float = 1.0
) -> Scale:
    """Capacity at `posts_per_day`: shard-equivalents for the peak write (1 MB/s or 1,000
    records/s each), Lambda concurrency (one batch per shard at a time × the parallelization
    factor), whether one producer host and the X stream keep up."""
    a = assumptions or Assumptions()
    avg = posts_per_day / SECONDS_PER_DAY
    peak = avg * a.peak_factor
    record = a.record_bytes + a.partition_key_bytes
    peak_bytes = peak * record
    needed = max(
        1,
        math.ceil(peak_bytes / SHARD_WRITE_BYTES_PER_SECOND),
        math.ceil(peak / SHARD_WRITE_RECORDS_PER_SECOND),
    )
    on_demand = max(a.on_demand_min_shards, needed)
    batch_seconds = a.lambda_base_seconds + a.lambda_batch_size * a.lambda_seconds_per_record
    per_shard_capacity = a.lambda_batch_size / batch_seconds
    factor_needed = max(1, math.ceil(peak / on_demand / per_shard_capacity))
    producer_capacity = a.producer_posts_per_second * a.producer_cpu_share
    utilization = peak / producer_capacity if producer_capacity > 0 else math.inf
    x_reads = posts_per_day * DAYS_PER_MONTH
    return Scale(
        multiple=multiple,
        posts_per_day=posts_per_day,
        avg_posts_per_second=avg,
        peak_posts_per_second=peak,
        peak_write_bytes_per_second=peak_bytes,
        shards_needed=needed,
        on_demand_shards=on_demand,
        lambda_concurrency=on_demand * a.parallelization_factor,
        lambda_records_per_second_per_shard=per_shard_capacity,
        parallelization_factor_needed=factor_needed,
        producer_utilization=utilization,
        producer_keeps_up=utilization <= 1.0,
        x_reads_per_month=x_reads,
        x_within_cap=x_reads <= X_MONTHLY_READ_CAP,
        x_within_stream_rate=peak <= X_STREAM_MAX_POSTS_PER_SECOND,
    )


def scale_table(
    base_posts_per_day: float = TODAY_POSTS_PER_DAY, assumptions: Assumptions | None = None
) -> list[Scale]:
    return [scale_for(base_posts_per_day * m, assumptions, m) for m in SCALES]


def price_keys_used() -> set[str]:
    return {line.price_key for line in monthly_cost(TODAY_POSTS_PER_DAY).lines}


__all__ = [
    "PRICES",
    "SCALES",
    "TODAY_POSTS_PER_DAY",
    "Assumptions",
    "CostEstimate",
    "Line",
    "Scale",
    "firehose_billed_bytes",
    "kinesis_billed_bytes",
    "monthly_cost",
    "scale_for",
    "scale_table",
]
