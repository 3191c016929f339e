"""Dagster backfills of the window assets, launched and followed through a webserver's GraphQL
API: exactly what "Materialize" on a partition range in the UI does (same backfill daemon, same
BackfillPolicy: up to a week of days per run, each run recomputing its days' 15-minute windows).

`musicnft backfill` (the app layer) decides which days and which webserver; this module talks to
it and reads the outcome (runs, failed checks, posts) back from the instance.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dagster as dg
import requests

from musicnft.contract.windows import WINDOW, window_start
from musicnft_dagster.jobs import RANGE_TAG, TRIGGER_TAG
from musicnft_dagster.partitions import DAYS, day_key
from musicnft_dagster.sensors.reruns import WINDOW_ASSET_NAMES
from musicnft_dagster.windows import range_tag

LAST_ASSET = "reconciliation_15m"
DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
SUCCEEDED = {"COMPLETED", "COMPLETED_SUCCESS"}

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""
STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      id
      status
      numPartitions
      error { message }
      assetBackfillData {
        assetBackfillStatuses {
          __typename
          ... on AssetPartitionsStatusCounts {
            assetKey { path }
            numPartitionsTargeted
            numPartitionsInProgress
            numPartitionsMaterialized
            numPartitionsFailed
          }
        }
      }
      runs(limit: 1000) { runId status }
    }
    ... on Error { message }
  }
}
"""
CANCEL = """
mutation Cancel($id: String!) {
  cancelPartitionBackfill(backfillId: $id) {
    __typename
    ... on Error { message }
  }
}
"""
# Run statuses of a run that may still change (anything else is over: SUCCESS, FAILURE, CANCELED).
ACTIVE_RUN = {"QUEUED", "NOT_STARTED", "MANAGED", "STARTING", "STARTED", "CANCELING"}
# How long a backfill whose runs are all over may wait for the retry of a failed one (dagster.yaml's
# run_retries: the daemon launches it within seconds) before it counts as stalled.
RETRY_WAIT_SECONDS = 120.0


class BackfillError(RuntimeError):
    """The webserver refused the backfill or could not be reached."""


class WebserverClient:
    """GraphQL over HTTP against `dagster dev` / `dagster-webserver` at `url`."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = requests.post(
                f"{self.url}/graphql",
                json={"query": text, "variables": variables or {}},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise BackfillError(
                f"cannot reach the Dagster webserver at {self.url}: {exc}"
            ) from None
        if response.status_code != 200:
            raise BackfillError(f"{self.url}/graphql answered {response.status_code}")
        body = response.json()
        if body.get("errors"):
            raise BackfillError(f"GraphQL errors: {body['errors']}")
        return dict(body["data"])

    def is_up(self) -> bool:
        try:
            self.query("{ version }")
        except BackfillError:
            return False
        return True

    def wait_until_up(self, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
        deadline = time.monotonic() + timeout
        while not self.is_up():
            if time.monotonic() > deadline or not alive():
                raise BackfillError(f"the Dagster webserver at {self.url} did not come up")
            time.sleep(0.5)


@dataclass
class BackfillRequest:
    """The day partitions to backfill and the tags narrowing them to windows."""

    days: list[str]
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        if not self.days:
            return "musicnft backfill (nothing)"
        return f"musicnft backfill {self.days[0]} … {self.days[-1]} ({len(self.days)} day(s))"


def plan_backfill(
    windows: Iterable[datetime], explicit_range: tuple[datetime, datetime] | None = None
) -> BackfillRequest:
    """The days holding `windows` (those that are partitions), with a window-range tag trimming
    the first and last day to [first window, last window] (or to `explicit_range`, [start,
    end) of `musicnft backfill --start --end`)."""
    chosen = sorted(set(windows))
    existing = set(DAYS.get_partition_keys())
    days = sorted({day_key(w) for w in chosen} & existing)
    tags = {TRIGGER_TAG: "backfill"}
    if explicit_range is not None:
        lo, hi = explicit_range
        end = window_start(hi) if window_start(hi) == hi else window_start(hi) + WINDOW
        tags[RANGE_TAG] = range_tag(window_start(lo), end)
    elif chosen:
        tags[RANGE_TAG] = range_tag(chosen[0], chosen[-1] + WINDOW)
    return BackfillRequest(days, tags)


LOCATIONS = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""


def check_locations(client: WebserverClient) -> None:
    """Fail early, saying why, when the webserver could not load the code location."""
    data = client.query(LOCATIONS)["workspaceOrError"]
    for entry in data.get("locationEntries", []):
        loaded = entry.get("locationOrLoadError") or {}
        if loaded.get("__typename") == "PythonError":
            raise BackfillError(
                f"code location {entry['name']} failed to load: {loaded.get('message', '')}"
            )


def launch(client: WebserverClient, request: BackfillRequest) -> str:
    """Launch an asset backfill of the window assets over the request's days; its id."""
    check_locations(client)
    params = {
        "assetSelection": [{"path": [name]} for name in sorted(WINDOW_ASSET_NAMES)],
        "partitionNames": request.days,
        "tags": [{"key": k, "value": v} for k, v in request.tags.items()],
        "title": request.title,
        "description": "Rebuild the windows of these days from the lake (musicnft backfill).",
    }
    result = client.query(LAUNCH, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise BackfillError(f"{result['__typename']}: {result.get('message', '')}")
    return str(result["backfillId"])


@dataclass
class BackfillState:
    status: str
    targeted: int  # day partitions of the last asset
    materialized: int
    failed: int
    runs: dict[str, str]  # run id -> status
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.status in DONE


def state(client: WebserverClient, backfill_id: str) -> BackfillState:
    data = client.query(STATUS, {"id": backfill_id})["partitionBackfillOrError"]
    if data["__typename"] != "PartitionBackfill":
        raise BackfillError(f"{data['__typename']}: {data.get('message', '')}")
    counts = {
        "/".join(s["assetKey"]["path"]): s
        for s in (data.get("assetBackfillData") or {}).get("assetBackfillStatuses", [])
        if s["__typename"] == "AssetPartitionsStatusCounts"
    }
    last = counts.get(LAST_ASSET, {})
    failed = max((s["numPartitionsFailed"] for s in counts.values()), default=0)
    return BackfillState(
        status=data["status"],
        targeted=int(last.get("numPartitionsTargeted", data.get("numPartitions") or 0)),
        materialized=int(last.get("numPartitionsMaterialized", 0)),
        failed=int(failed),
        runs={r["runId"]: r["status"] for r in data.get("runs") or []},
        error=(data.get("error") or {}).get("message"),
    )


def stalled(current: BackfillState) -> bool:
    """Not done, a run failed, and no run is left that could still change anything: what remains
    is a retry the backfill waits for. Dagster 1.12 can wait for it forever: a run whose process
    died while it was being launched (`DagsterLaunchFailedError`) is failed, the backfill daemon
    logs that it "will be retried, but retries have not been launched", and no retry comes."""
    return (
        not current.done
        and current.failed > 0
        and bool(current.runs)
        and not any(status in ACTIVE_RUN for status in current.runs.values())
    )


def cancel(client: WebserverClient, backfill_id: str) -> None:
    data = client.query(CANCEL, {"id": backfill_id})["cancelPartitionBackfill"]
    if data["__typename"] != "CancelBackfillSuccess":
        raise BackfillError(f"cancelling backfill {backfill_id}: {data.get('message', '')}")


def follow(
    client: WebserverClient,
    backfill_id: str,
    on_progress: Callable[[BackfillState], None],
    poll_seconds: float = 1.0,
    retry_wait_seconds: float = RETRY_WAIT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> BackfillState:
    """Poll the backfill until it is done, reporting each change. One that has `stalled` for
    `retry_wait_seconds` without any change is cancelled and reported as an error (the command
    then exits 1, and running it again picks up what is missing), never waited for forever."""
    last: tuple[Any, ...] | None = None
    last_runs: dict[str, str] | None = None
    changed = clock()
    while True:
        current = state(client, backfill_id)
        key = (current.status, current.materialized, current.failed, len(current.runs))
        if key != last:
            on_progress(current)
            last = key
            changed = clock()
        if current.runs != last_runs:  # (a run's status moved: not stalled)
            last_runs = current.runs
            changed = clock()
        if current.done:
            return current
        if stalled(current) and clock() - changed >= retry_wait_seconds:
            failed = sorted(r for r, s in current.runs.items() if s == "FAILURE")
            cancel(client, backfill_id)
            raise BackfillError(
                f"backfill {backfill_id} stalled: run(s) {', '.join(failed)} failed and no "
                f"retry was launched within {retry_wait_seconds:.0f} s; cancelled it (run the "
                "backfill again: windows already written are rewritten, never doubled)"
            )
        time.sleep(poll_seconds)


@dataclass
class BackfillOutcome:
    """What the backfill's runs did, read from the instance."""

    days: int = 0
    windows: int = 0
    posts: int = 0
    sales: int = 0  # NFT sales counted (nft_sales_15m)
    repaired: int = 0
    failed_runs: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)  # "asset.check day: why"


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


AUTO_RETRY_TAG = "dagster/auto_retry_run_id"  # set on a failed run that run_retries retried


def _recovered(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether a failed run was retried (dagster.yaml's run_retries: its worker died) and the
    retry, or the retry's own retry, succeeded: the windows were written, nothing is missing."""
    seen: set[str] = set()
    while (retry_id := run.tags.get(AUTO_RETRY_TAG)) and retry_id not in seen:
        seen.add(retry_id)
        retry = instance.get_run_by_id(retry_id)
        if retry is None:
            return False
        if retry.status == dg.DagsterRunStatus.SUCCESS:
            return True
        run = retry
    return False


def outcome(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> BackfillOutcome:
    out = BackfillOutcome()
    days: set[str] = set()
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        if (
            run is not None
            and run.status != dg.DagsterRunStatus.SUCCESS
            and not _recovered(instance, run)
        ):
            out.failed_runs.append(f"{run_id} ({run.status.value})")
        for record in instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=10_000
        ).records:
            mat = record.asset_materialization
            if mat is None or mat.partition is None:
                continue
            meta = {k: v.value for k, v in mat.metadata.items()}
            if mat.asset_key.to_user_string() == "posts":
                days.add(mat.partition)
                out.windows += _int(meta.get("windows"))
                out.posts += _int(meta.get("posts"))
            elif mat.asset_key.to_user_string() == LAST_ASSET:
                out.repaired += _int(meta.get("repaired"))
            elif mat.asset_key.to_user_string() == "nft_sales_15m":
                out.sales += _int(meta.get("sales"))
        for record in instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=10_000
        ).records:
            event = record.event_log_entry.dagster_event
            evaluation = event.event_specific_data if event is not None else None
            # A WARN check informs (spikes found; duplicates BigQuery's streaming buffer still
            # holds): it does not fail the backfill.
            if (
                isinstance(evaluation, dg.AssetCheckEvaluation)
                and not evaluation.passed
                and evaluation.severity != dg.AssetCheckSeverity.WARN
            ):
                out.failed_checks.append(
                    f"{evaluation.asset_key.to_user_string()}.{evaluation.check_name} "
                    f"{evaluation.partition}: {evaluation.description or ''}"
                )
    out.days = len(days)
    return out


def live_daemon(instance: dg.DagsterInstance, within_seconds: float = 60.0) -> bool:
    """Whether a Dagster daemon (`dagster dev`) is serving this instance right now."""
    now = time.time()
    beats = instance.get_daemon_heartbeats()
    return any(now - beat.timestamp < within_seconds for beat in beats.values())
