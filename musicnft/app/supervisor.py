"""`musicnft run`: the embedded hot path as three supervised processes.

Each stage runs as its own process (as it would in the cloud), in its own session so a terminal's
Ctrl-C reaches only the supervisor, which then stops them in order: the producer first (it flushes),
then delivery and consumer (they drain the stream, flush and exit). A delivery or consumer that dies
is restarted with backoff; the stream's checkpoints make the restart lose nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from musicnft import wiring
from musicnft.app.processes import (
    REPO_ROOT,
    child_env,
    dagster_dev_command,
    dagster_env,
    dashboard_command,
    dashboard_env,
    stage_command,
)
from musicnft.app.status import collect_status, format_status
from musicnft.settings import Settings

log = logging.getLogger("musicnft.run")

DAGSTER_YAML = """\
# Written by `musicnft run --dagster`. No internet here: telemetry off.
telemetry:
  enabled: false
# Two cores: at most two runs at once; never two runs of the same day partition (the drop
# sensor, the 15-minute schedule and the re-run sensor can all ask for one); one backfill run at
# a time. Queued runs start within a second.
run_queue:
  max_concurrent_runs: 2
  dequeue_interval_seconds: 1
  tag_concurrency_limits:
    - key: "dagster/partition"
      value:
        applyLimitPerUniqueValue: true
      limit: 1
    - key: "dagster/backfill"
      limit: 1
# A run whose worker died (not one whose asset failed: the assets retry their steps, and the
# failed_windows_sensor re-runs failed windows with backoff) is retried once.
run_retries:
  enabled: true
  max_retries: 1
  retry_on_asset_or_op_failure: false
# The drop sensor and the re-run sensor tick side by side.
sensors:
  use_threads: true
  num_workers: 2
"""


def dagster_home(settings: Settings) -> Path:
    """The Dagster instance of the embedded profile (overridable with DAGSTER_HOME, which the
    settings carry), created with its dagster.yaml when new."""
    path = settings.dagster_home or settings.data_dir / "dagster"
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "dagster.yaml").exists():
        (path / "dagster.yaml").write_text(DAGSTER_YAML)
    return path


class Supervisor:
    def __init__(self, settings: Settings, args: argparse.Namespace) -> None:
        self.settings = settings
        self.args = args
        self.stop = threading.Event()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = {"deliver": 0, "consume": 0}
        self.producer_rc: int | None = None
        self.started_at = datetime.now(UTC)
        self.dagster: subprocess.Popen[bytes] | None = None
        self.dashboard: subprocess.Popen[bytes] | None = None
        self.checks_failed = False

    def _command(self, stage: str) -> list[str]:
        cmd = stage_command(stage, "--data-dir", str(self.settings.data_dir))
        if stage == "produce":
            cmd += ["--speed", self.args.speed]
            if self.args.file:
                cmd += ["--file", self.args.file]
            if self.args.restamp:
                cmd.append("--restamp")
        return cmd

    def _spawn(self, stage: str) -> None:
        self.procs[stage] = subprocess.Popen(
            self._command(stage), env=child_env(self.settings), start_new_session=True
        )
        log.info("started %s (pid %d)", stage, self.procs[stage].pid)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.stop.is_set():
            log.warning("second %s: stopping children now", signal.Signals(signum).name)
            for proc in self.procs.values():
                if proc.poll() is None:
                    proc.kill()
            raise SystemExit(130)
        log.info(
            "%s received: stopping the producer, then draining the stream",
            signal.Signals(signum).name,
        )
        self.stop.set()

    def _fresh(self) -> None:
        s = self.settings
        dagster = s.data_dir / "dagster"
        # Kinesis readers' checkpoints and the producer's spool belong to the stream: a stale
        # checkpoint would make readers of a new stream skip its first records.
        stores = (s.stream_path.parent, s.checkpoint_path.parent, s.spool_path.parent)
        for path in (*stores, s.lake_dir, s.warehouse_dir, s.dead_letter_dir, dagster):
            if path.exists():
                shutil.rmtree(path)
        log.info(
            "--fresh: removed previous stream, checkpoints, spool, lake, warehouse and "
            "dead-letters in %s",
            s.data_dir,
        )

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        if self.args.fresh:
            self._fresh()
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if self.args.dagster:
            self._start_dagster()
        if self.args.dashboard:
            self._start_dashboard()
        for stage in ("deliver", "consume", "produce"):
            self._spawn(stage)
        started = time.monotonic()
        deadline = started + self.args.seconds if self.args.seconds else None
        last_report = started
        backoff: dict[str, float] = {}
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    log.info("%.0f seconds are up: stopping", self.args.seconds)
                    break
                producer = self.procs["produce"]
                if self.producer_rc is None and producer.poll() is not None:
                    self.producer_rc = producer.returncode
                    if self.producer_rc == 0:
                        log.info("producer finished its replay")
                    else:
                        log.error("producer exited with code %d", self.producer_rc)
                    if self.args.exit_when_done or self.producer_rc != 0:
                        break
                for stage in ("deliver", "consume"):
                    proc = self.procs[stage]
                    if proc.poll() is not None and now >= backoff.get(stage, 0):
                        self.restarts[stage] += 1
                        delay = min(30.0, 2.0 ** min(self.restarts[stage], 5))
                        log.error(
                            "%s exited with code %d; restarting (restart %d)",
                            stage,
                            proc.returncode,
                            self.restarts[stage],
                        )
                        self._spawn(stage)
                        backoff[stage] = now + delay
                if now - last_report >= 15:
                    last_report = now
                    self._report()
                self.stop.wait(0.5)
        finally:
            self._shutdown()
            if self.args.dagster:
                self._stop_dagster()
            if self.dashboard is not None and self.dashboard.poll() is None:
                self.dashboard.terminate()
                self.dashboard.wait(30)
        if self.args.dagster:
            self._final_windows()
        print(format_status(self._status()), flush=True)
        if self.checks_failed:
            return 1
        return 0 if self.producer_rc in (0, None) else 1

    def _start_dagster(self) -> None:
        home = dagster_home(self.settings)
        # From here on every child (and the final windows) uses this instance.
        self.settings = dataclasses.replace(self.settings, dagster_home=home)
        cmd = dagster_dev_command(self.args.dagster_host, self.args.dagster_port)
        self.dagster = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=dagster_env(self.settings), start_new_session=True
        )
        log.info(
            "started dagster dev (pid %d): UI at http://%s:%d (instance %s)",
            self.dagster.pid,
            self.args.dagster_host,
            self.args.dagster_port,
            home,
        )

    def _start_dashboard(self) -> None:
        cmd = dashboard_command(self.args.dashboard_host, self.args.dashboard_port)
        self.dashboard = subprocess.Popen(
            cmd, env=dashboard_env(self.settings), start_new_session=True
        )
        log.info(
            "dashboard: http://%s:%d (refreshes itself; fills as windows are materialized)",
            self.args.dashboard_host,
            self.args.dashboard_port,
        )

    def _stop_dagster(self) -> None:
        if self.dagster is None or self.dagster.poll() is not None:
            return
        self.dagster.send_signal(signal.SIGINT)  # dagster dev stops its children on SIGINT
        try:
            self.dagster.wait(60)
        except subprocess.TimeoutExpired:
            log.error("dagster dev did not stop within 60s; killing it")
            os.killpg(self.dagster.pid, signal.SIGKILL)
            self.dagster.wait()
        log.info("dagster dev stopped")
        self._settle_runs()

    def _settle_runs(self, timeout: float = 120.0) -> None:
        """Runs already executing finish on their own (their workers outlive `dagster dev`): wait
        for them before the final windows, and cancel queued runs nothing will launch now."""
        from musicnft_dagster.recording import settle_runs

        assert self.settings.dagster_home is not None  # set by _start_dagster
        if not settle_runs(self.settings.dagster_home, timeout):
            log.warning("runs still executing after %.0fs; going on", timeout)

    def _final_windows(self) -> None:
        """Materialize every window this run's drops touched, so none is left half-done when the
        sensor had no tick left to see the last drops (same code and checks as the assets)."""
        from musicnft.batch.backfill import run_backfill
        from musicnft_dagster.recording import dagster_recorder

        report = run_backfill(
            wiring.open_lake(self.settings),
            wiring.open_warehouse(self.settings),
            [k.lower() for k in self.settings.keywords],
            on_window=dagster_recorder(self.settings.dagster_home),
            files_since=self.started_at,
        )
        log.info(
            "final windows: %d materialized, %d with failed checks",
            len(report.windows),
            len(report.failed),
        )
        if report.failed:
            self.checks_failed = True

    def _status(self) -> dict[str, Any]:
        return collect_status(
            self.settings, wiring.open_lake(self.settings), wiring.open_warehouse(self.settings)
        )

    def _report(self) -> None:
        try:
            s = self._status()
        except Exception as exc:  # a report is best effort; never stop the pipeline for it
            log.warning("status unavailable: %s", exc)
            return
        log.info(
            "status: produced=%s lake=%s posts_hot=%s dead_letter=%s (delivery lag %s, consumer lag %s)",
            s["produced"],
            s["lake"],
            s["posts_hot"],
            s["dead_letter"],
            s["delivery_lag"],
            s["consumer_lag"],
        )

    def _terminate(self, stage: str, timeout: float, signalled: bool = False) -> None:
        """SIGTERM once (a second one means "exit at once" to our processes) and wait."""
        proc = self.procs.get(stage)
        if proc is None or proc.poll() is not None:
            return
        if not signalled:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error(
                "%s did not stop within %.0fs; killing it (the stream keeps its records)",
                stage,
                timeout,
            )
            proc.kill()
            proc.wait()

    def _shutdown(self) -> None:
        self._terminate("produce", 60)
        if self.producer_rc is None:
            self.producer_rc = self.procs["produce"].returncode
            if self.producer_rc in (-signal.SIGTERM, 130):
                self.producer_rc = 0
        # Delivery and consumer drain whatever the producer managed to put on the stream.
        for stage in ("deliver", "consume"):
            proc = self.procs[stage]
            if proc.poll() is not None:
                self._spawn(stage)
        for stage in ("deliver", "consume"):
            self.procs[stage].send_signal(signal.SIGTERM)
        for stage in ("deliver", "consume"):
            self._terminate(stage, 600, signalled=True)
