"""Deleted posts inside quarantined lake files (issue 19, gap 3).

GIVEN a lake file the windows quarantined, WHEN a post in it is deleted at the source, THEN the
purge rewrites the file without the post when it can read it at all; when it cannot, the deletion
stays visible as pending (`musicnft status --json`: `deleted_pending`, `deleted_blocked` naming
the file and why; the Dagster check fails naming it) until the file is repaired and
`musicnft deletions redrive` puts it back in play and purges it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.app.deletions import redrive_quarantined
from musicnft.batch import deletions
from musicnft.batch.lake_index import LakeIndex
from musicnft.contract.lake_layout import raw_key
from musicnft.contract.schema import POST_SCHEMA, to_table
from musicnft_dagster.assets.deletions import visibility_check
from tests.batch.test_deletions import NOW, WINDOW, post, tomb
from tests.support.paths import ROOT


def parquet(posts: list[dict[str, Any]], drop: str | None = None) -> bytes:
    table = to_table(posts, POST_SCHEMA)
    if drop:
        table = table.drop_columns([drop])
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def quarantined_file(lake: LocalLake, wh: EmbeddedWarehouse, data: bytes, reason: str) -> str:
    key = raw_key("musicnft-posts", NOW, reason.split()[0])
    lake.put(key, data)
    LakeIndex(wh).quarantine(key, reason)
    return key


def lake_ids(lake: LocalLake, key: str) -> list[str]:
    return pq.read_table(lake.root / key).column("post_id").to_pylist()


@pytest.fixture
def env(tmp_path: Path) -> tuple[LocalLake, EmbeddedWarehouse]:
    return LocalLake(tmp_path / "data" / "lake"), EmbeddedWarehouse(tmp_path / "data" / "warehouse")


def test_a_readable_quarantined_file_is_rewritten_without_the_deleted_post(env: Any) -> None:
    lake, wh = env
    p1, p2 = post(1), post(2)
    # quarantined by the windows: a required column is missing, but the file reads
    key = quarantined_file(lake, wh, parquet([p1, p2], drop="text"), "missing: text")
    deletions.record_tombstones(wh, lake, [tomb(p1["post_id"])])
    assert deletions.status_counts(wh, lake)["deleted_pending"] == 1
    result = deletions.apply_deletions(lake, wh)
    assert result.files_rewritten == [key] and not result.files_blocked
    assert lake_ids(lake, key) == [p2["post_id"]]
    assert "text" not in pq.read_table(lake.root / key).column_names  # only the post went
    assert deletions.quarantined_post_files(wh) == {key: "missing: text"}  # still quarantined
    assert deletions.status_counts(wh, lake) == {
        "deleted": 1,
        "deleted_pending": 0,
        "deleted_blocked_files": 0,
        "deleted_blocked": [],
    }
    assert visibility_check(wh, lake).passed


def test_an_unreadable_quarantined_file_blocks_until_repaired_and_redriven(env: Any) -> None:
    lake, wh = env
    p3, p4 = post(3), post(4, author="43")
    good = parquet([p3, p4])
    key = quarantined_file(lake, wh, good[: len(good) // 2], "corrupt: footer")  # truncated
    deletions.record_tombstones(wh, lake, [tomb(p3["post_id"])])
    # WHEN the purge pass and the daily sweep run
    result = deletions.apply_deletions(lake, wh)
    sweep = deletions.apply_deletions(lake, wh, full_scan=True)
    # THEN the deletion is reported as blocked by that file, with the reason
    for r in (result, sweep):
        assert list(r.files_blocked) == [key]
        assert "post ids cannot be read" in r.files_blocked[key]
    status = deletions.status_counts(wh, lake)
    assert (status["deleted"], status["deleted_pending"], status["deleted_blocked_files"]) == (
        1,
        1,
        1,
    )
    assert status["deleted_blocked"][0]["key"] == key
    assert "corrupt: footer" in status["deleted_blocked"][0]["reason"]
    assert "musicnft deletions redrive" in status["deleted_blocked"][0]["reason"]
    check = visibility_check(wh, lake)
    assert not check.passed and key in str(check.metadata["blocked"])
    # a redrive before the repair changes nothing and says why
    early = redrive_quarantined(lake, wh)
    assert not early.ok and early.released == [] and list(early.still_quarantined) == [key]
    # WHEN the file is repaired (restored from a copy) and redriven
    lake.put(key, good)
    report = redrive_quarantined(lake, wh)
    # THEN it leaves quarantine, loses the deleted post, and nothing is pending
    assert report.ok and report.released == [key]
    assert report.purge is not None and key in report.purge.files_rewritten
    assert lake_ids(lake, key) == [p4["post_id"]]
    assert deletions.quarantined_post_files(wh) == {}
    assert WINDOW in report.windows  # its surviving posts count in their window now
    assert deletions.status_counts(wh, lake)["deleted_pending"] == 0
    assert visibility_check(wh, lake).passed


def test_status_and_redrive_through_the_cli(tmp_path: Path, env: Any) -> None:
    lake, wh = env
    p5 = post(5)
    good = parquet([p5])
    key = quarantined_file(lake, wh, b"not parquet", "unreadable: not Parquet")
    deletions.record_tombstones(wh, lake, [tomb(p5["post_id"])])
    wh.close()
    env_vars = {
        "MUSICNFT_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "musicnft", *args],
            env=env_vars,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )

    status = json.loads(run("status", "--json").stdout)
    assert status["deleted_pending"] == 1 and status["deleted_blocked_files"] == 1
    assert status["deleted_blocked"][0]["key"] == key
    blocked = run("deletions", "blocked")
    assert blocked.returncode == 1 and key in blocked.stdout
    first = run("deletions", "redrive", "--json")
    assert first.returncode == 1 and json.loads(first.stdout)["still_quarantined"] == [key]
    lake.put(key, good)  # repaired
    second = run("deletions", "redrive", "--json")
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert summary["released"] == [key] and summary["blocked"] == {}
    assert summary["rows_removed"] == {"lake": 1}
    status = json.loads(run("status", "--json").stdout)
    assert (status["deleted_pending"], status["deleted_blocked_files"]) == (0, 0)
    assert status["lake_quarantined"] == 0
