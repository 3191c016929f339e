"""The sentiment model's assets (issue 15): training set → model (checked: `beats_vader`) →
evaluation → promotion. Not partitioned: each materialization trains on the labelled tweets and
the lake's posts as they are now; the same data and seed give the same model version.

`beats_vader` is a blocking check on the model: a model that does not beat VADER on the held-out
split stops the run before its evaluation and promotion, so the consumer and the endpoint keep
the model they have. scikit-learn is imported inside the steps (`musicnft.model.pipeline`), so
loading the code location does not pay for it.
"""

from typing import Any

import dagster as dg

from musicnft.model.training_set import TRAINING_SET_KEY, build_training_set, read_training_set
from musicnft_dagster.resources import LakeResource


class ModelTrainingConfig(dg.Config):
    """Run configuration of the model step (the launchpad shows it)."""

    seed: int = 15
    cross_validation: bool = True
    max_unlabelled: int = 20_000


MODEL_GROUP = "sentiment_model"
OWNERS = ["team:data-engineering"]
COMMON: dict[str, Any] = {"group_name": MODEL_GROUP, "owners": OWNERS}


@dg.asset(**COMMON, kinds={"python"})
def sentiment_training_set(lake: LakeResource) -> dg.MaterializeResult:
    """The labelled tweets (3,200 human-rated, shipped with the project) and the distinct texts
    of the lake's newest posts (unlabelled: they adapt the model to this field's vocabulary),
    stored together in the lake for the model step."""
    training = build_training_set(lake.lake())
    return dg.MaterializeResult(
        metadata={
            "labelled_rows": len(training.gold),
            "labelled_sha256": training.gold.sha256,
            "unlabelled_posts": len(training.unlabelled),
            "lake_files_read": training.lake_files,
            "key": TRAINING_SET_KEY,
        }
    )


@dg.asset(
    **COMMON,
    deps=[sentiment_training_set],
    kinds={"scikitlearn"},
    check_specs=[
        dg.AssetCheckSpec(
            "beats_vader",
            asset="sentiment_model",
            blocking=True,
            description="The model beats VADER on the held-out split (Pearson r and macro-F1); "
            "a model that does not is never promoted.",
        )
    ],
)
def sentiment_model(
    context: dg.AssetExecutionContext, config: ModelTrainingConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """A ridge regression on word and character n-grams plus VADER's scores, fitted on the
    training split (self-trained on confident lake posts), evaluated on the held-out split and by
    5-fold cross-validation beside VADER, written as `models/sentiment/<version>/model.tar.gz`
    (SageMaker's layout, with its model card)."""
    from musicnft.model.pipeline import check_candidate, train_candidate
    from musicnft.model.train import TrainConfig

    the_lake = lake.lake()
    candidate = train_candidate(
        the_lake,
        read_training_set(the_lake),
        TrainConfig(seed=config.seed, max_unlabelled=config.max_unlabelled),
        cv=config.cross_validation,
    )
    ok, why = check_candidate(candidate)
    context.log.info("candidate %s: %s", candidate.version, why)
    held = candidate.card["metrics"]["held_out"]
    return dg.MaterializeResult(
        metadata={
            "version": candidate.version,
            "key": candidate.key,
            "model_pearson_r": held["model"]["pearson_r"],
            "vader_pearson_r": held["vader"]["pearson_r"],
            "model_macro_f1": held["model"]["macro_f1"],
            "vader_macro_f1": held["vader"]["macro_f1"],
            "features": candidate.card["features"],
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="beats_vader",
                passed=ok,
                severity=dg.AssetCheckSeverity.ERROR,
                description=why,
                metadata={"version": candidate.version},
            )
        ],
    )


@dg.asset(**COMMON, deps=[sentiment_model], kinds={"python"})
def sentiment_model_evaluation(lake: LakeResource) -> dg.MaterializeResult:
    """The exported artifact (the scorer the consumer and the endpoint run) on the held-out
    tweets, beside VADER and the cross-validation figures: `models/sentiment/<version>/evaluation.json`."""
    from musicnft.model.pipeline import evaluate_artifact, read_candidate, results_table

    the_lake = lake.lake()
    evaluation = evaluate_artifact(the_lake, read_training_set(the_lake), read_candidate(the_lake))
    return dg.MaterializeResult(
        metadata={
            "version": evaluation["version"],
            "results": dg.MetadataValue.md(results_table(evaluation)),
        }
    )


@dg.asset(**COMMON, deps=[sentiment_model, sentiment_model_evaluation], kinds={"s3"})
def sentiment_model_promoted(lake: LakeResource) -> dg.MaterializeResult:
    """The promotion pointer (`models/sentiment/promoted.json`) the consumer and the endpoint
    read: moved to the new model only when it passed `beats_vader`."""
    from musicnft.model.pipeline import promote_candidate, read_candidate

    the_lake = lake.lake()
    candidate = read_candidate(the_lake)
    key = promote_candidate(the_lake, candidate)
    return dg.MaterializeResult(metadata={"version": candidate.version, "pointer": key})


MODEL_ASSETS = [
    sentiment_training_set,
    sentiment_model,
    sentiment_model_evaluation,
    sentiment_model_promoted,
]
sentiment_model_job = dg.define_asset_job(
    "sentiment_model_training",
    selection=dg.AssetSelection.groups(MODEL_GROUP),
    description="Train, check (beats_vader), evaluate and promote the sentiment model.",
)
MODEL_JOBS = [sentiment_model_job]
