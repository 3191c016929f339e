"""`musicnft backfill`: every window from the lake, a progress report, and an honest exit code."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.app.cli import main
from musicnft.contract.windows import window_key, window_start
from musicnft.devtools.sample import write_sample
from tests.support.paths import cli

pytestmark = pytest.mark.slow


def _lake(
    lines: int, tmp_path: Path, data_dir: Path, cli_env: dict[str, str]
) -> dict[str, set[str]]:
    """A lake from `lines` sample lines; returns window key -> ids."""
    sample = tmp_path / "s.jsonl"
    write_sample(sample, lines=lines, seed=11)
    for args in (("produce", "--file", str(sample)), ("deliver", "--once")):
        subprocess.run(cli(*args), env=cli_env, check=True, capture_output=True)
    windows: dict[str, set[str]] = {}
    for path in (data_dir / "lake" / "raw").rglob("*.parquet"):
        for row in pq.read_table(path, columns=["post_id", "created_at"]).to_pylist():
            key = window_key(window_start(row["created_at"].astimezone(UTC)))
            windows.setdefault(key, set()).add(row["post_id"])
    return windows


@pytest.fixture
def small_lake(tmp_path: Path, data_dir: Path, cli_env: dict[str, str]) -> dict[str, set[str]]:
    """A lake from 100 sample lines: two windows of posts, for the tests that need some windows
    and not the bursts (each window costs the backfill seconds)."""
    lake = _lake(100, tmp_path, data_dir, cli_env)
    assert len(lake) == 2
    return lake


def test_backfill_is_a_dagster_backfill_of_every_window_with_posts(
    small_lake: dict[str, set[str]], data_dir: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    # (a small lake: each window costs the Dagster run seconds on a loaded machine, and what a
    # burst does to the spike check is tested on its own in tests/dagster/test_insight_assets.py)
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = dict(cli_env, DAGSTER_HOME=str(home), DAGSTER_DISABLE_TELEMETRY="1")
    # WHEN `musicnft backfill` runs with no webserver up (it starts `dagster dev` for the backfill)
    today = {datetime.now(UTC).strftime("%Y-%m-%d")}
    proc = subprocess.run(cli("backfill"), env=env, capture_output=True, text=True, timeout=900)
    today.add(datetime.now(UTC).strftime("%Y-%m-%d"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    total = sum(len(v) for v in small_lake.values())
    days = {k[:10] for k in small_lake}
    # THEN it reports a completed Dagster backfill and what it materialized
    assert "COMPLETED_SUCCESS" in proc.stdout
    assert f"{len(days)} day(s)" in proc.stdout and f"{total:,} posts" in proc.stdout
    assert "0 failed check(s)" in proc.stdout
    assert "backfill:" in proc.stderr  # progress went to stderr
    wh = EmbeddedWarehouse(data_dir / "warehouse")
    got = wh.query("SELECT window_start, post_id FROM posts").to_pylist()
    by_window: dict[str, set[str]] = {}
    for row in got:
        by_window.setdefault(window_key(row["window_start"]), set()).add(row["post_id"])
    assert by_window == small_lake
    # posts_hot was empty (no consumer ran): reconciliation inserted every post exactly once.
    assert wh.count("posts_hot") == wh.count("posts_hot", "post_id") == total
    # AND the instance holds a real backfill whose runs materialized the days, checks passed
    instance = dg.DagsterInstance.from_config(str(home))
    [backfill] = instance.get_backfills()
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
    assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    for asset in ("posts", "window_metrics_15m", "reconciliation_15m"):
        # (besides today's: the 15-minute refresh schedule runs in that `dagster dev` too, and
        # materializes today's partition when a quarter hour passes during the backfill)
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) - today == days
    evaluations = [
        e.event_log_entry.dagster_event.event_specific_data
        for r in runs
        for e in instance.get_records_for_run(
            r.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        if e.event_log_entry.dagster_event is not None
    ]
    # the spike check ran for each day; it never blocks, and a spike it names only warns
    spikes = [e for e in evaluations if e.check_name == "no_spikes"]
    assert len(spikes) == len(days)
    assert not any(e.blocking for e in spikes)
    assert all(e.severity == dg.AssetCheckSeverity.WARN for e in spikes if not e.passed)
    evaluations = [e for e in evaluations if e.check_name != "no_spikes"]
    # posts (2 checks), reconciliation_15m (1) and nft_sales_15m (2), once per day each
    assert sorted(e.check_name for e in evaluations) == sorted(
        [
            "post_id_unique",
            "schema_v1",
            "lake_matches_warehouse",
            "sale_ids_unique",
            "prices_non_negative",
        ]
        * len(days)
    )
    assert all(e.passed and e.partition in days for e in evaluations), [
        (e.check_name, e.passed, e.partition, e.metadata) for e in evaluations
    ]
    # AND the drop sensor, seeing those files for the first time, launches nothing for them
    from musicnft_dagster.resources import EmbeddedWarehouseResource, LocalLakeResource
    from musicnft_dagster.sensors.drops import lake_drop_sensor

    context = dg.build_sensor_context(
        instance=instance,
        resources={
            "lake": LocalLakeResource(root=str(data_dir / "lake")),
            "warehouse": EmbeddedWarehouseResource(root=str(data_dir / "warehouse")),
        },
    )
    tick = lake_drop_sensor(context)
    assert isinstance(tick, dg.SensorResult | dg.SkipReason)
    assert isinstance(tick, dg.SkipReason) or not tick.run_requests
    # Running it again in this process (--no-dagster) changes nothing but timestamps.
    before = wh.query(
        "SELECT * EXCLUDE (updated_at) FROM window_metrics_15m ORDER BY ALL"
    ).to_pylist()
    again = subprocess.run(
        cli("backfill", "--no-dagster"), env=cli_env, capture_output=True, text=True
    )
    assert again.returncode == 0
    after = wh.query(
        "SELECT * EXCLUDE (updated_at) FROM window_metrics_15m ORDER BY ALL"
    ).to_pylist()
    assert before == after


def test_backfill_range_includes_empty_windows(
    small_lake: dict[str, set[str]], data_dir: Path, cli_env: dict[str, str]
) -> None:
    first = min(small_lake)
    start = first[:10] + "T" + first[11:]
    proc = subprocess.run(
        cli("backfill", "--no-dagster", "--start", "2021-11-30T23:00", "--end", start),
        env=cli_env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    wh = EmbeddedWarehouse(data_dir / "warehouse")
    rows = wh.query(
        "SELECT window_start, post_count FROM window_metrics_15m WHERE keyword = 'all' ORDER BY 1"
    ).to_pylist()
    assert rows and all(r["post_count"] == 0 for r in rows)
    assert all(window_key(r["window_start"]) < first for r in rows)


def test_backfill_exits_non_zero_when_a_check_fails(
    small_lake: dict[str, set[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import musicnft.batch.window_pipeline as wp

    monkeypatch.setattr(
        wp, "duplicate_post_rows", lambda warehouse, windows: dict.fromkeys(windows, 3)
    )
    assert main(["backfill", "--no-dagster"]) == 1
    assert "FAILED" in capsys.readouterr().err


def test_backfill_rejects_bad_dates(cli_env: dict[str, str]) -> None:
    proc = subprocess.run(
        cli("backfill", "--start", "yesterday"), env=cli_env, capture_output=True, text=True
    )
    assert proc.returncode == 2 and "not an ISO date/time: 'yesterday'" in proc.stderr
    proc = subprocess.run(
        cli("backfill", "--start", "2021-12-02", "--end", "2021-12-01"),
        env=cli_env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "--end must be after --start" in proc.stderr
