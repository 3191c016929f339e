"""The model on the cloud profile's lake: the training set reads posts from S3 (moto server on
127.0.0.1), the artifact and pointer go to S3, and the consumer's promoted scoring reads them
back (no pointer yet: no model, never an error)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from musicnft import wiring
from musicnft.adapters.s3_lake import S3Lake
from musicnft.hotpath.model_artifact import PROMOTED_KEY, read_pointer
from musicnft.hotpath.model_scoring import PromotedScoring
from musicnft.model.pipeline import evaluate_artifact, promote_candidate, train_candidate
from musicnft.model.train import TrainConfig
from musicnft.model.training_set import build_training_set, read_training_set
from musicnft.settings import Settings
from tests.support.aws import client, moto_server
from tests.support.model_lake import build_model_lake

pytestmark = pytest.mark.slow
BUCKET = "musicnft-lake"


def test_train_promote_and_score_through_s3(tmp_path: Path) -> None:
    with moto_server() as url:
        client("s3", url).create_bucket(Bucket=BUCKET)
        lake = S3Lake(BUCKET, endpoint_url=url)
        local = build_model_lake(tmp_path / "local", posts_per_file=20, files=2)
        for key in local.list("raw/"):
            lake.put(key, local.get(key))
        settings = Settings(
            profile="cloud", lake_backend="s3", s3_bucket=BUCKET, aws_endpoint_url=url
        )
        scoring = wiring.model_scoring(settings)
        assert isinstance(scoring, PromotedScoring)
        assert read_pointer(lake) is None
        assert scoring.score(["great"], [(0.0, 0.2, 0.8, 0.6)]) == [None]

        training = build_training_set(lake)
        assert training.lake_files == 2 and len(training.unlabelled) == 40
        candidate = train_candidate(lake, read_training_set(lake), TrainConfig(), cv=False)
        evaluation = evaluate_artifact(lake, training, candidate)
        promote_candidate(lake, candidate)
        assert read_pointer(lake)["version"] == candidate.version  # type: ignore[index]
        assert evaluation["held_out"]["model"] == candidate.card["metrics"]["held_out"]["model"]
        with tarfile.open(fileobj=io.BytesIO(lake.get(candidate.key)), mode="r:gz") as tar:
            assert sorted(tar.getnames()) == ["model.json", "model_card.json"]
        assert lake.get(PROMOTED_KEY)

        fresh = wiring.model_scoring(settings)
        assert isinstance(fresh, PromotedScoring)
        (result,) = fresh.score(["what a great song"], [(0.0, 0.423, 0.577, 0.6249)])
        assert result is not None and result[1] == "positive" and result[2] == candidate.version
