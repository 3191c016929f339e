"""posts_hot's small files are merged on a thread beside the consumer: the merge happens while
batches keep landing, no batch waits for it or is lost to it, and a stop ends it promptly."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.schema import HOT_FIELDS, conform
from musicnft.hotpath.enrich import enrich
from musicnft.local.compaction import BackgroundCompaction


def _rows(first: int, n: int) -> list[dict]:
    posts = [
        {
            "post_id": f"x:{i}",
            "platform": "x",
            "created_at": "2026-11-30T12:00:00Z",
            "ingested_at": "2026-11-30T12:00:01Z",
            "text": f"post {i} about #NFT music",
            "schema_version": 1,
        }
        for i in range(first, first + n)
    ]
    return [conform(enrich(conform(p)), HOT_FIELDS) for p in posts]


def test_small_files_are_merged_while_batches_keep_landing(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    consumer = EmbeddedWarehouse(root)
    for b in range(40):  # a consumer's first minutes: one small file per batch
        rows = _rows(b * 10, 10)
        consumer.insert_rows("posts_hot", rows, [r["post_id"] for r in rows])
    assert len(consumer.files("posts_hot")) >= 40
    stop = threading.Event()
    compaction = BackgroundCompaction(lambda: EmbeddedWarehouse(root), stop, interval=0.05).start()
    # WHEN batches keep landing on the consumer's own connection meanwhile
    first = 400
    deadline = time.monotonic() + 60
    while compaction.merged == 0 and time.monotonic() < deadline:
        rows = _rows(first, 10)
        consumer.insert_rows("posts_hot", rows, [r["post_id"] for r in rows])
        first += 10
    stop.set()
    started = time.monotonic()
    compaction.join(timeout=30)
    # THEN the files were merged, every row is there once, and the stop ended the thread
    assert compaction.merged >= 32
    assert time.monotonic() - started < 30
    assert len(consumer.files("posts_hot")) < 40
    counts = consumer.query(
        "SELECT count(*) AS n, count(DISTINCT post_id) AS u FROM posts_hot"
    ).to_pylist()[0]
    assert counts == {"n": first, "u": first}


def test_a_failing_merge_is_logged_and_tried_again(tmp_path: Path) -> None:
    calls: list[str] = []

    class Flaky:
        def compact(self, table: str) -> int:
            calls.append(table)
            if len(calls) == 1:
                raise RuntimeError("catalog busy")
            return 0

    stop = threading.Event()
    compaction = BackgroundCompaction(Flaky, stop, interval=0.01).start()
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    compaction.join(timeout=5)
    assert calls[:3] == ["posts_hot"] * 3
