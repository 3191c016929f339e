"""Engagement re-reads (issue 18): every 15 minutes, the posts that turned 1 h or 24 h old are
read again (Bluesky's AppView; X's API only within `MUSICNFT_X_REREAD_BUDGET_USD` a day), their
snapshots stored, `engagement_15m` rebuilt for their windows and `window_metrics_15m`'s
engagement-at-24 h columns updated."""

from datetime import UTC, datetime

import dagster as dg

from musicnft.batch.engagement import BlueskyReader, XReader, run_rereads
from musicnft.settings import Settings
from musicnft_dagster.assets.windows import _KINDS, OWNERS
from musicnft_dagster.resource_bases import WarehouseResource

ENGAGEMENT_GROUP = "engagement"


class RereadResource(dg.ConfigurableResource):
    """Where counts are re-read: the Bluesky AppView (free) and the X API (paid; the bearer
    token through `EnvVar("X_BEARER_TOKEN")`, only when a daily budget is set)."""

    appview_url: str = "https://public.api.bsky.app"
    x_api_base: str = "https://api.x.com"
    x_bearer_token: str | None = None
    x_budget_usd: float = 0.0
    x_price_per_post: float = 0.005

    def readers(self) -> tuple[BlueskyReader, XReader | None]:
        x = None
        if self.x_bearer_token and self.x_budget_usd > 0:
            x = XReader(self.x_api_base, self.x_bearer_token)
        return BlueskyReader(self.appview_url), x


def reread_resource(settings: Settings) -> RereadResource:
    paid = bool(settings.x_bearer_token) and settings.x_reread_budget_usd > 0
    return RereadResource(
        appview_url=settings.bluesky_appview_url,
        x_api_base=settings.x_api_base,
        x_bearer_token=dg.EnvVar("X_BEARER_TOKEN") if paid else None,
        x_budget_usd=settings.x_reread_budget_usd,
        x_price_per_post=settings.x_price_per_post,
    )


@dg.asset(group_name=ENGAGEMENT_GROUP, kinds=_KINDS.tables, owners=OWNERS)
def engagement_rereads(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, rereads: RereadResource
) -> dg.MaterializeResult:
    """Engagement that means something: each post's replies, reposts, likes and quotes read
    again about 1 h and 24 h after it was created (at stream time they are ~0), stored in
    `engagement_snapshots`; `engagement_15m` holds each window's engagement at 1 h and 24 h,
    and `window_metrics_15m`'s `engagement_24h_posts` / `avg_engagement_24h` are updated for
    windows materialized before their posts turned 24 h old.
    X posts are re-read only within the day's budget (`MUSICNFT_X_REREAD_BUDGET_USD`)."""
    wh = warehouse.warehouse()
    bluesky, x = rereads.readers()
    result = run_rereads(
        wh, datetime.now(UTC), bluesky, x, rereads.x_price_per_post, rereads.x_budget_usd
    )
    if result.budget_exhausted:
        context.log.warning(
            "X re-read budget of $%.2f for today is spent; %d post(s) skipped",
            rereads.x_budget_usd,
            result.x_skipped,
        )
    for error in result.errors:
        context.log.warning("re-read stopped: %s", error)
    return dg.MaterializeResult(
        metadata={
            "read": dg.MetadataValue.json(result.read),
            "missing_at_source": result.missing,
            "x_skipped": result.x_skipped,
            "x_spend_today_usd": round(result.x_spend_usd, 4),
            "windows_updated": len(result.windows),
            # window_metrics_15m rows given their engagement at 24 h after materialization
            "window_metrics_updated": len(result.metrics_updated),
            "errors": len(result.errors),
        }
    )


engagement_job = dg.define_asset_job(
    "engagement_rereads_job",
    selection=dg.AssetSelection.assets(engagement_rereads),
    executor_def=dg.in_process_executor,
    description="Re-read the engagement of posts that turned 1 h or 24 h old.",
)
engagement_schedule = dg.ScheduleDefinition(
    name="engagement_rereads_every_15_minutes",
    job=engagement_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
ENGAGEMENT_DEFS = dg.Definitions(
    assets=[engagement_rereads],
    jobs=[engagement_job],
    schedules=[engagement_schedule],
    resources={"rereads": reread_resource(Settings.from_env())},
)
