"""The Dagster instance from outside a run: what the app layer asks of it.

`musicnft run --dagster` materializes the windows its last drops touched with the core's batch
code (`musicnft.batch.backfill`), which knows nothing of Dagster, after `dagster dev` has stopped;
it hands it the recorder built here, so the UI shows those windows' day partitions and their
checks. (`musicnft backfill` launches a real Dagster backfill instead: `musicnft_dagster.backfill`.)
The instance is always named by its directory (`Settings.dagster_home`), never looked up in the
environment.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg

from musicnft.batch.backfill import WindowOutcome, WindowRecorder
from musicnft.contract.windows import window_key
from musicnft_dagster.partitions import day_key

log = logging.getLogger("musicnft.dagster")

# The assets `materialize_window` stands in for, in the order the assets materialize.
WINDOW_ASSETS = (
    "posts",
    "window_metrics_15m",
    "hashtag_counts_15m",
    "location_counts_15m",
    "reconciliation_15m",
    "entity_metrics_15m",
    "spikes_15m",
    "nft_sales_15m",
)


def open_instance(home: Path) -> dg.DagsterInstance:
    """The Dagster instance whose `dagster.yaml` is in `home` (what DAGSTER_HOME names)."""
    return dg.DagsterInstance.from_config(str(home))


def dagster_recorder(
    home: Path | None, valid_from: datetime | None = None
) -> WindowRecorder | None:
    """Records each window's materializations and checks in the Dagster instance at `home`
    (None when there is none) under their day partitions, so they show in the UI. Windows before
    `valid_from` (default: the first partition) are not partitions and are not recorded."""
    if home is None:
        return None
    if valid_from is None:
        from musicnft_dagster.partitions import WINDOWS

        valid_from = WINDOWS.start
    first: datetime = valid_from
    instance = open_instance(home)
    recorded: set[tuple[str, str]] = set()

    def record(outcome: WindowOutcome) -> None:
        if outcome.window < first:
            return
        key = day_key(outcome.window)
        meta: dict[str, Any] = {
            "window": window_key(outcome.window),
            "posts": outcome.posts.unique_posts,
            "source": "musicnft run (final windows)",
        }
        for asset in WINDOW_ASSETS:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=asset, partition=key, metadata=meta)
            )
        for name, (ok, detail) in outcome.checks.items():
            # Dagster stores one runless evaluation per check and partition: the first window
            # of a day records it, a later failing window is logged (the caller's report, and
            # its exit code, still count every window's checks).
            if (name, key) in recorded:
                if not ok:
                    log.warning("%s failed for window %s", name, window_key(outcome.window))
                continue
            asset, check = name.split(".")
            try:
                instance.report_runless_asset_event(
                    dg.AssetCheckEvaluation(
                        asset_key=dg.AssetKey(asset),
                        check_name=check,
                        passed=ok,
                        metadata={
                            "window": window_key(outcome.window),
                            "detail": dg.MetadataValue.json(detail),
                        },
                        partition=key,
                    )
                )
            except Exception as exc:  # already recorded for this day (an earlier session)
                log.warning("check %s of %s not recorded: %s", name, key, type(exc).__name__)
            recorded.add((name, key))

    return record


def settle_runs(home: Path, timeout: float = 120.0) -> bool:
    """Runs already executing finish on their own (their workers outlive `dagster dev`): wait
    for them, and cancel queued runs nothing will launch now. False when some still run after
    `timeout` seconds."""
    instance = open_instance(home)
    queued = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
    for run in queued:
        instance.report_run_canceled(run, message="demo stopped before the run was launched")
    active = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
    deadline = time.monotonic() + timeout
    while instance.get_runs_count(filters=dg.RunsFilter(statuses=active)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True
