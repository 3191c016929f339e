"""`musicnft run --fresh` starts from nothing: every store of the previous run is removed."""

from __future__ import annotations

import argparse
from pathlib import Path

from musicnft.app.supervisor import Supervisor
from musicnft.settings import Settings


def test_fresh_removes_every_store_including_kinesis_checkpoints(tmp_path: Path) -> None:
    # GIVEN a data directory left by a cloud-profile run: Kinesis checkpoints of a stream that
    # no longer exists would make the new stream's readers skip its first records
    settings = Settings().with_data_dir(tmp_path)
    stores = [
        settings.stream_path,
        settings.checkpoint_path,
        settings.spool_path,
        settings.lake_dir / "raw" / "x.parquet",
        settings.warehouse_dir / "posts_hot" / "p.parquet",
        settings.dead_letter_dir / "consumer.jsonl",
        tmp_path / "dagster" / "runs.db",
    ]
    for path in stores:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("old")
    keep = tmp_path / "x" / "x_usage.json"
    keep.parent.mkdir()
    keep.write_text("{}")
    # WHEN a fresh run starts
    Supervisor(settings, argparse.Namespace(fresh=True))._fresh()
    # THEN none of them is left (the X spend record is kept: it is money, not pipeline state)
    assert [p for p in stores if p.exists()] == []
    assert keep.exists()
