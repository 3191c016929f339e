"""The deletions sensor: apply new tombstones, then rebuild the windows that counted their posts.

Every tick runs one purge pass (`musicnft.batch.deletions.apply_deletions`): tombstones not yet
applied (and any whose posts showed up again) are removed from posts_hot, posts and the lake files
(those holding the posts' created_at, and those indexed since the last tick, where late posts
land). Then it asks for one run of the window job per day, naming the windows a deletion was
applied to since its cursor, so every aggregate (counts, sentiment, hashtags, locations, entity
metrics) is rebuilt without the deleted posts. Tombstones BigQuery cannot apply yet (streaming
buffer) stay pending and are retried on the next tick.

Cursor (JSON): `applied_since` (windows applied after it are still to request) and `last_tick`
(lake files indexed after it are scanned for late posts). The run key names the day, the windows
and the cursor, so a repeated tick never launches the same rebuild twice.
"""

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from musicnft.batch.deletions import apply_deletions, windows_applied_since
from musicnft.contract.windows import window_key
from musicnft_dagster.jobs import TRIGGER_TAG, WINDOWS_TAG, windows_job
from musicnft_dagster.partitions import DAYS, day_key
from musicnft_dagster.resource_bases import LakeResource, WarehouseResource
from musicnft_dagster.windows import windows_tag

INTERVAL_SECONDS = 60
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DeletionsCursor:
    applied_since: datetime = EPOCH
    last_tick: datetime | None = None

    @classmethod
    def parse(cls, raw: str | None) -> "DeletionsCursor":
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            last = data.get("last_tick")
            return cls(
                datetime.fromisoformat(data["applied_since"]),
                datetime.fromisoformat(last) if last else None,
            )
        except (ValueError, KeyError, TypeError):
            return cls()

    def dump(self) -> str:
        return json.dumps(
            {
                "applied_since": self.applied_since.isoformat(),
                "last_tick": self.last_tick.isoformat() if self.last_tick else None,
            }
        )


def rebuild_requests(windows: list[datetime], cursor: DeletionsCursor) -> list[dg.RunRequest]:
    """One window-job run per day, naming the windows to rebuild; windows before the first
    partition are left alone (Dagster has no partition for them)."""
    first = DAYS.start.astimezone(UTC)
    by_day: dict[str, list[str]] = defaultdict(list)
    for window in windows:
        if window.astimezone(UTC) >= first:
            by_day[day_key(window)].append(window_key(window))
    requests = []
    for day, keys in sorted(by_day.items()):
        tag = windows_tag(keys)
        digest = hashlib.sha256(f"{tag}|{cursor.applied_since.isoformat()}".encode()).hexdigest()
        requests.append(
            dg.RunRequest(
                run_key=f"deletions:{day}:{digest[:16]}",
                partition_key=day,
                tags={WINDOWS_TAG: tag, TRIGGER_TAG: "deletions"},
            )
        )
    return requests


def evaluate(
    lake: object, warehouse: object, cursor: DeletionsCursor, now: datetime
) -> tuple[list[dg.RunRequest], DeletionsCursor, str]:
    """(run requests, next cursor, what happened): the sensor's work, callable from tests."""
    # a little overlap: a file indexed while the previous tick ran is scanned again, never missed
    since = cursor.last_tick - timedelta(seconds=INTERVAL_SECONDS) if cursor.last_tick else None
    result = apply_deletions(lake, warehouse, now=now, since=since)  # type: ignore[arg-type]
    windows = windows_applied_since(warehouse, cursor.applied_since)
    requests = rebuild_requests(windows, cursor)
    summary = (
        f"{result.applied} tombstone(s) applied, {result.pending} pending, "
        f"{len(result.files_rewritten)} lake file(s) rewritten, {len(windows)} window(s) to rebuild"
    )
    return requests, DeletionsCursor(now, now), summary


@dg.sensor(
    job=windows_job,
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Applies tombstones (posts deleted at the source) to posts_hot, posts and the lake's "
        "files, retries those BigQuery's streaming buffer refused, and re-materializes every "
        "15-minute window that counted a deleted post."
    ),
)
def deletions_sensor(
    context: dg.SensorEvaluationContext, lake: LakeResource, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    cursor = DeletionsCursor.parse(context.cursor)
    requests, next_cursor, summary = evaluate(
        lake.lake(), warehouse.warehouse(), cursor, datetime.now(UTC)
    )
    if not requests:
        context.update_cursor(next_cursor.dump())
        return dg.SkipReason(f"no window to rebuild ({summary})")
    context.log.info("deletions: %s", summary)
    return dg.SensorResult(run_requests=requests, cursor=next_cursor.dump())
