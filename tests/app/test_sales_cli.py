"""`musicnft sales` and `musicnft sales discover` as a user runs them, against the fake OpenSea:
a range fetched once and again (adding nothing), a refused key (exit 2, the key nowhere in the
output), the windows built from what landed, and the demo's replay."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from tests.support.fake_opensea import KEY, WEI, FakeOpenSea, fake_opensea, sale_event
from tests.support.paths import ROOT

pytestmark = pytest.mark.slow

T0 = datetime(2021, 12, 1, 10, 0, tzinfo=UTC)


def ts(minutes: float) -> int:
    return int((T0 + timedelta(minutes=minutes)).timestamp())


@pytest.fixture
def fake() -> Iterator[FakeOpenSea]:
    with fake_opensea() as f:
        f.events["genesis-tapes"] = [
            sale_event(i, "genesis-tapes", ts(i * 7 + 1), wei=(i + 1) * WEI // 10) for i in range(5)
        ]
        f.events["sonic-shards"] = [sale_event(100, "sonic-shards", ts(2), wei=WEI)]
        f.events["quiet-club"] = []
        f.page_size = 2
        yield f


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "musicnft", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def env(cli_env: dict[str, str], fake: FakeOpenSea) -> dict[str, str]:
    return {
        **cli_env,
        "MUSICNFT_OPENSEA_API_BASE": fake.url,
        "OPENSEA_API_KEY": KEY,
        "MUSICNFT_OPENSEA_REQUEST_INTERVAL": "0",
        "MUSICNFT_NFT_COLLECTIONS": "genesis-tapes,sonic-shards,quiet-club",
    }


RANGE = ("--since", "2021-12-01T10:00", "--until", "2021-12-01T11:00")


def test_once_then_again_adds_nothing_and_the_windows_count_each_sale_once(
    env: dict[str, str], data_dir: Path
) -> None:
    first = run(env, "sales", "--once", *RANGE)
    assert first.returncode == 0, first.stderr
    assert "3 collection(s), 6 sale(s) written" in first.stdout
    files = sorted((data_dir / "lake" / "sales").rglob("*.parquet"))
    assert len(files) == 2  # one per collection with sales
    second = run(env, "sales", "--once", *RANGE)
    assert second.returncode == 0, second.stderr
    assert "0 sale(s) written, 6 already written" in second.stdout
    assert sorted((data_dir / "lake" / "sales").rglob("*.parquet")) == files
    backfill = run(env, "backfill", "--no-dagster", "--start", "2021-12-01T10:00", "--end",
                   "2021-12-01T11:00")  # fmt: skip
    assert backfill.returncode == 0, backfill.stderr
    assert "6 NFT sales" in backfill.stdout
    wh = EmbeddedWarehouse(data_dir / "warehouse", read_only=True)
    rows = wh.query(
        "SELECT collection, CAST(sum(sale_count) AS BIGINT) AS n, sum(volume_eth) AS v "
        "FROM nft_sales_15m GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    assert [(r["collection"], r["n"]) for r in rows] == [("genesis-tapes", 5), ("sonic-shards", 1)]
    assert rows[0]["v"] == pytest.approx(1.5)  # 0.1 + 0.2 + ... + 0.5
    for out in (first, second, backfill):
        assert KEY not in out.stdout + out.stderr


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_exits_2_with_a_clear_error_and_never_shows_the_key(
    env: dict[str, str], fake: FakeOpenSea, data_dir: Path, status: int
) -> None:
    fake.auth_status = status
    wrong = "a-wrong-but-still-secret-key-77"
    result = run({**env, "OPENSEA_API_KEY": wrong, "MUSICNFT_LOG_LEVEL": "DEBUG"}, "sales",
                 "--once", *RANGE)  # fmt: skip
    assert result.returncode == 2
    assert f"OpenSea refused the API key (HTTP {status})" in result.stderr
    assert wrong not in result.stdout + result.stderr
    assert not (data_dir / "lake" / "sales").exists()


def test_the_key_file_and_a_missing_key(env: dict[str, str], tmp_path: Path) -> None:
    no_key = {k: v for k, v in env.items() if k != "OPENSEA_API_KEY"}
    missing = run(no_key, "sales", "--once", *RANGE)
    assert missing.returncode == 2 and "OPENSEA_API_KEY is not set" in missing.stderr
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    ok = run(no_key, "sales", "--once", "--api-key-file", str(key_file), *RANGE,
             "--collections", "sonic-shards")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "1 collection(s), 1 sale(s) written" in ok.stdout
    assert KEY not in ok.stdout + ok.stderr


def test_a_failing_collection_exits_1_and_loses_nothing(
    env: dict[str, str], fake: FakeOpenSea
) -> None:
    fake.faults = [(500, {}, b"down")] * 2  # every try of the first collection
    env = {**env, "MUSICNFT_OPENSEA_MAX_ATTEMPTS": "2"}
    result = run(env, "sales", "--once", *RANGE)
    assert result.returncode == 1
    assert "FAILED genesis-tapes" in result.stderr
    again = run(env, "sales", "--once", *RANGE)
    assert again.returncode == 0 and "6 sale(s) written" not in again.stdout
    assert "5 sale(s) written" in again.stdout  # genesis-tapes now; sonic-shards was done


def test_discover_lists_top_music_collections(env: dict[str, str], fake: FakeOpenSea) -> None:
    fake.top = [
        {"collection": "genesis-tapes", "name": "Genesis Tapes"},
        {"collection": "sonic-shards", "name": "Sonic Shards"},
    ]
    fake.stats = {
        "genesis-tapes": {
            "total": {
                "volume": 812.5,
                "sales": 3000,
                "floor_price": 0.31,
                "floor_price_symbol": "ETH",
            },
            "intervals": [{"interval": "one_day", "volume": 12.25, "sales": 41}],
        },
        "sonic-shards": {"total": {"volume": 5.0}, "intervals": []},
    }
    result = run(env, "sales", "discover", "--limit", "5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["collection", "name"]
    assert "genesis-tapes" in lines[1] and "12.25" in lines[1] and "41" in lines[1]
    assert "0.31 ETH" in lines[1]
    assert "MUSICNFT_NFT_COLLECTIONS=genesis-tapes,sonic-shards" in result.stdout
    top = next(r for r in fake.requests if r["path"] == "/api/v2/collections/top")
    assert top["params"] == {"category": "music", "sort_by": "one_day_volume", "limit": "5"}


def test_the_demo_replay_lands_the_seeded_sample(cli_env: dict[str, str], data_dir: Path) -> None:
    result = run(cli_env, "sales", "--source", "replay")
    assert result.returncode == 0, result.stderr
    assert "sale(s) written" in result.stdout and "dead-lettered" in result.stdout
    files = list((data_dir / "lake" / "sales").rglob("*.parquet"))
    assert files
    assert (data_dir / "dead_letter" / "sales.jsonl").is_file()
