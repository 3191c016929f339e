"""Crash safety: kill -9 the delivery and the consumer mid-run, restart them, nothing is lost; and
kill -9 the warehouse at every statement of an insert, a window replacement and a maintenance run:
no row is lost or counted twice."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.adapters.local_stream import LocalStream
from musicnft.contract.schema import ENRICHED_FIELDS, conform
from musicnft.contract.tables import TABLES
from musicnft.contract.windows import window_key
from musicnft.devtools.sample import write_sample
from musicnft.hotpath.enrich import enrich
from tests.support.expectations import expected_from
from tests.support.paths import cli

pytestmark = pytest.mark.slow


def _lake_ids(data_dir: Path) -> list[str]:
    ids: list[str] = []
    for path in (data_dir / "lake" / "raw").rglob("*.parquet"):
        ids += pq.read_table(path, columns=["post_id"]).column(0).to_pylist()
    return ids


def _hot_ids(data_dir: Path) -> list[str]:
    wh = EmbeddedWarehouse(data_dir / "warehouse", read_only=True)
    try:
        return wh.query("SELECT post_id FROM posts_hot").column(0).to_pylist()
    finally:
        wh.close()


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


# ---- the warehouse, killed at every statement --------------------------------------------------

WINDOW = datetime(2021, 12, 1, tzinfo=UTC)
ROWS_PER_WINDOW = 5


def _post(i: int) -> dict:
    post = {
        "post_id": f"x:{i}",
        "platform": "x",
        "created_at": "2021-12-01T00:00:00Z",
        "ingested_at": "2021-12-01T00:00:01Z",
        "text": f"post {i} about #NFT music",
        "author_followers": 10,
        "schema_version": 1,
    }
    return conform(enrich(conform(post)), ENRICHED_FIELDS)


def _insert(wh: EmbeddedWarehouse, ids: range) -> None:
    rows = [_post(i) for i in ids]
    wh.insert_rows("posts_hot", rows, [r["post_id"] for r in rows])


def _window(version: int) -> pa.Table:
    rows = [
        {"window_start": WINDOW, "hashtag": f"tag{i}", "post_count": version}
        for i in range(ROWS_PER_WINDOW)
    ]
    return pa.Table.from_pylist(rows, schema=TABLES["hashtag_counts_15m"])


def _operation(wh: EmbeddedWarehouse, op: str) -> None:
    if op == "insert":
        _insert(wh, range(100, 120))
    elif op == "replace":
        wh.replace_partition("hashtag_counts_15m", window_key(WINDOW), _window(2))
    else:
        wh.maintain(retention=timedelta(0))


def _child(root: str, op: str, kill_at: int | None, report: str) -> None:
    """Run `op`, SIGKILLing this process before (even `kill_at`) or after (odd) statement
    `kill_at // 2` of the warehouse; without `kill_at`, write how many statements it ran."""
    ran = [0]
    real = EmbeddedWarehouse._exec

    def hooked(self, con, sql, params=None):  # type: ignore[no-untyped-def]
        if kill_at == 2 * ran[0]:
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(self, con, sql, params)
        if kill_at == 2 * ran[0] + 1:
            os.kill(os.getpid(), signal.SIGKILL)
        ran[0] += 1
        return result

    EmbeddedWarehouse._exec = hooked  # type: ignore[method-assign]
    _operation(EmbeddedWarehouse(Path(root)), op)
    Path(report).write_text(str(ran[0]))


def _base(root: Path) -> None:
    """100 posts in 10 inserts, and version 1 of one window written twice (a delete file)."""
    wh = EmbeddedWarehouse(root)
    for b in range(10):
        _insert(wh, range(b * 10, b * 10 + 10))
    for _ in range(2):
        wh.replace_partition("hashtag_counts_15m", window_key(WINDOW), _window(1))
    wh.close()


def _state(root: Path) -> tuple[int, int, list[tuple[int, int]]]:
    wh = EmbeddedWarehouse(root, read_only=True)
    try:
        hot = wh.query("SELECT count(*) AS n, count(DISTINCT post_id) AS u FROM posts_hot")
        window = wh.query(
            "SELECT post_count, count(*) AS n FROM hashtag_counts_15m GROUP BY 1 ORDER BY 1"
        ).to_pylist()
    finally:
        wh.close()
    n, u = hot.to_pylist()[0].values()
    return n, u, [(r["post_count"], r["n"]) for r in window]


def _run_child(root: Path, op: str, kill_at: int | None, report: Path) -> int | None:
    # fork: the parent holds no DuckDB connection here (every helper closes its own)
    ctx = mp.get_context("fork")
    proc = ctx.Process(target=_child, args=(str(root), op, kill_at, str(report)))
    proc.start()
    proc.join(120)
    return proc.exitcode


@pytest.mark.parametrize("op", ["insert", "replace", "maintain"])
def test_kill_9_at_every_statement_of_a_warehouse_write_loses_and_doubles_nothing(
    tmp_path: Path, op: str
) -> None:
    base = tmp_path / "base"
    _base(base)
    assert _state(base) == (100, 100, [(1, ROWS_PER_WINDOW)])
    done = {
        "insert": (120, 120, [(1, ROWS_PER_WINDOW)]),
        "replace": (100, 100, [(2, ROWS_PER_WINDOW)]),
        "maintain": (100, 100, [(1, ROWS_PER_WINDOW)]),
    }[op]
    # GIVEN how many statements the operation runs when nothing goes wrong
    report = tmp_path / "report"
    dry = tmp_path / "dry"
    shutil.copytree(base, dry)
    assert _run_child(dry, op, None, report) == 0
    statements = int(report.read_text())
    assert statements >= 4
    assert _state(dry) == done
    for kill_at in range(2 * statements):
        root = tmp_path / f"kill-{kill_at}"
        shutil.copytree(base, root)
        # WHEN the process is killed before or after one of its statements
        assert _run_child(root, op, kill_at, report) == -signal.SIGKILL
        # THEN the tables are as before the operation or as after it, never in between
        assert _state(root) in ((100, 100, [(1, ROWS_PER_WINDOW)]), done), kill_at
        # AND the operation run again (a redelivery, the next run) ends exactly where it should
        wh = EmbeddedWarehouse(root)
        _operation(wh, op)
        wh.close()
        assert _state(root) == done, kill_at
        shutil.rmtree(root)


def _batch_loop(root: str, batches: int) -> None:
    """Insert batches of ten posts, skipping those already there (how a consumer resumes)."""
    wh = EmbeddedWarehouse(Path(root))
    present = set(wh.query("SELECT post_id FROM posts_hot").column(0).to_pylist())
    for b in range(batches):
        if f"x:{b * 10}" in present:
            continue
        _insert(wh, range(b * 10, b * 10 + 10))
        if b % 5 == 4:
            wh.compact("posts_hot", min_files=5)


def _hot_count(root: Path) -> int:
    wh = EmbeddedWarehouse(root, read_only=True)
    try:
        return wh.count("posts_hot")
    finally:
        wh.close()


def test_kill_9_after_random_delays_keeps_every_batch_whole_and_single(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    EmbeddedWarehouse(root).close()
    ctx = mp.get_context("spawn")
    rnd = random.Random(21)
    batches = 120
    progress = []
    for _ in range(6):
        # WHEN an inserting (and merging) process is killed at a random moment once it has made
        # progress (polling, not a fixed delay: a loaded machine may take seconds to start it)
        start = _hot_count(root)
        proc = ctx.Process(target=_batch_loop, args=(str(root), batches))
        proc.start()
        deadline = time.monotonic() + 180
        while _hot_count(root) == start and proc.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rnd.uniform(0.0, 0.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        # THEN every batch is all there or not at all, and no row is there twice
        wh = EmbeddedWarehouse(root, read_only=True)
        per_batch = wh.query(
            "SELECT CAST(split_part(post_id, ':', 2) AS INTEGER) // 10 AS b, count(*) AS n "
            "FROM posts_hot GROUP BY b"
        ).to_pylist()
        assert all(r["n"] == 10 for r in per_batch), per_batch
        progress.append(len(per_batch))
        wh.close()
    assert any(0 < n < batches for n in progress), progress  # killed mid-run, not before or after
    proc = ctx.Process(target=_batch_loop, args=(str(root), batches))
    proc.start()
    proc.join(300)
    assert proc.exitcode == 0
    wh = EmbeddedWarehouse(root, read_only=True)
    assert wh.count("posts_hot") == wh.count("posts_hot", distinct="post_id") == batches * 10
