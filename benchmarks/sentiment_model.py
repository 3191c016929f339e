"""The trained sentiment model's speed (issue 15): the in-process scorer on one core, and the
endpoint's latency for batches of 100 texts, locally.

- In process: `SentimentModel.predict(text, vader)` over generated posts whose VADER scores are
  already computed (as in the consumer, which has them from `enrich`); cold (empty token memo)
  and warm, and with VADER computed too. Measured in CPU time of this one thread (texts per
  second of one core), so other processes on a shared machine do not bend it; wall-clock beside
  it. Target: ≥ 5,000 texts/s.
- Endpoint: `python -m musicnft.model.serve` (the container's entry point) as its own process on
  127.0.0.1, one keep-alive HTTP connection, `POST /invocations` with 100 texts; p50 / p99 over
  the requests after a warm-up. Target: p99 ≤ 100 ms. This one is wall-clock by nature: the
machine's load average is printed with it.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from musicnft.adapters.local_lake import LocalLake
from musicnft.contract.keywords import KeywordMatcher
from musicnft.devtools.sample import generate_lines
from musicnft.hotpath.enrich import reset_scorer, sentiment_scores
from musicnft.hotpath.normalize_x import normalize_x_line
from musicnft.model.artifact import write_artifact
from musicnft.model.gold import load_gold
from musicnft.model.train import TrainConfig, train
from musicnft.settings import DEFAULT_KEYWORDS

ROOT = Path(__file__).resolve().parents[1]
SCORER_TARGET = 5_000  # texts/s, one core
ENDPOINT_P99_TARGET_MS = 100.0
BATCH = 100


def sample_texts(n: int) -> list[str]:
    matcher = KeywordMatcher(DEFAULT_KEYWORDS)
    now = datetime.now(UTC)
    texts: list[str] = []
    for line in generate_lines(n, seed=15):
        try:
            text = normalize_x_line(line, matcher, now)["text"]
        except Exception:  # the sample's malformed lines
            continue
        if isinstance(text, str):
            texts.append(text)
    return texts


def vader(text: str) -> tuple[float, float, float, float]:
    s = sentiment_scores(text)
    assert s is not None
    return (s["neg"], s["neu"], s["pos"], s["compound"])


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time (Linux /proc; 0.0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def endpoint_latencies(
    model_dir: Path, texts: list[str], requests: int
) -> tuple[list[float], float]:
    """Milliseconds per `POST /invocations` of BATCH texts, the server in its own process, and
    the server's CPU milliseconds per request (what the latency would be on an idle core)."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "musicnft.model.serve", "--host", "127.0.0.1", "--port", "0"),
            *("--model-dir", str(model_dir), "serve"),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        port = None
        while port is None:
            line = proc.stderr.readline()
            if not line:
                raise RuntimeError("the endpoint exited before serving")
            found = re.search(r"serving on 127\.0\.0\.1:(\d+)", line)
            port = int(found.group(1)) if found else None
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        deadline = time.monotonic() + 30
        while True:
            conn.request("GET", "/ping")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the endpoint never became ready")
            time.sleep(0.05)
        bodies = [
            json.dumps({"instances": texts[i : i + BATCH]}).encode()
            for i in range(0, len(texts) - BATCH, BATCH)
        ]
        headers = {"Content-Type": "application/json"}
        times: list[float] = []
        cpu_before = 0.0
        for i in range(requests + 20):
            if i == 20:
                cpu_before = cpu_seconds(proc.pid)
            body = bodies[i % len(bodies)]
            start = time.perf_counter()
            conn.request("POST", "/invocations", body, headers)
            response = conn.getresponse()
            response.read()
            elapsed = (time.perf_counter() - start) * 1000
            if response.status != 200:
                raise RuntimeError(f"endpoint answered {response.status}")
            if i >= 20:  # warm-up: first requests fill the token memo and VADER's caches
                times.append(elapsed)
        cpu_ms = (cpu_seconds(proc.pid) - cpu_before) * 1000 / requests
        conn.close()
        return times, cpu_ms
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stderr:
            proc.stderr.close()


def main(posts: int = 20_000, requests: int = 300) -> dict[str, float]:
    texts = sample_texts(posts)
    started = time.perf_counter()
    result = train(load_gold(), [], TrainConfig(), cv=False)
    train_seconds = time.perf_counter() - started
    model = result.model
    vaders = [vader(t) for t in texts]

    def score_all() -> tuple[float, float]:
        """(texts per CPU second, texts per wall second)."""
        cpu, wall = time.thread_time(), time.perf_counter()
        for text, v in zip(texts, vaders, strict=True):
            model.predict(text, v)
        return len(texts) / (time.thread_time() - cpu), len(texts) / (time.perf_counter() - wall)

    model._memo.clear()
    cold, cold_wall = score_all()
    warm, _ = score_all()
    reset_scorer()  # VADER from cold as well
    model._memo.clear()
    cpu = time.thread_time()
    for text in texts:
        model.predict(text, vader(text))
    with_vader = len(texts) / (time.thread_time() - cpu)

    with tempfile.TemporaryDirectory() as tmp:
        lake = LocalLake(Path(tmp) / "lake")
        key, _card = write_artifact(lake, result, "bench")
        tarball = lake.get(key)
        model_dir = Path(tmp) / "model"
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            tar.extractall(model_dir, filter="data")
        json_bytes = (model_dir / "model.json").stat().st_size
        latencies, cpu_ms = endpoint_latencies(model_dir, texts, requests)
    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(f"sentiment model: {len(model.weights):,} n-grams, trained in {train_seconds:.1f} s")
    print(
        f"  model.json {json_bytes / 1e6:.1f} MB, model.tar.gz {len(tarball) / 1e6:.1f} MB "
        "(read from the lake at run time: not in the Lambda zip)"
    )
    print(
        f"  in-process scorer   {cold:10,.0f} texts/s cold, {warm:,.0f} warm (CPU time of one "
        f"core; {cold_wall:,.0f}/s wall; VADER scores given, as in the consumer)   "
        f"target ≥ {SCORER_TARGET:,}: "
        f"{'ok' if cold >= SCORER_TARGET else 'MISSED'}"
    )
    print(f"  scorer + VADER      {with_vader:10,.0f} texts/s (both from cold)")
    print(
        f"  endpoint batch of {BATCH}: p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(latencies)} "
        f"requests   target p99 ≤ {ENDPOINT_P99_TARGET_MS:.0f} ms: "
        f"{'ok' if p99 <= ENDPOINT_P99_TARGET_MS else 'MISSED'} (wall-clock; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); server CPU {cpu_ms:.1f} ms "
        "per batch"
    )
    return {
        "cold": cold,
        "warm": warm,
        "with_vader": with_vader,
        "p50": p50,
        "p99": p99,
        "server_cpu_ms": cpu_ms,
    }


if __name__ == "__main__":
    main()
