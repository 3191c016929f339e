"""`musicnft status --check`: one line and exit 0 on a healthy data dir, exit 1 naming each reason
on an unhealthy one (issue #20 item 2): the probe for systemd, cron or a CloudWatch alarm."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.app.cli import main
from musicnft.app.status import Thresholds, health_problems
from musicnft.contract.tables import TABLES
from musicnft.contract.windows import window_key, window_start
from tests.support.paths import cli
from tests.support.records import x_line


def _window(data_dir: Path, start: datetime) -> None:
    row = {"window_start": start, "keyword": "nft", "post_count": 2}
    wh = EmbeddedWarehouse(data_dir / "warehouse")
    try:
        table = pa.Table.from_pylist([row], schema=TABLES["window_metrics_15m"])
        wh.replace_partition("window_metrics_15m", window_key(start), table)
    finally:
        wh.close()


def _check(data_dir: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
    code = main(["status", "--data-dir", str(data_dir), "--check", *flags])
    out = capsys.readouterr().out
    return code, out


@pytest.fixture
def healthy(tmp_path: Path, data_dir: Path, cli_env: dict[str, str]) -> Path:
    """A few posts through the whole hot path, and a window materialized a minute ago."""
    path = tmp_path / "few.jsonl"
    path.write_bytes(b"\n".join([x_line(1), x_line(2), x_line(3)]) + b"\n")
    for args in (("produce", "--file", str(path)), ("deliver", "--once"), ("consume", "--once")):
        subprocess.run(cli(*args), env=cli_env, check=True, capture_output=True)
    _window(data_dir, window_start(datetime.now(UTC) - timedelta(minutes=1)))
    return data_dir


def test_a_healthy_data_dir_passes(healthy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _check(healthy, capsys)
    assert code == 0, out
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("healthy: ")
    assert "consumer lag 0" in lines[0] and "quarantined 0" in lines[0]
    code = main(["status", "--data-dir", str(healthy), "--check", "--json"])
    status = json.loads(capsys.readouterr().out)
    assert code == 0 and status["healthy"] is True and status["problems"] == []


def test_an_unhealthy_data_dir_fails_with_one_line_naming_each_reason(
    healthy: Path, tmp_path: Path, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN records on the stream that nobody delivered or consumed, new dead-letters, a spool
    # holding records, and a newest window two hours old
    path = tmp_path / "more.jsonl"
    path.write_bytes(b"\n".join([x_line(i) for i in range(10, 20)] + [b"{bad", b"[1]"]) + b"\n")
    subprocess.run(cli("produce", "--file", str(path)), env=cli_env, check=True)
    spool = healthy / "spool" / "musicnft-posts.sqlite"
    spool.parent.mkdir(parents=True)
    db = sqlite3.connect(spool)
    db.execute("CREATE TABLE spool (id INTEGER PRIMARY KEY, partition_key TEXT, data BLOB)")
    db.executemany("INSERT INTO spool (partition_key, data) VALUES ('k', x'00')", [()] * 5)
    db.commit()
    db.close()
    # WHEN the probe runs with tight thresholds
    code, out = _check(
        healthy, capsys,
        "--max-lag", "5", "--max-dead-letter-growth", "1", "--max-spool", "2",
        "--max-age", "60",
    )  # fmt: skip
    # THEN it exits 1 and one line names every reason
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("unhealthy: "), out
    line = lines[0]
    assert "delivery lag 10 > 5 records" in line
    assert "consumer lag 10 > 5 records" in line
    assert "2 new dead-letter entries" in line
    assert "spool depth 5 > 2 records" in line
    assert "newest window" in line and "old > 60s" in line
    # AND the default thresholds are looser: only the window's age is over them... which is 0
    # here (a minute-old window), so the same dir passes by default
    assert _check(healthy, capsys)[0] == 0


def test_old_or_missing_windows_are_unhealthy_unless_max_age_is_0(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    EmbeddedWarehouse(data_dir / "warehouse").query("SELECT 1")  # an empty warehouse
    code, out = _check(data_dir, capsys)
    assert code == 1 and "no 15-minute window materialized yet" in out
    assert _check(data_dir, capsys, "--max-age", "0")[0] == 0
    _window(data_dir, datetime(2021, 12, 1, tzinfo=UTC))
    code, out = _check(data_dir, capsys)
    assert code == 1 and "newest window 2021-12-01T00:00:00Z is" in out


def test_local_only_reads_neither_lake_nor_warehouse(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The producer host's probe: no warehouse, no lake, just its spool and dead-letters
    code, out = _check(data_dir, capsys, "--local-only")
    assert code == 0 and out.startswith("healthy: ")
    assert not (data_dir / "warehouse").exists()


def test_quarantined_lake_files_and_their_absence() -> None:
    limits = Thresholds()
    assert health_problems({"lake_quarantined": 2}, limits) == ["2 quarantined lake files > 0"]
    assert health_problems({}, limits) == []  # absent = 0
    assert health_problems({"lake_quarantined": None, "delivery_lag": None}, limits) == []


def test_status_unavailable_is_unhealthy_not_a_crash(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (data_dir / "stream").mkdir(parents=True)
    (data_dir / "stream" / "musicnft-posts.sqlite").write_bytes(b"not a database" * 100)
    code, out = _check(data_dir, capsys)
    assert code == 1 and out.startswith("unhealthy: status unavailable: ")
