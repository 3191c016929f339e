"""An embedded chaos driver over nothing: for tests of its bookkeeping (replay budget, run kills)
with its process-starting steps replaced."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from musicnft.devtools.chaos import EmbeddedChaos, Expected


def idle_driver(tmp_path: Path) -> EmbeddedChaos:
    """100 valid posts in the hour from 2021-12-01T00:00Z; 2 stream kills and 1 run kill planned."""
    return EmbeddedChaos(
        sample=tmp_path / "sample.jsonl",
        expected=Expected(
            valid=100,
            first=datetime(2021, 12, 1, tzinfo=UTC),
            last=datetime(2021, 12, 1, 1, tzinfo=UTC),
        ),
        data_dir=tmp_path / "data",
        kills=2,
        seed=1,
        speed="max",
        log_path=tmp_path / "chaos.log",
        batch_kills=1,
    )
