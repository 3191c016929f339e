"""infra/ uses Glue columns generated from the one post schema; the checked-in copy must not drift."""

from __future__ import annotations

import json

from musicnft.contract.schema import POST_FIELDS, glue_columns
from tests.support.paths import ROOT


def test_checked_in_glue_columns_match_the_post_schema() -> None:
    path = ROOT / "infra" / "glue" / "post_columns.json"
    assert json.loads(path.read_text()) == glue_columns(), (
        "regenerate with: musicnft schema > infra/glue/post_columns.json"
    )
    assert [c["Name"] for c in glue_columns()] == [f.name for f in POST_FIELDS]
