"""The sentiment model's assets in Dagster: a good model is trained, checked, evaluated and
promoted; a model worse than VADER fails the blocking `beats_vader` check, and the run stops
before promotion (the pointer keeps the model it had)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import dagster as dg
import pytest

from musicnft.hotpath.model_artifact import PROMOTED_KEY
from musicnft.model import train as train_module
from musicnft_dagster.assets.sentiment_model import MODEL_ASSETS
from musicnft_dagster.definitions import defs
from musicnft_dagster.resources import LocalLakeResource
from tests.support.model_lake import build_model_lake

pytestmark = pytest.mark.slow

RUN_CONFIG = dg.RunConfig(ops={"sentiment_model": {"config": {"cross_validation": False}}})


def _materialize(root: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        MODEL_ASSETS,
        resources={"lake": LocalLakeResource(root=str(root))},
        run_config=RUN_CONFIG,
        raise_on_error=False,
    )


def test_definitions_hold_the_model_assets_check_and_job() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "sentiment_training_set",
        "sentiment_model",
        "sentiment_model_evaluation",
        "sentiment_model_promoted",
    } <= keys
    check = dg.AssetCheckKey(dg.AssetKey("sentiment_model"), "beats_vader")
    assert graph.get_check_spec(check).blocking
    assert defs.resolve_job_def("sentiment_model_training") is not None


def test_a_model_that_beats_vader_is_promoted(tmp_path: Path) -> None:
    lake = build_model_lake(tmp_path / "lake")
    result = _materialize(tmp_path / "lake")
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("beats_vader", True)]
    model_meta = result.asset_materializations_for_node("sentiment_model")[0].metadata
    version = model_meta["version"].value
    assert model_meta["model_pearson_r"].value > model_meta["vader_pearson_r"].value
    pointer = json.loads(lake.get(PROMOTED_KEY))
    assert pointer["version"] == version
    evaluation = json.loads(lake.get(f"models/sentiment/{version}/evaluation.json"))
    assert evaluation["held_out"]["model"] == evaluation["held_out_sklearn"]  # export is exact


def test_beats_vader_blocks_a_worse_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = build_model_lake(tmp_path / "lake")
    assert _materialize(tmp_path / "lake").success
    promoted_before = lake.get(PROMOTED_KEY)

    real_fit = train_module.fit

    def fit_on_shuffled_ratings(texts, targets, unlabelled, config):  # type: ignore[no-untyped-def]
        shuffled = list(targets)
        random.Random(0).shuffle(shuffled)  # labels that carry no signal: a worse model
        return real_fit(texts, shuffled, unlabelled, config)

    monkeypatch.setattr(train_module, "fit", fit_on_shuffled_ratings)
    result = _materialize(tmp_path / "lake")
    assert not result.success
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("beats_vader", False)]
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "sentiment_model" in materialized
    assert "sentiment_model_promoted" not in materialized
    assert "sentiment_model_evaluation" not in materialized
    assert lake.get(PROMOTED_KEY) == promoted_before  # the consumer keeps the model it had
