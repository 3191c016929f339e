"""Windows that failed while the warehouse was down are run again once it is back (issue #12
item 10): the assets retry a failing step within the run, and `failed_windows_sensor` asks
again for the windows whose last run failed, with backoff, until one succeeds."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft_dagster.assets.windows import WINDOW_ASSETS
from musicnft_dagster.jobs import WINDOWS_TAG
from musicnft_dagster.resources import (
    EmbeddedWarehouseResource,
    LocalLakeResource,
    PipelineResource,
)
from musicnft_dagster.sensors.reruns import (
    ATTEMPT_TAG,
    MAX_ATTEMPTS,
    RERUN_OF_TAG,
    delay_before,
    failed_windows_sensor,
    rerun_requests,
)
from musicnft_dagster.windows import window_run
from tests.support.sample_lake import KEY, KEYWORDS, WINDOW_START, Lake, expected_posts

pytestmark = pytest.mark.slow


@pytest.fixture
def warehouse_root(sample_lake: Lake, tmp_path: Path) -> Path:
    target = tmp_path / "warehouse"
    shutil.copytree(sample_lake.base_warehouse, target)
    return target


def resources(lake: Lake, warehouse: Path) -> dict[str, Any]:
    return {
        "lake": LocalLakeResource(root=str(lake.lake_root)),
        "warehouse": EmbeddedWarehouseResource(root=str(warehouse)),
        "pipeline": PipelineResource(keywords=KEYWORDS),
    }


def tick(instance: dg.DagsterInstance) -> dg.SensorResult | dg.SkipReason:
    result = failed_windows_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def posts_in_window(warehouse: Path) -> int:
    rows = EmbeddedWarehouse(warehouse).query(
        "SELECT count(*) AS n FROM posts WHERE window_start = ?", [WINDOW_START]
    )
    return int(rows.column(0)[0].as_py())


def test_a_window_failed_by_a_warehouse_outage_is_run_again_and_succeeds(
    sample_lake: Lake, warehouse_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = dg.DagsterInstance.ephemeral()

    # GIVEN a warehouse that refuses every write (an outage longer than the in-run retries)
    def down(self: EmbeddedWarehouse, *args: object, **kwargs: object) -> int:
        raise ConnectionError("warehouse unavailable")

    with monkeypatch.context() as outage:
        outage.setattr(EmbeddedWarehouse, "replace_partitions", down)
        # WHEN the drop sensor's run for the window executes
        failed = dg.materialize(
            WINDOW_ASSETS,
            **window_run(KEY),
            resources=resources(sample_lake, warehouse_root),
            instance=instance,
            raise_on_error=False,
        )
    # THEN it fails after retrying the step (the RetryPolicy), and nothing was written
    assert not failed.success
    assert [e.step_key for e in failed.get_step_failure_events()] == ["posts"]
    assert len(failed.filter_events(lambda e: e.event_type_value == "STEP_UP_FOR_RETRY")) == 2
    assert posts_in_window(warehouse_root) == 0

    # WHEN the warehouse is back and the re-run sensor ticks
    first = tick(instance)
    # THEN it asks for the same day and window again, naming the failed run
    assert isinstance(first, dg.SensorResult)
    [request] = first.run_requests or []
    assert request.partition_key == "2021-12-01"
    assert request.tags[WINDOWS_TAG] == KEY
    assert request.tags[RERUN_OF_TAG] == failed.run_id
    assert request.tags[ATTEMPT_TAG] == "1"
    assert request.run_key == f"rerun:{failed.run_id}:2021-12-01"

    # WHEN that run executes, THEN it succeeds and the window holds its posts
    rerun = dg.materialize(
        WINDOW_ASSETS,
        partition_key=request.partition_key,
        tags=request.tags,
        resources=resources(sample_lake, warehouse_root),
        instance=instance,
    )
    assert rerun.success
    assert posts_in_window(warehouse_root) == len(expected_posts(sample_lake))
    # AND the sensor has nothing left to re-run
    assert isinstance(tick(instance), dg.SkipReason)


def test_a_brief_warehouse_error_is_retried_within_the_run(
    sample_lake: Lake, warehouse_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = EmbeddedWarehouse.replace_partitions

    def flaky(self: EmbeddedWarehouse, *args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("connection reset")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(EmbeddedWarehouse, "replace_partitions", flaky)
    result = dg.materialize(
        WINDOW_ASSETS, **window_run(KEY), resources=resources(sample_lake, warehouse_root)
    )
    assert result.success
    assert len(result.filter_events(lambda e: e.event_type_value == "STEP_UP_FOR_RETRY")) == 1


def test_re_runs_back_off_and_stop_after_the_last_attempt() -> None:
    assert delay_before(0) == timedelta(0)
    assert [delay_before(n) for n in (1, 2, 3)] == [timedelta(minutes=m) for m in (2, 4, 8)]
    assert delay_before(10) == timedelta(hours=1)

    # GIVEN failed runs of a window asset: one at its last allowed attempt, one beyond it
    @dg.asset(name="posts", partitions_def=dg.DailyPartitionsDefinition("2021-11-01"))
    def broken() -> None:
        raise ConnectionError("warehouse unavailable")

    instance = dg.DagsterInstance.ephemeral()
    for attempt, day in ((MAX_ATTEMPTS - 1, "2021-12-01"), (MAX_ATTEMPTS, "2021-12-02")):
        dg.materialize(
            [broken],
            partition_key=day,
            tags={ATTEMPT_TAG: str(attempt)},
            instance=instance,
            raise_on_error=False,
        )
    now = datetime.now(UTC)
    # THEN the first waits out its backoff, then is asked for; the other is left for a person
    assert rerun_requests(instance, now) == []
    [request] = rerun_requests(instance, now + timedelta(hours=1, minutes=1))
    assert (request.partition_key, request.tags[ATTEMPT_TAG]) == ("2021-12-01", str(MAX_ATTEMPTS))
