"""`musicnft cost`: the cost model's arithmetic on hand-computed cases, the scale table, the CLI's
text and --json output, and the price table's provenance."""

from __future__ import annotations

import json
import math
import re
from datetime import date

import pytest

from musicnft.app.cli import main
from musicnft.app.cost import (
    DAYS_PER_MONTH,
    GB,
    TODAY_POSTS_PER_DAY,
    Assumptions,
    CostEstimate,
    firehose_billed_bytes,
    kinesis_billed_bytes,
    monthly_cost,
    scale_for,
    scale_table,
)
from musicnft.app.prices import PRICES
from tests.support.paths import ROOT

FIXED = {"stream-hours", "t3.small", "EBS gp3", "queries (dashboard, windows)"}
PER_POST = {  # lines proportional to the number of posts, whatever the volume
    "data written (1 KB per record)",
    "data read (2 readers)",
    "ingested (5 KB per record)",
    "Parquet conversion (5 KB per record)",
    "streaming inserts (1 KB minimum per row)",
    "storage (first month's average)",
    "post reads",
}


def usd(estimate: CostEstimate, item: str) -> float:
    (line,) = [line for line in estimate.lines if line.item == item]
    return line.usd


def quantity(estimate: CostEstimate, item: str) -> float:
    (line,) = [line for line in estimate.lines if line.item == item]
    return line.quantity


def test_zero_posts_costs_only_the_fixed_lines() -> None:
    e = monthly_cost(0)
    for line in e.lines:
        if line.item not in FIXED:
            assert line.usd == 0, line
    # by hand: 730 h × $0.04 + 730 h × $0.0208 + 24 GB × $0.08
    # + (768 dashboard + 96 windows × 6 tables) queries/day × 10 MiB × 730/24 days at $6.25/TiB
    queries = (768 + 96 * 6) * 10 * (730 / 24) / 1024 / 1024 * 6.25
    assert usd(e, "stream-hours") == pytest.approx(29.20)
    assert usd(e, "t3.small") == pytest.approx(15.184)
    assert usd(e, "EBS gp3") == pytest.approx(1.92)
    assert usd(e, "queries (dashboard, windows)") == pytest.approx(queries)
    assert e.total == pytest.approx(29.20 + 15.184 + 1.92 + queries)
    assert queries == pytest.approx(2.4366, abs=1e-4)


def test_today_hand_computed_lines() -> None:
    e = monthly_cost(TODAY_POSTS_PER_DAY)
    posts = 6144 * 730 / 24  # 186,880 posts a month
    assert posts == pytest.approx(186_880)
    assert usd(e, "post reads") == pytest.approx(934.40)  # × $0.005
    # every 670 + 21-byte record is billed as 1 KB by Kinesis, as 5 KB by Firehose
    assert quantity(e, "data written (1 KB per record)") == pytest.approx(posts * 1024 / GB)
    assert quantity(e, "ingested (5 KB per record)") == pytest.approx(posts * 5120 / GB)
    assert usd(e, "ingested (5 KB per record)") == pytest.approx(posts * 5120 / GB * 0.029)
    assert usd(e, "Parquet conversion (5 KB per record)") == pytest.approx(
        posts * 5120 / GB * 0.018
    )
    # a 828-byte row is billed as 1 KB by BigQuery's streaming inserts ($0.05/GB)
    assert usd(e, "streaming inserts (1 KB minimum per row)") == pytest.approx(
        posts * 1024 / GB * 0.05
    )
    # at 0.07 posts/s Lambda runs once per post: 0.3 s + 2 ms at 0.5 GB
    assert quantity(e, "invocations") == pytest.approx(posts)
    assert quantity(e, "duration at 512 MB") == pytest.approx(posts * 0.302 * 0.5)
    # one Firehose file per 5-minute interval (21 posts each): 288 a day
    assert quantity(e, "PUTs (one per Firehose file)") == pytest.approx(288 * 730 / 24)
    assert e.total == pytest.approx(sum(e.by_service().values()))


def test_doubling_posts_doubles_the_per_post_parts() -> None:
    for base in (TODAY_POSTS_PER_DAY, TODAY_POSTS_PER_DAY * 1000):
        one, two = monthly_cost(base), monthly_cost(2 * base)
        for item in PER_POST:
            assert usd(two, item) == pytest.approx(2 * usd(one, item)), item
        for item in FIXED - {"queries (dashboard, windows)"}:
            assert usd(two, item) == usd(one, item), item
    # once batches fill (here batches of 10 at 17.8 posts/s per shard), Lambda runs one
    # invocation per batch: it doubles too
    small_batches = Assumptions(lambda_batch_size=10)
    posts = TODAY_POSTS_PER_DAY * 1000
    one, two = monthly_cost(posts, small_batches), monthly_cost(2 * posts, small_batches)
    assert quantity(one, "invocations") == pytest.approx(posts * DAYS_PER_MONTH / 10)
    for item in ("invocations", "duration at 512 MB"):
        assert usd(two, item) == pytest.approx(2 * usd(one, item))
    # below that, one invocation per shard-second: 4 a second at 100× and 1,000× alike
    assert quantity(monthly_cost(posts), "invocations") == pytest.approx(
        4 * 86_400 * DAYS_PER_MONTH
    )


def test_record_rounding() -> None:
    kb = 1024
    assert firehose_billed_bytes(1) == 5 * kb
    assert firehose_billed_bytes(3 * kb) == 5 * kb  # the vendor's examples
    assert firehose_billed_bytes(5 * kb) == 5 * kb
    assert firehose_billed_bytes(5 * kb + 1) == 10 * kb
    assert firehose_billed_bytes(12 * kb) == 15 * kb
    assert firehose_billed_bytes(0) == 0
    assert kinesis_billed_bytes(4.5 * kb) == 5 * kb
    assert kinesis_billed_bytes(691) == kb
    # records just over 5 KB cost twice as much in Firehose, the same per GB in Kinesis' terms
    small = monthly_cost(1000, Assumptions(record_bytes=5 * kb, partition_key_bytes=0))
    big = monthly_cost(1000, Assumptions(record_bytes=5 * kb + 1, partition_key_bytes=0))
    item = "ingested (5 KB per record)"
    assert quantity(big, item) == pytest.approx(2 * quantity(small, item))


def test_bad_volume_is_refused() -> None:
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            monthly_cost(bad)


def test_scale_shards_concurrency_producer_and_x_limits() -> None:
    rows = scale_table()
    assert [r.multiple for r in rows] == [1, 10, 100, 1000]
    today, ten, hundred, thousand = rows
    assert today.avg_posts_per_second == pytest.approx(6144 / 86400)
    assert today.peak_posts_per_second == pytest.approx(6144 / 86400 * 13.4)
    # under one shard's 1 MB/s at every multiple; on-demand keeps its 4-shard floor
    assert {r.shards_needed for r in rows} == {1}
    assert {r.on_demand_shards for r in rows} == {4}
    # the event source mapping: one batch per shard at a time (ParallelizationFactor 1)
    assert {r.lambda_concurrency for r in rows} == {4}
    # a batch of 100 takes 0.3 + 0.2 s: 200 records/s per shard; 953/s over 4 shards needs 2
    assert thousand.lambda_records_per_second_per_shard == pytest.approx(200)
    assert thousand.parallelization_factor_needed == 2
    assert hundred.parallelization_factor_needed == 1
    # one t3.small: 5,750 posts/s × 20% baseline = 1,150 posts/s
    assert thousand.producer_utilization == pytest.approx(thousand.peak_posts_per_second / 1150)
    assert thousand.producer_keeps_up
    assert not scale_for(TODAY_POSTS_PER_DAY * 2000).producer_keeps_up
    # X: 3 M reads a month, 250 posts/s delivered
    assert ten.x_within_cap and not hundred.x_within_cap
    assert hundred.x_within_stream_rate and not thousand.x_within_stream_rate


def test_shards_by_bytes_and_by_records() -> None:
    # 10 MB/s at peak: 10 shard-equivalents by bytes
    big = Assumptions(record_bytes=1_000_000, partition_key_bytes=0, peak_factor=1)
    s = scale_for(10 * 86_400, big)
    assert s.shards_needed == 10 and s.on_demand_shards == 10 and s.lambda_concurrency == 10
    # 2,500 tiny records/s: 3 shards by the 1,000 records/s limit
    tiny = Assumptions(record_bytes=10, partition_key_bytes=0, peak_factor=1)
    assert scale_for(2_500 * 86_400, tiny).shards_needed == 3
    # parallelization factor 2 doubles the concurrency
    assert scale_for(0, Assumptions(parallelization_factor=2)).lambda_concurrency == 8


def test_every_price_has_a_date_and_a_source() -> None:
    assert PRICES
    for key, p in PRICES.items():
        assert p.key == key
        date.fromisoformat(p.read_on)
        assert p.source.strip() and p.unit.strip() and p.region.strip(), key
        assert p.status in {"vendor", "third-party", "unverified", "project"}, key
        assert p.value > 0, key
    used = {line.price_key for line in monthly_cost(TODAY_POSTS_PER_DAY).lines}
    assert used <= set(PRICES)
    assert set(PRICES) - used == {"bq_storage_write_api_gb"}  # listed for comparison only


def test_docs_list_every_price_and_mark_the_unverified_ones() -> None:
    doc = (ROOT / "docs" / "cost.md").read_text()
    for key, p in PRICES.items():
        rows = [line for line in doc.splitlines() if line.startswith("|") and f"`{key}`" in line]
        assert len(rows) == 1, key
        assert ("unverified" in rows[0]) == (p.status == "unverified"), key
        assert p.read_on in rows[0], key


def test_cli_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--posts-per-day", "6144"]) == 0
    out = capsys.readouterr().out
    for service in ("Kinesis", "Firehose", "Lambda", "S3", "BigQuery", "X API", "EC2 (producer)"):
        assert re.search(rf"^{re.escape(service)}\s+[\d,.]+$", out, re.M), service
    total = re.search(r"^total\s+([\d,.]+)$", out, re.M)
    assert total is not None
    assert float(total.group(1).replace(",", "")) == pytest.approx(
        monthly_cost(6144).total, abs=0.005
    )
    assert "* unverified price" in out
    for multiple in ("1x", "10x", "100x", "1000x"):
        assert re.search(rf"^\s+{multiple}\s+[\d,]+", out, re.M), multiple


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--posts-per-day", "1000", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["posts_per_day"] == 1000
    assert doc["total_usd_per_month"] == pytest.approx(sum(doc["services"].values()))
    assert doc["total_usd_per_month"] == pytest.approx(monthly_cost(1000).total)
    assert [s["posts_per_day"] for s in doc["scale"]] == [1000, 10_000, 100_000, 1_000_000]
    assert set(doc["prices"]) == set(PRICES)
    for p in doc["prices"].values():
        assert p["read_on"] and p["source"] and isinstance(p["verified"], bool)
    assert {line["price_key"] for line in doc["lines"]} <= set(PRICES)


def test_cli_options_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["cost", "--json", "--posts-per-day", "6144000", "--producer-posts-per-second", "100"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["scale"][0]["producer_keeps_up"] is False
    for bad in (["--posts-per-day", "-5"], ["--peak-factor", "0"], ["--posts-per-day", "x"]):
        with pytest.raises(SystemExit) as exc:
            main(["cost", *bad])
        assert exc.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["cost", "--help"])
    help_text = capsys.readouterr().out
    assert "prices.py" in help_text and "unverified" in help_text and "docs/cost.md" in help_text
