"""`scored_posts` (issue 16): the Spark scoring job over the lake's `raw/` drops, once
(`--available-now`): every new post scored with VADER and the promoted sentiment model into
`scored/YYYY/MM/DD/HH/`, each post once, its checkpoint under `checkpoints/spark-score/`.

Where it runs is the `spark_scoring` resource's business (`musicnft_dagster/spark_resources.py`):
on this machine through dagster-pyspark in the embedded profile, on the stack's EMR Serverless
application through Dagster Pipes in the cloud profile. Not partitioned: the stream's checkpoint
knows which files it has read, so a run takes exactly the files that arrived since the last one.
"""

import dagster as dg

from musicnft_dagster.spark_resources import ScoredPostsConfig, SparkScoringRunner

SCORING_GROUP = "spark_scoring"


@dg.asset(
    group_name=SCORING_GROUP,
    owners=["team:data-engineering"],
    kinds={"spark", "parquet"},
    pool="spark",
)
def scored_posts(
    context: dg.AssetExecutionContext, config: ScoredPostsConfig, spark_scoring: SparkScoringRunner
) -> dg.MaterializeResult:
    """Posts scored by Spark (VADER and the promoted model) under the lake's `scored/`: one row
    per post (`post_id, created_at, sentiment_compound, model_score, model_label, model_version,
    scored_at`). A run scores the lake files that arrived since the last run and stops;
    `rescore` re-scores all history under a new model version into a new output version. The
    metadata says how many rows it wrote, in how many micro-batches, with which model, where."""
    return spark_scoring.score(context, config)


SCORING_ASSETS = [scored_posts]
scored_posts_job = dg.define_asset_job(
    "spark_scoring",
    selection=dg.AssetSelection.assets(scored_posts),
    description="Score the lake's new posts with Spark (available-now) into scored/.",
)
SCORING_DEFS = dg.Definitions(assets=SCORING_ASSETS, jobs=[scored_posts_job])
