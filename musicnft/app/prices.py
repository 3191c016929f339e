"""Every price the cost model (`musicnft.app.cost`) uses, written down once with where it came from.

Each entry has its value, unit, region, the date it was read, the page it was read on and how
far it was checked:

- `vendor`: the figure was read on the vendor's own page or documentation (sometimes an older
  stored snapshot of it, which the note says);
- `third-party`: the figure was read only on a third-party page (a blog, a cost tool's docs);
- `unverified`: the search found the billing rule but not the figure; the value is the list price
  as we know it, to be checked on the source page before relying on it;
- `project`: taken from this project's reference notes (`../shared/REFERENCE.md`).

Prices are US dollars, on-demand list prices without free tiers, AWS in us-east-1 and BigQuery in
the US multi-region (the dataset's default location). "GB" is 2**30 bytes throughout, as both
vendors bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Status = Literal["vendor", "third-party", "unverified", "project"]

READ_ON = "2026-11-30"  # the day these pages were read (UTC)


@dataclass(frozen=True)
class Price:
    key: str
    service: str
    value: float
    unit: str
    region: str
    read_on: str
    source: str  # URL or document, and page title
    status: Status
    note: str = ""

    @property
    def verified(self) -> bool:
        return self.status != "unverified"


_KDS = "https://aws.amazon.com/kinesis/data-streams/pricing/ (Amazon Kinesis Data Streams pricing)"
_FH = (
    "https://aws.amazon.com/kinesis/data-firehose/pricing/ (Amazon Data Firehose pricing; "
    "the stored copy read is the German-language page)"
)
_LAMBDA = (
    "https://docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/lambda.html "
    "(How AWS Pricing Works: Lambda)"
)
_BQ = "https://cloud.google.com/bigquery/pricing (BigQuery pricing)"

_PRICES: tuple[Price, ...] = (
    Price(
        "kinesis_stream_hour",
        "Kinesis Data Streams",
        0.04,
        "USD per on-demand stream-hour",
        "us-east-1",
        READ_ON,
        _KDS,
        "unverified",
        "The page confirms the per-stream hourly charge in on-demand mode but the stored copy "
        "shows no figure.",
    ),
    Price(
        "kinesis_ingest_gb",
        "Kinesis Data Streams",
        0.08,
        "USD per GB written (on-demand), each record rounded up to 1 KB",
        "us-east-1",
        READ_ON,
        _KDS,
        "unverified",
        "Rounding rule confirmed on the page ('each record rounded up to the nearest 1 KB "
        "(1,024 bytes)'); the figure was not shown.",
    ),
    Price(
        "kinesis_retrieval_gb",
        "Kinesis Data Streams",
        0.04,
        "USD per GB read (on-demand, shared-throughput consumers)",
        "us-east-1",
        READ_ON,
        _KDS,
        "unverified",
        "Billing per GB read confirmed on the page; the figure was not shown.",
    ),
    Price(
        "firehose_ingest_gb",
        "Firehose",
        0.029,
        "USD per GB ingested (first 500 TB/month), each record rounded up to 5 KB",
        "us-east-1",
        READ_ON,
        _FH,
        "unverified",
        "Rounding rule confirmed ('per GB ingested in 5 KB increments', Kinesis Data Streams as "
        "source included); the figure was not shown.",
    ),
    Price(
        "firehose_conversion_gb",
        "Firehose",
        0.018,
        "USD per GB converted JSON→Parquet, on ingested GB in 5 KB increments",
        "us-east-1",
        READ_ON,
        _FH,
        "unverified",
        "Basis confirmed (format conversion billed per GB of ingested data in 5 KB increments); "
        "the figure was not shown.",
    ),
    Price(
        "lambda_request",
        "Lambda",
        0.20 / 1_000_000,
        "USD per request ($0.20 per million)",
        "us-east-1",
        READ_ON,
        _LAMBDA,
        "vendor",
        "Free tier (1 M requests/month) not applied.",
    ),
    Price(
        "lambda_gb_second",
        "Lambda",
        0.0000166667,
        "USD per GB-second, x86_64",
        "us-east-1",
        READ_ON,
        _LAMBDA,
        "vendor",
        "The whitepaper rounds it to $0.00001667; us-east-1 x86 $0.0000166667 per "
        "https://cloudchipr.com/blog/aws-lambda-pricing. Free tier (400,000 GB-s) not applied.",
    ),
    Price(
        "s3_standard_gb_month",
        "S3",
        0.023,
        "USD per GB-month, S3 Standard (first 50 TB)",
        "us-east-1",
        READ_ON,
        "https://deepeshsoni.com/archives/256 (Understanding Amazon S3 Pricing: A Practical "
        "Guide); also https://gist.github.com/EverettBerry (S3 Data Storage table)",
        "third-party",
    ),
    Price(
        "s3_put_request",
        "S3",
        0.005 / 1000,
        "USD per PUT/COPY/POST/LIST request, S3 Standard ($0.005 per 1,000)",
        "us-east-1",
        READ_ON,
        "https://aws.amazon.com/s3/pricing/ (Amazon S3 pricing)",
        "unverified",
        "The stored pages state per-1,000-request billing; only an illustration showed $0.005.",
    ),
    Price(
        "bq_streaming_insert_gb",
        "BigQuery",
        0.05,
        "USD per GB streamed with insertAll ($0.01 per 200 MB), each row at least 1 KB",
        "US multi-region",
        READ_ON,
        _BQ + "; https://help.nops.io/inform/supported-recommendations/"
        "use-bigquery-storage-write-api-instead-of-streaming-inserts.md (nOps: legacy "
        "streaming inserts list at $0.05 per GiB)",
        "vendor",
        "Read on stored (older) snapshots of the vendor page; nOps confirms the current list "
        "price.",
    ),
    Price(
        "bq_storage_write_api_gb",
        "BigQuery",
        0.025,
        "USD per GB ingested with the Storage Write API (first 2 TiB/month free)",
        "US multi-region",
        READ_ON,
        "https://help.nops.io/inform/supported-recommendations/"
        "use-bigquery-storage-write-api-instead-of-streaming-inserts.md (nOps: Use BigQuery "
        "Storage Write API Instead of Streaming Inserts)",
        "third-party",
        "Not used by this pipeline (it streams with insertAll); shown for comparison.",
    ),
    Price(
        "bq_active_logical_storage_gb_month",
        "BigQuery",
        0.02,
        "USD per GB-month, active logical storage",
        "US multi-region",
        READ_ON,
        _BQ + "; https://coconote.app/notes/2caa4c53-cab8-40ca-8ad5-1a9e8556ec57 "
        "(BigQuery Pricing Overview, Aug 2025)",
        "vendor",
        "Read on stored (older) snapshots of the vendor page and a 2025 third-party summary. "
        "First 10 GB/month free, not applied.",
    ),
    Price(
        "bq_query_tib",
        "BigQuery",
        6.25,
        "USD per TiB processed, on-demand queries (10 MB minimum per table referenced)",
        "US multi-region",
        READ_ON,
        "https://coconote.app/notes/2caa4c53-cab8-40ca-8ad5-1a9e8556ec57 (BigQuery Pricing "
        "Overview, Aug 2025)",
        "third-party",
        "The 10 MB minimum is from the vendor page's stored snapshot. First 1 TiB/month free, "
        "not applied.",
    ),
    Price(
        "ec2_t3_small_hour",
        "EC2 (producer)",
        0.0208,
        "USD per instance-hour, t3.small Linux on-demand",
        "us-east-1",
        READ_ON,
        "https://aws.amazon.com/ec2/pricing/on-demand/ (Amazon EC2 On-Demand Pricing)",
        "unverified",
        "infra/template.yaml's default InstanceType.",
    ),
    Price(
        "ebs_gp3_gb_month",
        "EC2 (producer)",
        0.08,
        "USD per GB-month, EBS gp3",
        "us-east-1",
        READ_ON,
        "https://aws.amazon.com/ebs/pricing/ (Amazon EBS pricing)",
        "unverified",
        "The producer host's root (20 GB) and data (4 GB) volumes.",
    ),
    Price(
        "x_api_post_read",
        "X API",
        0.005,
        "USD per post read, billed once per post per UTC day (cap 3 M reads/month)",
        "global",
        READ_ON,
        "../shared/REFERENCE.md, 'X API v2 filtered stream' (pay-per-use price, 2026)",
        "project",
        "Also MUSICNFT_X_PRICE_PER_POST's default.",
    ),
)

PRICES: MappingProxyType[str, Price] = MappingProxyType({p.key: p for p in _PRICES})


def price(key: str) -> float:
    return PRICES[key].value
