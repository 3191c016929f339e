"""`musicnft sql --at` answers as the tables were then; `status --json` reports each table's
snapshots and data files (the embedded warehouse on DuckLake)."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import ENRICHED_FIELDS, conform
from musicnft.hotpath.enrich import enrich
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.settings import DEFAULT_KEYWORDS
from tests.support.paths import cli
from tests.support.records import x_message


def _rows(first: int, n: int) -> list[dict]:
    matcher = KeywordMatcher(DEFAULT_KEYWORDS)
    now = datetime.now(UTC)
    return [
        conform(enrich(normalize_x_message(x_message(i), matcher, now)), ENRICHED_FIELDS)
        for i in range(first, first + n)
    ]


def _sql(cli_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli("sql", *args), env=cli_env, capture_output=True, text=True, timeout=120
    )


def test_sql_at_a_time_answers_as_the_tables_were_then(
    data_dir: Path, cli_env: dict[str, str]
) -> None:
    # GIVEN posts_hot with 3 rows, then (later) 4 more
    warehouse = EmbeddedWarehouse(data_dir / "warehouse")
    first = _rows(0, 3)
    warehouse.insert_rows("posts_hot", first, [r["post_id"] for r in first])
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    more = _rows(10, 4)
    warehouse.insert_rows("posts_hot", more, [r["post_id"] for r in more])
    count = "SELECT count(*) AS n FROM posts_hot"
    # WHEN it is asked now and as of the moment between the two inserts
    now = _sql(cli_env, count, "--json")
    then = _sql(cli_env, count, "--json", "--at", between.isoformat())
    # THEN each answer is the table of its time
    assert now.returncode == 0, now.stderr
    assert then.returncode == 0, then.stderr
    assert json.loads(now.stdout) == [{"n": 7}]
    assert json.loads(then.stdout) == [{"n": 3}]
    # AND a time before the warehouse existed is one clear line, exit 1
    before = _sql(cli_env, count, "--at", "2001-01-01T00:00:00Z")
    assert before.returncode == 1
    assert "no snapshot" in before.stderr and len(before.stderr.strip().splitlines()) == 1
    # AND a malformed time is a usage error
    assert _sql(cli_env, count, "--at", "yesterday").returncode == 2
    # AND status --json reports snapshots and data files per table
    status = subprocess.run(
        cli("status", "--json"), env=cli_env, capture_output=True, text=True, timeout=120
    )
    assert status.returncode == 0, status.stderr
    tables = json.loads(status.stdout)["tables"]
    assert tables["posts_hot"]["rows"] == 7
    assert tables["posts_hot"]["snapshots"] >= 2
    assert tables["posts_hot"]["data_files"] >= 1
    assert set(tables) >= {"posts", "window_metrics_15m", "lake_files", "lake_quarantine"}
