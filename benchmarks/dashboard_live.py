"""How far the dashboard's page is behind posts_hot (issue #14 item 6: never more than 10 s).

Runs the pipeline at a steady rate with the dashboard (`musicnft run --fresh --file <sample>
--speed 1 --restamp --dashboard`), opens the page in headless Chromium (Debian's, driven by
Playwright, as the browser test does) and reads the live panel once a second. The panel shows the
time it last rendered ("last at HH:MM:SS UTC") and how long before that the newest post was stored
("Last post stored N s ago"), so at the moment of reading the page is behind posts_hot by

    now - (rendered - N)

(whole seconds, so ±1 s). Reported: the first time the panel shows numbers, and the median, 95th
percentile and maximum of that lag over the run.

    python -m benchmarks.dashboard_live [--seconds 60] [--rate 200]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from musicnft.devtools.sample import generate_lines

RENDERED = re.compile(r"last at (\d\d):(\d\d):(\d\d) UTC")
STORED = re.compile(r"Last post stored\s+(\d+) (s|min) ago")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lag_seconds(text: str, now: datetime) -> float | None:
    """now − (when the panel rendered − how long before that the newest post was stored)."""
    rendered_match, stored_match = RENDERED.search(text), STORED.search(text)
    if rendered_match is None or stored_match is None:
        return None
    h, m, s = (int(g) for g in rendered_match.groups())
    rendered = now.replace(hour=h, minute=m, second=s, microsecond=0)
    if rendered > now + timedelta(seconds=1):  # rendered before midnight, read after it
        rendered -= timedelta(days=1)
    value, unit = int(stored_match.group(1)), stored_match.group(2)
    stored = rendered - timedelta(seconds=value * (60 if unit == "min" else 1))
    return (now - stored).total_seconds()


def measure(seconds: int, rate: int) -> tuple[float | None, list[float]]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Debian's chromium is missing: `make test` or `make bench` installs it")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sample = root / "steady.jsonl"
        start = datetime.now(UTC).replace(microsecond=0)
        lines = generate_lines(
            (seconds + 60) * rate, seed=21, start=start, posts_per_hour=rate * 3600
        )
        sample.write_bytes(b"\n".join(lines) + b"\n")
        port = _free_port()
        env = dict(os.environ, MUSICNFT_DATA_DIR=str(root / "data"), MUSICNFT_LOG_LEVEL="WARNING")
        cmd = [sys.executable, "-m", "musicnft", "run", "--fresh", "--file", str(sample),
               "--speed", "1", "--restamp", "--dashboard", "--dashboard-port", str(port),
               "--seconds", str(seconds + 45)]  # fmt: skip
        started = time.monotonic()
        run = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        first: float | None = None
        lags: list[float] = []
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=chromium, headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1400, "height": 1600})
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
                        break
                    except Exception:  # not serving yet
                        time.sleep(0.5)
                end = time.monotonic() + seconds + 30
                while time.monotonic() < end and run.poll() is None:
                    lag = lag_seconds(page.inner_text("body"), datetime.now(UTC))
                    if lag is not None:
                        if first is None:
                            first = time.monotonic() - started
                            end = time.monotonic() + seconds  # measure `seconds` from here
                        lags.append(lag)
                    time.sleep(1.0)
                browser.close()
        finally:
            os.killpg(run.pid, signal.SIGTERM)
            run.wait(120)
        return first, lags


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.dashboard_live", description=__doc__
    )
    parser.add_argument("--seconds", type=int, default=60, help="how long to read the page")
    parser.add_argument("--rate", type=int, default=200, help="posts per second replayed")
    args = parser.parse_args(argv)
    first, lags = measure(args.seconds, args.rate)
    if not lags:
        print("dashboard live      the live panel never showed numbers (no figure)")
        return
    lags.sort()
    p95 = lags[min(len(lags) - 1, int(len(lags) * 0.95))]
    print(
        f"dashboard live      page behind posts_hot: median {statistics.median(lags):.0f} s, "
        f"p95 {p95:.0f} s, max {lags[-1]:.0f} s over {len(lags)} readings at {args.rate} posts/s "
        f"(target <= 10 s); first numbers {first:.1f} s after start"
    )


if __name__ == "__main__":
    main()
