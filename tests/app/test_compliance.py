"""X batch compliance against a local fake of X's endpoints (tests/support/fake_x_compliance.py),
and `musicnft forget`: job lifecycle, upload, polling, failed and expired jobs, one job per type,
each action, dry runs, idempotence, and the CLI end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.adapters.x_compliance import ComplianceApi, ComplianceError, run_job
from musicnft.app.deletions import forget, read_ids, stored_x_ids, x_sync
from musicnft.batch import deletions
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import HOT_FIELDS, conform
from musicnft.hotpath.enrich import enrich
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.settings import DEFAULT_KEYWORDS
from tests.support.fake_x_compliance import TOKEN, FakeCompliance
from tests.support.paths import ROOT
from tests.support.records import x_message

T0 = datetime(2021, 12, 1, tzinfo=UTC)
NO_SLEEP = {"sleep": lambda _s: None}


@pytest.fixture
def fake() -> Iterator[FakeCompliance]:
    with FakeCompliance() as server:
        yield server


def api(fake: FakeCompliance, token: str = TOKEN) -> ComplianceApi:
    return ComplianceApi(fake.url, token)


def hot(i: int, author: str = "42") -> dict[str, Any]:
    msg = x_message(i, created=(T0 + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    msg["data"]["author_id"] = author
    msg["includes"]["users"][0]["id"] = author
    msg["includes"]["users"][0]["location"] = "Paris"
    post = normalize_x_message(msg, KeywordMatcher(list(DEFAULT_KEYWORDS)), T0)
    return conform(enrich(post), HOT_FIELDS)


def x_id(i: int) -> str:
    return str(1466000000000000000 + i)


@pytest.fixture
def stores(tmp_path: Path) -> tuple[LocalLake, EmbeddedWarehouse]:
    lake, wh = (
        LocalLake(tmp_path / "data" / "lake"),
        EmbeddedWarehouse(tmp_path / "data" / "warehouse"),
    )
    rows = [hot(1), hot(2), hot(3, author="77"), hot(4, author="78")]
    wh.insert_rows("posts_hot", rows, [r["post_id"] for r in rows])
    return lake, wh


def post_ids(wh: EmbeddedWarehouse) -> list[str]:
    return sorted(wh.query("SELECT post_id FROM posts_hot").column(0).to_pylist())


# ---- the job protocol -------------------------------------------------------------------------


def test_job_lifecycle_upload_poll_download(fake: FakeCompliance) -> None:
    fake.scripts["tweets"] = ["in_progress", "in_progress", "complete"]
    fake.actions = {"1": ("delete", "deleted"), "3": ("scrub_geo", "scrub_geo")}
    outcome = run_job(api(fake), "tweets", ["1", "2", "3"], "t", poll_seconds=0, **NO_SLEEP)
    assert outcome.uploaded == 3
    assert fake.uploads[outcome.job_id] == ["1", "2", "3"]
    assert [(r["id"], r["action"]) for r in outcome.results] == [
        ("1", "delete"),
        ("3", "scrub_geo"),
    ]
    assert fake.polls == 3  # until complete, no further
    assert fake.jobs[outcome.job_id]["status"] == "complete"


@pytest.mark.parametrize("final", ["failed", "expired"])
def test_failed_and_expired_jobs_raise_naming_the_job(fake: FakeCompliance, final: str) -> None:
    fake.scripts["users"] = ["in_progress", final]
    with pytest.raises(ComplianceError, match=f"users job .* {final}"):
        run_job(api(fake), "users", ["9"], "u", poll_seconds=0, **NO_SLEEP)


def test_one_concurrent_job_per_type(fake: FakeCompliance) -> None:
    busy = fake.add_active_job("tweets")
    with pytest.raises(ComplianceError, match=f"already in_progress \\(id {busy}\\)"):
        run_job(api(fake), "tweets", ["1"], "t", poll_seconds=0, **NO_SLEEP)
    # the other type is free
    assert run_job(api(fake), "users", ["1"], "u", poll_seconds=0, **NO_SLEEP).uploaded == 1


def test_a_job_that_never_completes_times_out(fake: FakeCompliance) -> None:
    fake.scripts["tweets"] = ["in_progress"]
    clock = iter(range(0, 10_000, 100))
    with pytest.raises(ComplianceError, match="still in_progress"):
        run_job(
            api(fake),
            "tweets",
            ["1"],
            "t",
            poll_seconds=0,
            timeout_seconds=500,
            clock=lambda: float(next(clock)),
            **NO_SLEEP,
        )


def test_bad_token_is_an_error_without_the_token(fake: FakeCompliance) -> None:
    with pytest.raises(ComplianceError) as info:
        run_job(api(fake, "wrong-token-123"), "tweets", ["1"], "t", **NO_SLEEP)
    assert "401" in str(info.value) and "wrong-token-123" not in str(info.value)


# ---- x-sync: stored ids in, deletions applied ---------------------------------------------------


def test_x_sync_applies_each_action_and_is_idempotent(fake: FakeCompliance, stores: Any) -> None:
    lake, wh = stores
    assert stored_x_ids(wh) == ([x_id(i) for i in range(1, 5)], ["42", "77", "78"])
    fake.actions = {
        x_id(1): ("delete", "deleted"),
        x_id(4): ("scrub_geo", "scrub_geo"),
        "77": ("delete", "protected"),
        x_id(2): ("frobnicate", "new"),  # an action we do not know: reported, nothing done
    }
    # --dry-run: the jobs run, nothing changes
    dry = x_sync(api(fake), lake, wh, dry_run=True, poll_seconds=0, **NO_SLEEP)
    assert len(dry.tombstones) == 3 and len(dry.unknown_actions) == 1 and dry.purge is None
    assert len(post_ids(wh)) == 4 and deletions.counts(wh) == (0, 0)
    report = x_sync(api(fake), lake, wh, poll_seconds=0, **NO_SLEEP)
    assert set(report.jobs) == {"tweets", "users"}
    assert report.recorded == 3 and report.purge is not None and report.purge.applied == 3
    assert post_ids(wh) == [f"x:{x_id(2)}", f"x:{x_id(4)}"]
    rows = wh.query("SELECT post_id, author_location FROM posts_hot").to_pylist()
    locations = {r["post_id"]: r["author_location"] for r in rows}
    assert locations == {f"x:{x_id(2)}": "Paris", f"x:{x_id(4)}": None}
    assert deletions.counts(wh) == (3, 0)
    # a second sync with the same answers records and changes nothing
    again = x_sync(api(fake), lake, wh, poll_seconds=0, **NO_SLEEP)
    assert again.recorded == 0 and again.purge is not None and again.purge.applied == 0
    assert deletions.counts(wh) == (3, 0)


# ---- forget -----------------------------------------------------------------------------------


def test_ids_file_forms_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text(
        "# deleted on request\n"
        f"{x_id(1)}\n"
        f"x:{x_id(2)}\n"
        "at://did:plc:abc/app.bsky.feed.post/3l3qo2vutsw2b\n"
        "bsky:at://did:plc:abc/app.bsky.feed.post/3xyz\n"
        "\n"
        "not-an-id\n"
    )
    tombstones, bad = read_ids(path, "delete", T0)
    assert [t.post_id for t in tombstones] == [
        f"x:{x_id(1)}",
        f"x:{x_id(2)}",
        "bsky:at://did:plc:abc/app.bsky.feed.post/3l3qo2vutsw2b",
        "bsky:at://did:plc:abc/app.bsky.feed.post/3xyz",
    ]
    assert [n for n, _ in bad] == [7]


def test_forget_is_idempotent(tmp_path: Path, stores: Any) -> None:
    lake, wh = stores
    path = tmp_path / "ids.txt"
    path.write_text(f"{x_id(1)}\nx:{x_id(3)}\n")
    first = forget(path, "delete", lake, wh)
    assert first.recorded == 2 and first.purge is not None and first.purge.applied == 2
    assert post_ids(wh) == [f"x:{x_id(2)}", f"x:{x_id(4)}"]
    second = forget(path, "delete", lake, wh)
    assert second.recorded == 0 and second.purge is not None and second.purge.applied == 0
    assert deletions.counts(wh) == (2, 0)


def test_forget_and_status_through_the_cli(tmp_path: Path, stores: Any) -> None:
    _lake, wh = stores
    wh.close()
    path = tmp_path / "ids.txt"
    path.write_text(f"{x_id(1)}\nbogus line\n")
    env = {
        "MUSICNFT_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "musicnft", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )

    out = run("forget", "--ids-file", str(path), "--json")
    assert out.returncode == 1, out.stderr  # one bad line: reported, the good one applied
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["recorded"] == 1 and summary["applied"] == 1 and summary["bad_lines"] == 1
    assert "line 2" in out.stderr
    status = run("status", "--json")
    assert status.returncode == 0, status.stderr
    values = json.loads(status.stdout)
    assert values["deleted"] == 1 and values["deleted_pending"] == 0
    assert isinstance(values["deleted"], int) and isinstance(values["deleted_pending"], int)
    assert values["posts_hot"] == 3
