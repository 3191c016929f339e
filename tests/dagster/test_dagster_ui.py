"""The Dagster UI tells the story: `dagster dev` on fixture data, the drop sensor's run, GraphQL's
partition stats and checks, and screenshots of the asset graph and a partition view taken by
Debian's Chromium (headless, Playwright). The screenshots land in test-output/; with
MUSICNFT_UPDATE_SCREENSHOTS=1 they also replace the ones in docs/img/."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from musicnft.app.processes import dagster_dev_command
from musicnft.app.supervisor import dagster_home
from musicnft.settings import Settings
from tests.support.paths import ROOT
from tests.support.sample_lake import Lake

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
OUTPUT = ROOT / "test-output"
DOCS_IMG = ROOT / "docs" / "img"
STATS = """
{
  assetNodes {
    assetKey { path }
    kinds
    partitionStats { numMaterialized numFailed numPartitions }
    assetChecksOrError {
      ... on AssetChecks { checks { name executionForLatestMaterialization { status } } }
    }
  }
}
"""


ACTIVE = """
{
  runsOrError(filter: {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED]}) {
    ... on Runs { results { runId } }
  }
}
"""


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, (
        "Debian's chromium is missing: run `make test` (it installs it) or apt-get install chromium"
    )
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _graphql(port: int, query: str) -> dict[str, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return dict(json.loads(resp.read())["data"])


# The window tables the drop sensor materializes per day (the model, the deletions sweep and the
# engagement re-reads run on their own schedules or on demand).
WINDOW_ASSETS = {
    "posts",
    "window_metrics_15m",
    "hashtag_counts_15m",
    "location_counts_15m",
    "reconciliation_15m",
    "entity_metrics_15m",
    "spikes_15m",
    "nft_sales_15m",
}


def _window_nodes(port: int) -> dict[str, dict[str, Any]]:
    return {
        name: n
        for n in _graphql(port, STATS)["assetNodes"]
        if (name := "/".join(n["assetKey"]["path"])) in WINDOW_ASSETS
    }


def test_the_ui_shows_materialized_day_partitions_with_checks(
    sample_lake: Lake, tmp_path: Path
) -> None:
    # GIVEN the sample lake and its indexed warehouse, a fresh instance, and `dagster dev`
    data_dir = tmp_path / "data"
    shutil.copytree(sample_lake.lake_root, data_dir / "lake")
    shutil.copytree(sample_lake.base_warehouse, data_dir / "warehouse")
    home = dagster_home(Settings(data_dir=data_dir))
    port = _free_port()
    env = dict(os.environ, DAGSTER_HOME=str(home), MUSICNFT_DATA_DIR=str(data_dir))
    env["DAGSTER_DISABLE_TELEMETRY"] = "1"
    proc = subprocess.Popen(
        dagster_dev_command("127.0.0.1", port),  # (see musicnft_dagster/dev.py for why)
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # WHEN the drop sensor's first tick runs the sample's day (its windows with posts)
        nodes: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                nodes = _window_nodes(port)
                done = [
                    n["partitionStats"]["numMaterialized"] + n["partitionStats"]["numFailed"]
                    for n in nodes.values()
                ]
                if len(done) == len(WINDOW_ASSETS) and min(done) >= 1:
                    break
            except (OSError, KeyError, TypeError):
                pass  # not up yet
            time.sleep(2)
        assert nodes, "dagster dev never answered"
        # (and until no run is under way: the 15-minute schedule may have started one for today)
        while time.monotonic() < deadline and _graphql(port, ACTIVE)["runsOrError"]["results"]:
            time.sleep(2)
        nodes = _window_nodes(port)
        assert set(nodes) == WINDOW_ASSETS
        # THEN every window asset has the day materialized, nothing failed, every check passed
        for name, node in nodes.items():
            stats = node["partitionStats"]
            assert stats["numMaterialized"] >= 1 and stats["numFailed"] == 0, (name, stats)
            assert stats["numPartitions"] < 100_000
            assert set(node["kinds"]) == {"duckdb", "parquet"}
            for check in node["assetChecksOrError"].get("checks", []):
                execution = check["executionForLatestMaterialization"]
                assert execution and execution["status"] == "SUCCEEDED", (name, check)
        day = "2021-12-01"  # the sample's day
        assert nodes["posts"]["partitionStats"]["numMaterialized"] >= 1
        # AND the asset graph and the partition view render in a browser (screenshots)
        OUTPUT.mkdir(exist_ok=True)
        shots = {
            "dagster_asset_graph.png": "/locations/musicnft/asset-groups/windows",
            "dagster_partitions.png": (
                f"/assets/window_metrics_15m?view=partitions&partition={day}"
            ),
        }
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1250})
            for name, path in shots.items():
                page.goto(f"http://127.0.0.1:{port}{path}", wait_until="networkidle")
                page.get_by_text("window_metrics_15m").first.wait_for(timeout=60_000)
                page.wait_for_timeout(2000)
                skip = page.get_by_role("button", name="Skip")  # the newsletter dialog
                if skip.count():
                    skip.first.click()
                page.wait_for_timeout(2000)  # layout and partition bars settle
                page.screenshot(path=str(OUTPUT / name))
                assert (OUTPUT / name).stat().st_size > 10_000
            browser.close()
        if os.environ.get("MUSICNFT_UPDATE_SCREENSHOTS") == "1":
            DOCS_IMG.mkdir(exist_ok=True)
            for name in shots:
                shutil.copy(OUTPUT / name, DOCS_IMG / name)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
