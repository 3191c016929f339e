"""x-sync asks X about the ids only the lake holds (issue 19, gap 2): posts older than the
warehouse keeps, or not yet loaded, sit in raw/ Parquet files and nowhere else. Against the local
fake of X's compliance endpoints (tests/support/fake_x_compliance.py).

GIVEN X posts in posts_hot and others only in lake files (one file unreadable), WHEN x-sync runs,
THEN every X post id and user id is uploaded once, `--dry-run` counts them per source, and the
deletions X answers are purged from the lake files that hold them, however old."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.adapters.x_compliance import ComplianceApi
from musicnft.app.deletions import lake_x_ids, x_sync
from musicnft.batch import deletions
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.lake_layout import raw_key
from musicnft.contract.schema import POST_SCHEMA, to_table
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.settings import DEFAULT_KEYWORDS
from tests.app.test_compliance import NO_SLEEP, T0, hot, x_id
from tests.support.fake_x_compliance import TOKEN, FakeCompliance
from tests.support.paths import ROOT
from tests.support.records import x_message


def lake_post(i: int, author: str) -> dict[str, Any]:
    msg = x_message(i, created=(T0 + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    msg["data"]["author_id"] = author
    msg["includes"]["users"][0]["id"] = author
    return normalize_x_message(msg, KeywordMatcher(list(DEFAULT_KEYWORDS)), T0)


def put_file(lake: LocalLake, posts: list[dict[str, Any]], unique: str) -> str:
    """A raw/ file the warehouse never indexed (as an old file past its retention is)."""
    buf = io.BytesIO()
    pq.write_table(to_table(posts, POST_SCHEMA), buf)
    key = raw_key("musicnft-posts", T0, unique)
    lake.put(key, buf.getvalue())
    return key


def stores(root: Path) -> tuple[LocalLake, EmbeddedWarehouse, str]:
    lake, wh = LocalLake(root / "lake"), EmbeddedWarehouse(root / "warehouse")
    rows = [hot(1), hot(2)]
    wh.insert_rows("posts_hot", rows, [r["post_id"] for r in rows])
    # post 1 is in both; 5 and 6 only in the lake; 7 is a Bluesky post (never sent to X)
    old = put_file(lake, [lake_post(1, "42"), lake_post(5, "90"), lake_post(6, "91")], "old")
    bsky = lake_post(7, "92") | {
        "post_id": "bsky:at://did:plc:abc/app.bsky.feed.post/3xyz",
        "platform": "bluesky",
        "author_id": "did:plc:abc",
    }
    put_file(lake, [bsky], "bsky")
    lake.put(raw_key("musicnft-posts", T0, "broken"), b"not parquet at all")
    return lake, wh, old


def test_x_sync_uploads_lake_only_ids_and_purges_them(tmp_path: Path) -> None:
    lake, wh, old = stores(tmp_path)
    found = lake_x_ids(lake)
    assert found.posts == {x_id(1), x_id(5), x_id(6)} and found.users == {"42", "90", "91"}
    assert len(found.unreadable) == 1 and found.unreadable[0].endswith("broken.parquet")
    with FakeCompliance() as fake:
        fake.actions = {x_id(5): ("delete", "deleted"), "91": ("delete", "suspended")}
        api = ComplianceApi(fake.url, TOKEN)
        dry = x_sync(api, lake, wh, dry_run=True, poll_seconds=0, **NO_SLEEP)
        assert dry.sources["tweets"] == {
            "posts_hot": 2,
            "posts": 0,
            "lake": 3,
            "lake_only": 2,
            "lake_unreadable": 1,
            "total": 4,
        }
        assert dry.sources["users"]["total"] == 3  # 42, 90, 91: no Bluesky DID
        uploads = [sorted(ids) for ids in fake.uploads.values()]
        assert sorted(uploads) == [
            sorted(x_id(i) for i in (1, 2, 5, 6)),  # each id once
            ["42", "90", "91"],
        ]
        assert len(dry.tombstones) == 2 and dry.purge is None
        report = x_sync(api, lake, wh, poll_seconds=0, **NO_SLEEP)
    assert report.purge is not None and report.purge.applied == 2
    assert report.purge.files_rewritten == [old]
    left = pq.read_table(lake.root / old).column("post_id").to_pylist()
    assert left == [f"x:{x_id(1)}"]  # post 5 (deleted) and 6 (its author suspended) are gone
    assert deletions.counts(wh) == (2, 0)


def test_x_sync_dry_run_counts_per_source_through_the_cli(tmp_path: Path) -> None:
    _lake, wh, _old = stores(tmp_path / "data")
    wh.close()
    token = tmp_path / "token"
    token.write_text(TOKEN)

    def run(fake: FakeCompliance, *extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "musicnft", "compliance", "x-sync", "--dry-run"]
        options = ["--poll-seconds", "0", "--bearer-token-file", str(token)]
        return subprocess.run(
            [*command, *extra, *options, "--x-api-base", fake.url],
            env={
                "MUSICNFT_DATA_DIR": str(tmp_path / "data"),
                "PYTHONPATH": str(ROOT),
                "PATH": "/usr/bin:/bin",
            },
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )

    with FakeCompliance() as fake:
        fake.actions = {x_id(6): ("delete", "deleted")}
        out = run(fake)
        as_json = run(fake, "--json")
    assert out.returncode == 0, out.stderr
    assert "X tweets ids: posts_hot 2, posts 0, lake 3 (2 only there, 1 lake file(s) " in out.stdout
    assert "4 distinct sent" in out.stdout
    assert f"would forget delete: x:{x_id(6)}" in out.stdout
    assert TOKEN not in out.stdout + out.stderr
    assert as_json.returncode == 0, as_json.stderr
    summary = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert summary["ids"]["tweets"]["lake_only"] == 2 and summary["ids"]["users"]["total"] == 3
    assert summary["dry_run"] is True and summary["recorded"] == 0
