"""Crash safety: kill -9 the delivery and the consumer mid-run, restart them, nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from musicnft.adapters.local_lake import LocalLake
from musicnft.adapters.local_stream import LocalStream
from musicnft.devtools.sample import write_sample
from tests.support.expectations import expected_from
from tests.support.paths import cli

pytestmark = pytest.mark.slow


def _lake_ids(data_dir: Path) -> list[str]:
    ids: list[str] = []
    for path in (data_dir / "lake" / "raw").rglob("*.parquet"):
        ids += pq.read_table(path, columns=["post_id"]).column(0).to_pylist()
    return ids


def _hot_ids(data_dir: Path) -> list[str]:
    ids: list[str] = []
    for path in (data_dir / "warehouse" / "posts_hot").glob("*.parquet"):
        ids += pq.read_table(path, columns=["post_id"]).column(0).to_pylist()
    return ids


def _checkpoint(data_dir: Path, reader: str) -> int:
    with LocalStream(data_dir / "stream" / "musicnft-posts.sqlite", readers=()) as s:
        return s.checkpoint(reader)


def test_kill_9_delivery_and_consumer_mid_run_loses_nothing(
    tmp_path: Path, data_dir: Path, cli_env: dict[str, str]
) -> None:
    # GIVEN a replay of 6,000 lines already on the stream
    sample = tmp_path / "sample.jsonl"
    write_sample(sample, lines=6000, seed=7)
    expected = expected_from(sample)
    env = dict(cli_env)
    env["MUSICNFT_DELIVERY_BUFFER_BYTES"] = "40000"  # many small files: many chances to die
    env["MUSICNFT_DELIVERY_BUFFER_SECONDS"] = "0.2"
    env["MUSICNFT_CONSUMER_BATCH_SIZE"] = "25"
    subprocess.run(cli("produce", "--file", str(sample)), env=env, check=True, capture_output=True)
    total = len(expected.posts)

    # WHEN delivery and consumer are each killed with SIGKILL three times, mid-run (each as soon
    # as it has committed progress, while work remains)
    kills = 0
    for _round in range(3):
        procs = {
            "delivery": subprocess.Popen(cli("deliver"), env=env, stderr=subprocess.DEVNULL),
            "consumer": subprocess.Popen(cli("consume"), env=env, stderr=subprocess.DEVNULL),
        }
        start = {name: _checkpoint(data_dir, name) for name in procs}
        deadline = time.monotonic() + 120
        while procs and time.monotonic() < deadline:
            for name in list(procs):
                if _checkpoint(data_dir, name) > start[name]:
                    os.kill(procs[name].pid, signal.SIGKILL)
                    procs.pop(name).wait()
                    kills += 1
                    assert _checkpoint(data_dir, name) < total, f"{name} finished before the kill"
            time.sleep(0.01)
        assert not procs, "a process made no progress"

    # THEN restarted, they finish, and the lake and warehouse hold every valid post
    subprocess.run(cli("deliver", "--once"), env=env, check=True, capture_output=True)
    subprocess.run(cli("consume", "--once"), env=env, check=True, capture_output=True)
    assert kills == 6
    lake_ids = _lake_ids(data_dir)
    hot_ids = _hot_ids(data_dir)
    assert set(lake_ids) == set(expected.ids)
    assert set(hot_ids) == set(expected.ids)
    # At-least-once: a crash may repeat a file's records, never drop one.
    assert len(lake_ids) >= total
    # A file half-written when the process died is never visible to lake readers.
    listed = list(LocalLake(data_dir / "lake").list("raw/"))
    assert listed and all(key.endswith(".parquet") for key in listed)
    for key in listed:
        pq.read_metadata(data_dir / "lake" / key)  # every listed file is a complete Parquet file
