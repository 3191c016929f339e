"""The README's table of the model's numbers is what training gives (default seed, the labelled
file, no lake posts: `musicnft model train` on an empty lake)."""

from __future__ import annotations

import pytest

from musicnft.model.gold import load_gold
from musicnft.model.pipeline import results_table
from musicnft.model.train import TrainConfig, train
from tests.support.paths import ROOT

pytestmark = pytest.mark.slow


def test_readme_table_holds_the_trained_models_numbers() -> None:
    result = train(load_gold(), [], TrainConfig(), cv=True)
    table = results_table(
        {"held_out": result.held_out, "cross_validation": result.cross_validation}
    )
    readme = (ROOT / "README.md").read_text()
    assert table in readme, f"README's sentiment model table should read:\n{table}"
    # and the figures beat VADER's in every column
    ho = result.held_out
    assert ho["model"]["pearson_r"] > ho["vader"]["pearson_r"]
    assert ho["model"]["macro_f1"] > ho["vader"]["macro_f1"]
