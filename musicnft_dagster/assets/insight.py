"""Who is talked about and what is spiking (issue 18): `entity_metrics_15m` and `spikes_15m`.

Window assets beside the others (same day partitions, same window tags, same `windows` group,
so the drop sensor's and the schedule's `window_refresh` runs materialize them, and `musicnft
backfill` too). The spike check warns, naming the spikes; an optional Slack-compatible webhook
(`MUSICNFT_ALERT_WEBHOOK_URL`) is told once per window and key.
"""

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from musicnft.batch import insight_pipeline as ip
from musicnft.batch import window_pipeline as wp
from musicnft.batch.alerts import SpikeAlerter
from musicnft.contract.tables import ENTITY_METRICS_SCHEMA, SPIKES_SCHEMA
from musicnft.contract.windows import WINDOW, window_key
from musicnft.settings import Settings
from musicnft_dagster.assets.engagement import ENGAGEMENT_DEFS
from musicnft_dagster.assets.windows import (
    _KINDS,
    COMMON,
    DayTotals,
    _asset_metadata,
    _check,
    _markdown,
    _record_days,
    run_windows,
)
from musicnft_dagster.partitions import day_key
from musicnft_dagster.resource_bases import LakeResource, WarehouseResource

# Alerts are for what is spiking *now*: a backfill of last month's windows stores its spikes
# but pages nobody.
ALERT_MAX_AGE = timedelta(hours=2)
POSTS_PER_ALERT = 3


class AlertsResource(dg.ConfigurableResource):
    """Where spike alerts go: a Slack-compatible incoming webhook, or nowhere. Configured from
    `MUSICNFT_ALERT_WEBHOOK_URL` through `EnvVar`, so the URL (a secret) never lands in run
    config or logs."""

    webhook_url: str | None = None

    def alerter(self, lake: Any) -> SpikeAlerter | None:
        return SpikeAlerter(lake, self.webhook_url) if self.webhook_url else None


def alerts_resource(settings: Settings) -> AlertsResource:
    if settings.alert_webhook_url:
        return AlertsResource(webhook_url=dg.EnvVar("MUSICNFT_ALERT_WEBHOOK_URL"))
    return AlertsResource()


SPIKES_FOUND = dg.AssetCheckSpec(
    "no_spikes",
    asset="spikes_15m",
    partitions_def=COMMON["partitions_def"],
    description="Warns, naming them, when a keyword, entity or hashtag spikes in a window "
    "(robust z-score ≥ 3.5 against its trailing 7 days, at least 5 posts and 2× its baseline).",
)


@dg.asset(
    deps=["posts"],
    kinds=_KINDS.tables,
    metadata=_asset_metadata(ENTITY_METRICS_SCHEMA),
    **COMMON,
)
def entity_metrics_15m(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Share of voice: per 15-minute window and entity (artist, label, collection, marketplace,
    platform of the entities file) the posts that mention it, their authors, sentiment and
    engagement. One row per window and mentioned entity; the dashboard's share-of-voice panel."""
    wh = warehouse.warehouse()
    days: dict[str, DayTotals] = defaultdict(DayTotals)
    for chunk in wp.chunked(run_windows(context)):
        for window, rows in ip.build_entity_metrics_windows(wh, chunk).items():
            days[day_key(window)].add(rows)
    _record_days(context, days, "rows")
    return dg.MaterializeResult(metadata={"rows": sum(d.rows for d in days.values())})


@dg.asset(
    deps=["window_metrics_15m", "hashtag_counts_15m", entity_metrics_15m],
    kinds=_KINDS.tables,
    metadata=_asset_metadata(SPIKES_SCHEMA),
    check_specs=[SPIKES_FOUND],
    **COMMON,
)
def spikes_15m(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    lake: LakeResource,
    alerts: AlertsResource,
) -> Iterator[dg.MaterializeResult | dg.Output | dg.AssetCheckEvaluation]:
    """What is spiking: every keyword, entity and hashtag of a window against the same key's
    trailing 7 days (median baseline, MAD spread; no verdicts while history is under 4 hours).
    Computed in the run of its own window; spikes are named by the `no_spikes` check (WARN) and,
    when a webhook is configured, alerted once per window and key."""
    wh = warehouse.warehouse()
    alerter = alerts.alerter(lake.lake())
    now = datetime.now(UTC)
    days: dict[str, DayTotals] = defaultdict(DayTotals)
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"spikes": 0})
    sent = 0
    built = {
        window: rows
        for chunk in wp.chunked(run_windows(context))
        for window, rows in ip.build_spikes_windows(wh, chunk, now).items()
    }
    for window, rows in built.items():
        spikes = [r for r in rows if r["is_spike"]]
        day = day_key(window)
        days[day].add(len(rows), spikes=len(spikes))
        counts[day]["spikes"] += len(spikes)
        for s in spikes:
            found[day].append(
                {
                    "window": window_key(window),
                    "dimension": s["dimension"],
                    "key": s["key"],
                    "post_count": s["post_count"],
                    "baseline": s["baseline"],
                    "score": s["score"],
                    "reason": f"{window_key(window)} {s['dimension']} {s['key']}: "
                    f"{s['post_count']} posts vs {s['baseline']:.1f}",
                }
            )
        if alerter is not None and spikes and now - (window + WINDOW) <= ALERT_MAX_AGE:
            result = alerter.send(
                spikes,
                lambda s: ip.spike_posts(
                    wh, s["window_start"], s["dimension"], s["key"], POSTS_PER_ALERT
                ),
            )
            sent += len(result.sent)
            if result.failed:
                context.log.warning("spike alerts not delivered: %s", ", ".join(result.failed))
    _record_days(context, days, "rows")
    all_found = [f for day in found.values() for f in day]
    yield dg.MaterializeResult(
        metadata={
            "rows": sum(d.rows for d in days.values()),
            "spikes": len(all_found),
            "alerts_sent": sent,
            "spiking": dg.MetadataValue.md(_markdown(all_found, 20)),
        }
    )
    yield from _check(
        context,
        SPIKES_FOUND,
        found,
        "No keyword, entity or hashtag spiked.",
        counts,
        severity=dict.fromkeys(found, dg.AssetCheckSeverity.WARN),
    )


INSIGHT_ASSETS = [entity_metrics_15m, spikes_15m]
INSIGHT_DEFS = dg.Definitions.merge(
    dg.Definitions(
        assets=INSIGHT_ASSETS, resources={"alerts": alerts_resource(Settings.from_env())}
    ),
    ENGAGEMENT_DEFS,
)
