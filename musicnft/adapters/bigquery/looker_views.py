"""BigQuery views shaped for Looker Studio, one per kind of dashboard panel.

Why views: Looker Studio charts a data source row by row and aggregates with SUM/AVG/COUNT. The
aggregate tables store *averages* per 15-minute window (`avg_sentiment`, `avg_followers`), and the
average of averages is wrong once windows of different sizes are combined, so the views carry the
weighted sums (`sentiment_sum` / `sentiment_weight`, `followers_sum` / `followers_weight`) that
Looker can re-aggregate correctly: `SUM(sentiment_sum) / SUM(sentiment_weight)` is the dashboard's
post-weighted average sentiment over any date range. They also give columns friendly names, add
the hour and day of each window, build post links and turn arrays into what Looker can filter
(Looker Studio cannot use REPEATED fields).

Every view keeps `window_start` (or `hour`) as its date dimension, so one date-range control
drives every chart; filtering on `window_start` prunes the tables' day partitions. Views that have
a `keyword` column hold one row set per tracked keyword *and* one for `all`: filter `keyword` to one
value (default `all`) or a chart counts a post once per keyword it matched.

The views are plain SQL over the tables of `musicnft.contract.tables`: standard BigQuery SQL, also run by
the tests on the local BigQuery emulator. `render_views` is kept in `infra/bigquery/looker_views.sql`
(a test fails if it drifts); `view_ddl` is `CREATE OR REPLACE VIEW`, so applying it again is safe.
"""

from __future__ import annotations

from textwrap import dedent

from musicnft.adapters.bigquery.ddl import DEFAULT_DATASET

# Same threshold as the dashboard's fresh/stale indicator (dashboard/app.py: FRESH_MINUTES): the
# schedule refreshes every 15 minutes, plus one run's worth of slack.
FRESH_MINUTES = 20

# A link to the post on its platform, as `dashboard.queries.post_url` builds it in Python:
# x:<id> -> https://x.com/<handle or i/web>/status/<id>;
# bsky:at://<did>/<collection>/<rkey> -> https://bsky.app/profile/<did>/post/<rkey>; else NULL.
_POST_URL = """\
CASE
    WHEN STARTS_WITH(p.post_id, 'x:') AND LENGTH(p.post_id) > 2 THEN
      CONCAT('https://x.com/', COALESCE(NULLIF(p.author_handle, ''), 'i/web'), '/status/',
             SUBSTR(p.post_id, 3))
    WHEN STARTS_WITH(p.post_id, 'bsky:at://') THEN
      CONCAT('https://bsky.app/profile/', REGEXP_EXTRACT(p.post_id, '^bsky:at://([^/]*)'),
             '/post/',
             IF(REGEXP_CONTAINS(p.post_id, '^bsky:at://[^/]*/'),
                REGEXP_EXTRACT(p.post_id, '([^/]*)$'), ''))
  END"""

_ENGAGEMENT = (
    "COALESCE(p.reply_count, 0) + COALESCE(p.repost_count, 0) + COALESCE(p.like_count, 0)\n"
    "    + COALESCE(p.quote_count, 0)"
)

VIEWS: dict[str, str] = {
    # One row per window and keyword: the scorecards, the sentiment split and per-keyword volume at
    # the finest grain, so Looker's time series can pick any granularity from 15 minutes up.
    "looker_window_metrics": dedent("""\
        SELECT
          window_start,
          TIMESTAMP_TRUNC(window_start, HOUR) AS hour,
          DATE(window_start) AS day,
          keyword,
          post_count AS posts,
          unique_authors,
          avg_followers,
          avg_sentiment,
          positive_count AS positive,
          neutral_count AS neutral,
          negative_count AS negative,
          SAFE_DIVIDE(positive_count, post_count) AS positive_share,
          SAFE_DIVIDE(neutral_count, post_count) AS neutral_share,
          SAFE_DIVIDE(negative_count, post_count) AS negative_share,
          total_engagement AS engagement,
          avg_engagement_rate,
          repost_share,
          CAST(ROUND(repost_share * post_count) AS INT64) AS reposts,
          avg_followers * post_count AS followers_sum,
          IF(avg_followers IS NULL, 0, post_count) AS followers_weight,
          avg_sentiment * post_count AS sentiment_sum,
          IF(avg_sentiment IS NULL, 0, post_count) AS sentiment_weight,
          engagement_24h_posts,
          avg_engagement_24h,
          avg_engagement_24h * engagement_24h_posts AS engagement_24h_sum,
          updated_at
        FROM `{dataset}.window_metrics_15m`"""),
    # One row per hour and keyword: posts per hour and sentiment over time, as the dashboard's
    # `hourly` and `keyword_volume` compute them. Averages are weighted by posts; the sums and
    # weights are exposed too, so a chart that rolls hours up to days stays exact.
    "looker_hourly": dedent("""\
        WITH per_window AS (
          SELECT
            TIMESTAMP_TRUNC(window_start, HOUR) AS hour,
            keyword,
            window_start,
            post_count,
            positive_count,
            neutral_count,
            negative_count,
            total_engagement,
            repost_share * post_count AS reposts,
            avg_followers * post_count AS followers_sum,
            IF(avg_followers IS NULL, 0, post_count) AS followers_weight,
            avg_sentiment * post_count AS sentiment_sum,
            IF(avg_sentiment IS NULL, 0, post_count) AS sentiment_weight,
            updated_at
          FROM `{dataset}.window_metrics_15m`
        ),
        per_hour AS (
          SELECT
            hour,
            keyword,
            COUNT(*) AS window_count,
            MIN(IF(post_count > 0, window_start, NULL)) AS first_window,
            MAX(IF(post_count > 0, window_start, NULL)) AS last_window,
            CAST(SUM(post_count) AS INT64) AS posts,
            CAST(SUM(positive_count) AS INT64) AS positive,
            CAST(SUM(neutral_count) AS INT64) AS neutral,
            CAST(SUM(negative_count) AS INT64) AS negative,
            CAST(SUM(total_engagement) AS INT64) AS engagement,
            CAST(ROUND(SUM(reposts)) AS INT64) AS reposts,
            SUM(followers_sum) AS followers_sum,
            CAST(SUM(followers_weight) AS INT64) AS followers_weight,
            SUM(sentiment_sum) AS sentiment_sum,
            CAST(SUM(sentiment_weight) AS INT64) AS sentiment_weight,
            MAX(updated_at) AS updated_at
          FROM per_window
          GROUP BY hour, keyword
        )
        SELECT
          hour,
          DATE(hour) AS day,
          keyword,
          window_count,
          first_window,
          last_window,
          posts,
          positive,
          neutral,
          negative,
          SAFE_DIVIDE(positive, posts) AS positive_share,
          SAFE_DIVIDE(neutral, posts) AS neutral_share,
          SAFE_DIVIDE(negative, posts) AS negative_share,
          engagement,
          reposts,
          SAFE_DIVIDE(followers_sum, followers_weight) AS avg_followers,
          followers_sum,
          followers_weight,
          SAFE_DIVIDE(sentiment_sum, sentiment_weight) AS avg_sentiment,
          sentiment_sum,
          sentiment_weight,
          updated_at
        FROM per_hour"""),
    # One row per window, keyword and sentiment label: a Looker pie or stacked chart takes one
    # dimension and one metric, so the three counts of a window become three rows.
    "looker_sentiment": dedent("""\
        SELECT
          w.window_start,
          TIMESTAMP_TRUNC(w.window_start, HOUR) AS hour,
          DATE(w.window_start) AS day,
          w.keyword,
          s.sentiment,
          s.sentiment_order,
          s.posts
        FROM `{dataset}.window_metrics_15m` AS w
        CROSS JOIN UNNEST([
          STRUCT('positive' AS sentiment, 1 AS sentiment_order, w.positive_count AS posts),
          STRUCT('neutral' AS sentiment, 2 AS sentiment_order, w.neutral_count AS posts),
          STRUCT('negative' AS sentiment, 3 AS sentiment_order, w.negative_count AS posts)
        ]) AS s"""),
    # One row per window and hashtag: the hashtag cloud and ranking (SUM(posts) by hashtag).
    "looker_hashtags": dedent("""\
        SELECT
          window_start,
          TIMESTAMP_TRUNC(window_start, HOUR) AS hour,
          DATE(window_start) AS day,
          hashtag,
          CONCAT('#', hashtag) AS hashtag_label,
          post_count AS posts
        FROM `{dataset}.hashtag_counts_15m`"""),
    # One row per window and location: the top-locations bar chart (SUM(posts) by location).
    "looker_locations": dedent("""\
        SELECT
          window_start,
          TIMESTAMP_TRUNC(window_start, HOUR) AS hour,
          DATE(window_start) AS day,
          location,
          post_count AS posts
        FROM `{dataset}.location_counts_15m`"""),
    # One row per post and keyword ('all' plus each keyword it matched), so the same keyword
    # filter as the other panels picks posts as the dashboard does (matched_keywords contains
    # it). Engagement and the link are computed here: Looker sorts by `engagement` and shows
    # `url` as a hyperlink. IFNULL only matters off BigQuery, whose arrays are never NULL.
    "looker_top_posts": dedent("""\
        SELECT
          p.window_start,
          TIMESTAMP_TRUNC(p.window_start, HOUR) AS hour,
          DATE(p.window_start) AS day,
          keyword,
          p.post_id,
          p.platform,
          p.created_at,
          p.author_handle,
          p.author_followers,
          p.text,
          {url} AS url,
          ARRAY_TO_STRING(p.matched_keywords, ', ') AS keywords,
          ARRAY_TO_STRING(p.hashtags, ', ') AS hashtags,
          COALESCE(p.reply_count, 0) AS replies,
          COALESCE(p.repost_count, 0) AS reposts,
          COALESCE(p.like_count, 0) AS likes,
          COALESCE(p.quote_count, 0) AS quotes,
          {engagement} AS engagement,
          p.engagement_rate,
          p.sentiment_compound AS sentiment,
          p.sentiment_label,
          p.is_repost
        FROM `{{dataset}}.posts` AS p
        CROSS JOIN UNNEST(ARRAY_CONCAT(['all'], IFNULL(p.matched_keywords, ARRAY<STRING>[])))
          AS keyword""").format(url=_POST_URL, engagement=_ENGAGEMENT),
    # One row per window and NFT collection with sales: the "sales beside talk" charts (blend
    # with looker_window_metrics on window_start for the posts and sentiment). Averages re-
    # aggregate as SUM(volume_eth) / SUM(eth_priced_sales): only sales paid in ETH or WETH have
    # an ETH price, so `sales` (every sale) is not the average's weight.
    "looker_nft_sales": dedent("""\
        SELECT
          window_start,
          TIMESTAMP_TRUNC(window_start, HOUR) AS hour,
          DATE(window_start) AS day,
          collection,
          sale_count AS sales,
          volume_eth,
          avg_price_eth,
          max_price_eth,
          IFNULL(CAST(ROUND(SAFE_DIVIDE(volume_eth, avg_price_eth)) AS INT64), 0)
            AS eth_priced_sales,
          unique_buyers AS buyers,
          updated_at
        FROM `{dataset}.nft_sales_15m`"""),
    # Share of voice (issue 18): one row per window and mentioned entity, with the window's total
    # posts beside it. Sentiment re-aggregates as SUM(sentiment_sum) / SUM(sentiment_weight);
    # share of voice over a range is a "percent of total" of `posts` by entity in Looker.
    "looker_entities": dedent("""\
        SELECT
          e.window_start,
          TIMESTAMP_TRUNC(e.window_start, HOUR) AS hour,
          DATE(e.window_start) AS day,
          e.entity,
          e.post_count AS posts,
          e.unique_authors AS authors,
          e.avg_sentiment,
          IF(e.avg_sentiment IS NULL, 0.0, e.avg_sentiment * e.post_count) AS sentiment_sum,
          IF(e.avg_sentiment IS NULL, 0, e.post_count) AS sentiment_weight,
          e.positive_count AS positive,
          e.neutral_count AS neutral,
          e.negative_count AS negative,
          e.total_engagement AS engagement,
          w.post_count AS window_posts,
          SAFE_DIVIDE(e.post_count, w.post_count) AS share_of_voice,
          e.updated_at
        FROM `{dataset}.entity_metrics_15m` AS e
        LEFT JOIN `{dataset}.window_metrics_15m` AS w
          ON w.window_start = e.window_start AND w.keyword = 'all'"""),
    # What is spiking (issue 18): every scored key per window; filter is_spike = true for alerts.
    "looker_spikes": dedent("""\
        SELECT
          window_start,
          TIMESTAMP_TRUNC(window_start, HOUR) AS hour,
          DATE(window_start) AS day,
          dimension,
          key,
          post_count AS posts,
          baseline,
          SAFE_DIVIDE(post_count, NULLIF(baseline, 0)) AS ratio,
          score,
          is_spike,
          updated_at
        FROM `{dataset}.spikes_15m`"""),
    # Engagement re-read later (issue 18): per window and keyword, the engagement of its posts at
    # 1 h and 24 h; per post = SUM(engagement_24h) / SUM(read_24h) over any range.
    "looker_engagement": dedent("""\
        SELECT
          window_start,
          TIMESTAMP_TRUNC(window_start, HOUR) AS hour,
          DATE(window_start) AS day,
          keyword,
          post_count AS posts,
          read_1h,
          engagement_1h,
          read_24h,
          engagement_24h,
          updated_at
        FROM `{dataset}.engagement_15m`"""),
    # One row: when the aggregates were last written and which windows they cover (as the
    # dashboard's freshness indicator computes it), and whether the hot path was reconciled.
    "looker_freshness": dedent(f"""\
        WITH metrics AS (
          SELECT
            MAX(updated_at) AS last_updated,
            MIN(window_start) AS first_window,
            MAX(window_start) AS last_window
          FROM `{{dataset}}.window_metrics_15m`
          WHERE post_count > 0
        ),
        checks AS (
          SELECT
            COUNT(*) AS windows_checked,
            COUNTIF(missing > 0 OR duplicates > 0) AS windows_with_gaps,
            MAX(checked_at) AS last_checked_at,
            CAST(COALESCE(SUM(lake_count), 0) AS INT64) AS lake_posts,
            CAST(COALESCE(SUM(hot_count), 0) AS INT64) AS hot_posts,
            CAST(COALESCE(SUM(missing), 0) AS INT64) AS missing_total,
            CAST(COALESCE(SUM(duplicates), 0) AS INT64) AS duplicates_total,
            CAST(COALESCE(SUM(repaired), 0) AS INT64) AS repaired_total,
            CAST(COALESCE(SUM(GREATEST(
              COALESCE(missing, 0) + COALESCE(duplicates, 0) - COALESCE(repaired, 0), 0)), 0)
              AS INT64) AS unrepaired_total
          FROM `{{dataset}}.reconciliation_15m`
        )
        SELECT
          m.last_updated,
          m.first_window,
          m.last_window,
          TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), m.last_updated, MINUTE) AS minutes_since_update,
          CASE
            WHEN m.last_updated IS NULL THEN 'no data'
            WHEN TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), m.last_updated, SECOND) <= {FRESH_MINUTES * 60}
              THEN 'fresh'
            ELSE 'stale'
          END AS freshness,
          c.windows_checked,
          c.windows_with_gaps,
          c.last_checked_at,
          c.lake_posts,
          c.hot_posts,
          c.missing_total,
          c.duplicates_total,
          c.repaired_total,
          c.unrepaired_total,
          CASE
            WHEN c.windows_checked = 0 THEN 'not checked'
            WHEN c.unrepaired_total > 0 THEN 'unrepaired'
            ELSE 'reconciled'
          END AS reconciliation_status
        FROM metrics AS m
        CROSS JOIN checks AS c"""),
}

DESCRIPTIONS: dict[str, str] = {
    "looker_window_metrics": (
        "Looker Studio: per 15-minute window and keyword ('all' or a tracked one): posts, "
        "sentiment split and shares, engagement, and sums/weights for post-weighted averages; "
        "engagement at 24 h: SUM(engagement_24h_sum) / SUM(engagement_24h_posts)."
    ),
    "looker_hourly": (
        "Looker Studio: per hour and keyword: posts, sentiment split, post-weighted average "
        "sentiment and followers (with their sums and weights, to re-aggregate exactly)."
    ),
    "looker_sentiment": (
        "Looker Studio: posts per 15-minute window, keyword and sentiment label "
        "(positive/neutral/negative), for the sentiment breakdown and sentiment over time."
    ),
    "looker_hashtags": "Looker Studio: posts per hashtag per 15-minute window (cloud, ranking).",
    "looker_locations": "Looker Studio: posts per author location per 15-minute window.",
    "looker_top_posts": (
        "Looker Studio: reconciled posts, one row per keyword ('all' + matched keywords), with "
        "engagement (reply+repost+like+quote), sentiment and a link to the post."
    ),
    "looker_nft_sales": (
        "Looker Studio: NFT sales per 15-minute window and collection: sales, ETH volume, "
        "average and highest ETH price (ETH/WETH sales), buyers; blend on window_start."
    ),
    "looker_entities": (
        "Looker Studio: share of voice per 15-minute window and entity (entities file): posts, "
        "authors, sentiment split and sums/weights, engagement, and the window's total posts."
    ),
    "looker_spikes": (
        "Looker Studio: per 15-minute window, keyword/entity/hashtag volume against its robust "
        "7-day baseline (median), score (MAD z-score) and whether it is a spike."
    ),
    "looker_engagement": (
        "Looker Studio: per 15-minute window and keyword: posts re-read at 1 h and 24 h after "
        "posting and their engagement then (replies+reposts+likes+quotes)."
    ),
    "looker_freshness": (
        "Looker Studio: one row: last update and covered windows of the aggregates, fresh/stale "
        "(20 minutes), and reconciliation totals (missing, duplicates, repaired)."
    ),
}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def view_select(name: str, dataset: str = DEFAULT_DATASET) -> str:
    """The view's SELECT with its tables qualified by `dataset`."""
    return VIEWS[name].format(dataset=dataset)


def view_ddl(name: str, dataset: str = DEFAULT_DATASET) -> str:
    """`CREATE OR REPLACE VIEW` for one view (idempotent: applying it again only replaces it)."""
    return (
        f"CREATE OR REPLACE VIEW `{dataset}.{name}`\n"
        f"OPTIONS(description={_quote(DESCRIPTIONS[name])})\n"
        f"AS\n{view_select(name, dataset)}"
    )


def render_views(dataset: str = DEFAULT_DATASET) -> str:
    """The whole `infra/bigquery/looker_views.sql`."""
    header = (
        "-- Generated by `musicnft bigquery ddl` from musicnft/adapters/bigquery/looker_views.py; do not edit by\n"
        "-- hand. Applied (idempotently, after the tables) by `musicnft bigquery migrate`.\n"
        "-- Views shaped for Looker Studio: see docs/looker_studio.md.\n"
    )
    return header + "\n\n".join(view_ddl(name, dataset) + ";" for name in VIEWS) + "\n"
