"""`entity_metrics_15m` and `spikes_15m` as Dagster assets over the sample lake: in the windows
job, rows that agree with the posts, the WARN check naming spikes, and the webhook told once."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.tables import TABLES
from musicnft.contract.windows import WINDOW
from musicnft_dagster.assets import insight
from musicnft_dagster.assets.insight import INSIGHT_ASSETS, AlertsResource
from musicnft_dagster.assets.windows import WINDOW_ASSETS
from musicnft_dagster.definitions import defs
from musicnft_dagster.resources import (
    EmbeddedWarehouseResource,
    LocalLakeResource,
    PipelineResource,
)
from musicnft_dagster.windows import window_run
from tests.support.fake_webhook import FakeWebhook
from tests.support.sample_lake import KEY, KEYWORDS, WINDOW_START, Lake, expected_posts

pytestmark = pytest.mark.slow


@pytest.fixture
def warehouse_root(sample_lake: Lake, tmp_path: Path) -> Path:
    target = tmp_path / "warehouse"
    shutil.copytree(sample_lake.base_warehouse, target)
    return target


def materialize(lake: Lake, warehouse: Path, alerts: AlertsResource) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*WINDOW_ASSETS, *INSIGHT_ASSETS],
        **window_run(KEY),
        resources={
            "lake": LocalLakeResource(root=str(lake.lake_root)),
            "warehouse": EmbeddedWarehouseResource(root=str(warehouse)),
            "pipeline": PipelineResource(keywords=KEYWORDS),
            "alerts": alerts,
        },
    )


def rows(warehouse: Path, table: str, window: datetime = WINDOW_START) -> list[dict[str, Any]]:
    return (
        EmbeddedWarehouse(warehouse)
        .query(f"SELECT * FROM {table} WHERE window_start = ?", [window])
        .to_pylist()
    )


def test_insight_assets_are_in_the_windows_job() -> None:
    job = defs.resolve_job_def("window_refresh")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"entity_metrics_15m", "spikes_15m"} <= keys


def test_entity_metrics_agree_with_the_posts_and_no_spike_without_history(
    sample_lake: Lake, warehouse_root: Path
) -> None:
    result = materialize(sample_lake, warehouse_root, AlertsResource())
    assert result.success
    expected = Counter(e for p in expected_posts(sample_lake).values() for e in p["entities"])
    assert expected, "the sample window mentions entities (OpenSea at least)"
    got = {r["entity"]: r["post_count"] for r in rows(warehouse_root, "entity_metrics_15m")}
    assert got == dict(expected)
    spikes = rows(warehouse_root, "spikes_15m")
    assert {r["dimension"] for r in spikes} == {"keyword", "entity", "hashtag"}
    assert not any(r["is_spike"] for r in spikes)  # no history: the fallback flags nothing
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "no_spikes"]
    assert check.passed


def test_a_burst_is_flagged_named_by_the_check_and_alerted_once(
    sample_lake: Lake, warehouse_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a quiet day before the window: one post per window overall
    wh = EmbeddedWarehouse(warehouse_root)
    quiet = [WINDOW_START - (i + 1) * WINDOW for i in range(96)]
    wh.append(
        "window_metrics_15m",
        pa.Table.from_pylist(
            [{"window_start": w, "keyword": "all", "post_count": 1} for w in quiet],
            schema=TABLES["window_metrics_15m"],
        ),
    )
    monkeypatch.setattr(insight, "ALERT_MAX_AGE", insight.timedelta(days=36500))
    hook = FakeWebhook()
    try:
        # WHEN the busy window runs, twice
        first = materialize(sample_lake, warehouse_root, AlertsResource(webhook_url=hook.url))
        second = materialize(sample_lake, warehouse_root, AlertsResource(webhook_url=hook.url))
    finally:
        hook.close()
    # THEN the window's own run flags the overall volume, the check warns naming it...
    flagged = {
        (r["dimension"], r["key"]) for r in rows(warehouse_root, "spikes_15m") if r["is_spike"]
    }
    assert ("keyword", "all") in flagged
    (check,) = [e for e in first.get_asset_check_evaluations() if e.check_name == "no_spikes"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "keyword all" in (check.description or "")
    # ...and the webhook got one alert per spike, none again on the re-run
    assert len(hook.bodies) == len(flagged)
    assert any("`all`" in b["text"] for b in hook.bodies)
    assert second.success
