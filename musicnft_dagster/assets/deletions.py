"""The deletions sweep asset and its check: proof that deleted posts are gone everywhere.

`deletions` is materialized by a daily schedule: one full purge pass over every lake file
(`raw/` and `scored/`) against every tombstone, so a lake copy the minute-by-minute sensor could
not see (a file indexed before its tombstone, of a post no table ever held) is gone within a day.
Its check `no_deleted_post_visible` fails while a tombstoned post is still in posts_hot or posts,
or a window's aggregates were written before a deletion applied to it (they still count it), or a
quarantined lake file holds (or may hold, being unreadable) a deleted post the purge could not
remove: its metadata names the file and why (`musicnft deletions redrive` after a repair).
"""

import dagster as dg

from musicnft.batch import deletions
from musicnft_dagster.resource_bases import LakeResource, WarehouseResource

GROUP = "deletions"
CHECK = "no_deleted_post_visible"


@dg.asset(
    name="deletions",
    group_name=GROUP,
    kinds={"python"},
    check_specs=[dg.AssetCheckSpec(CHECK, asset="deletions")],
    description=(
        "Tombstones of posts deleted at the source (Bluesky deletes, X batch compliance, "
        "`musicnft forget`), applied to every table and lake file. A materialization is a full "
        "sweep of the lake; its check fails while any deleted post is still visible."
    ),
)
def deletions_asset(
    context: dg.AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    wh, lk = warehouse.warehouse(), lake.lake()
    result = deletions.apply_deletions(lk, wh, full_scan=True)
    held, pending = deletions.counts(wh, lk)
    context.log.info(
        "sweep: %d applied, %d pending, %d lake file(s) rewritten",
        result.applied,
        result.pending,
        len(result.files_rewritten),
    )
    return dg.MaterializeResult(
        metadata={
            "tombstones": held,
            "pending": pending,
            "applied_now": result.applied,
            "files_rewritten": len(result.files_rewritten),
            "files_blocked": len(result.files_blocked),
            "windows_to_rebuild": len(result.windows),
        },
        check_results=[visibility_check(wh, lk)],
    )


def visibility_check(wh: object, lake: object | None = None) -> dg.AssetCheckResult:
    """Passes when no tombstoned post is visible in posts_hot or posts, no window's aggregates
    predate a deletion applied to it, and (with the lake) no quarantined file still holds or
    may hold a deleted post."""
    visible = deletions.visible(wh)
    stale = deletions.stale_windows(wh)
    stuck = deletions.blocked(lake, wh) if lake is not None else {}  # type: ignore[arg-type]
    examples = [
        f"{table}: {t.post_id or 'author ' + str(t.author_id)}"
        for table, ts in visible.items()
        for t in ts[:5]
    ]
    return dg.AssetCheckResult(
        check_name=CHECK,
        asset_key="deletions",
        passed=not visible and not stale and not stuck,
        metadata={
            "visible": sum(len(ts) for ts in visible.values()),
            "examples": ", ".join(examples) or "none",
            "stale_windows": ", ".join(w.isoformat() for w in stale[:10]) or "none",
            "blocked_files": len(stuck),
            "blocked": "; ".join(f"{k}: {r}" for k, (r, _t) in list(stuck.items())[:5]) or "none",
        },
    )


@dg.asset_check(
    asset="deletions",
    name=f"{CHECK}_now",
    description="The same proof on demand, without a sweep.",
)
def no_deleted_post_visible_now(
    lake: LakeResource, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    result = visibility_check(warehouse.warehouse(), lake.lake())
    return dg.AssetCheckResult(
        passed=result.passed, metadata=result.metadata, check_name=f"{CHECK}_now"
    )


deletions_sweep_job = dg.define_asset_job(
    "deletions_sweep",
    selection=dg.AssetSelection.assets("deletions"),
    description="Apply every tombstone to every lake file (daily), and prove nothing is visible.",
)

deletions_sweep_schedule = dg.ScheduleDefinition(
    name="deletions_sweep_schedule",
    job=deletions_sweep_job,
    cron_schedule="17 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="The daily full sweep: a deleted post stays on disk at most a day.",
)

DELETIONS_DEFS = dg.Definitions(
    assets=[deletions_asset],
    asset_checks=[no_deleted_post_visible_now],
    jobs=[deletions_sweep_job],
    schedules=[deletions_sweep_schedule],
)
