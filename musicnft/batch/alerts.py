"""Spike alerts to a Slack-compatible webhook: one per window and key, retried, never twice.

`MUSICNFT_ALERT_WEBHOOK_URL` (through the settings) turns them on. What was sent is kept in the
lake under `alerts/spikes/<window>/<dimension>/<key hash>.json` (S3 in the cloud profile), so a
re-run of a window, a retried run or a backfill never posts the same spike again:

- the ledger entry is written *before* the first attempt (status `sending`), so a crash between
  sending and recording cannot lead to a second post (at most once, by design: a duplicate page
  at 3 a.m. is worse than a missed one, and the spike stays in `spikes_15m` and the dashboard);
- network errors, HTTP 429 (honouring a short `Retry-After`) and 5xx are retried with
  exponential backoff; the entry then becomes `sent` or `failed`;
- only a `failed` entry whose every attempt was *answered* with an error status (so nothing was
  delivered) is tried again by a later run; a timeout leaves it `unknown`, never resent.

The webhook URL is a secret (Slack's carries the token in its path): it is never logged, and
errors name the host-less reason only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from musicnft.contract.windows import window_key
from musicnft.ports import Lake

log = logging.getLogger("musicnft.alerts")

PREFIX = "alerts/spikes/"
MAX_RETRY_AFTER = 30.0


@dataclass
class Delivery:
    """One POST's outcome: `status` is the HTTP status (None when no answer came)."""

    status: int | None
    answered: bool
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


Poster = Callable[[str, bytes, float], Delivery]


def post_json(url: str, body: bytes, timeout: float) -> Delivery:
    """POST `body` as JSON; exceptions become a `Delivery` whose reason never holds the URL."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Delivery(response.status, True)
    except urllib.error.HTTPError as exc:
        retry_after = exc.headers.get("Retry-After", "") if exc.headers else ""
        return Delivery(exc.code, True, f"HTTP {exc.code}|{retry_after}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Delivery(None, False, type(reason).__name__)


def alert_message(
    spike: Mapping[str, Any], posts: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """Slack-compatible JSON (`text`, which every Slack-style webhook accepts)."""
    window = spike["window_start"]
    lines = [
        f":chart_with_upwards_trend: *{spike['dimension']} `{spike['key']}` is spiking* "
        f"in the window {window_key(window)} UTC: {spike['post_count']} posts "
        f"(baseline {spike['baseline']:.1f}, score {spike['score']:.1f})"
    ]
    for p in posts:
        text = str(p.get("text") or "").replace("\n", " ")
        lines.append(f"• @{p.get('author_handle') or '?'}: {text[:140]}")
    return {"text": "\n".join(lines)}


def ledger_key(window: datetime, dimension: str, key: str) -> str:
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return f"{PREFIX}{window_key(window)}/{dimension}/{digest}.json"


@dataclass
class AlertResult:
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already in the ledger
    failed: list[str] = field(default_factory=list)


class SpikeAlerter:
    """Sends each spike once through `poster`, remembering what it sent in `lake`."""

    def __init__(
        self,
        lake: Lake,
        url: str,
        poster: Poster = post_json,
        attempts: int = 4,
        backoff: float = 1.0,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.lake, self._url, self.poster = lake, url, poster
        self.attempts, self.backoff, self.timeout, self.sleep = attempts, backoff, timeout, sleep

    def __repr__(self) -> str:  # never the URL
        return f"SpikeAlerter(attempts={self.attempts})"

    def _entry(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.lake.get(key)))
        except FileNotFoundError:
            return None

    def _record(self, key: str, spike: Mapping[str, Any], status: str, **extra: Any) -> None:
        entry = {
            "window_start": window_key(spike["window_start"]),
            "dimension": spike["dimension"],
            "key": spike["key"],
            "status": status,
            "at": datetime.now(UTC).isoformat(),
            **extra,
        }
        self.lake.put(key, json.dumps(entry).encode())

    def _deliver(self, body: bytes) -> tuple[str, int, str]:
        """(sent | failed | unknown, attempts, last reason)."""
        answered_all, reason = True, ""
        for attempt in range(1, self.attempts + 1):
            result = self.poster(self._url, body, self.timeout)
            if result.ok:
                return "sent", attempt, ""
            answered_all = answered_all and result.answered
            reason = result.reason or f"HTTP {result.status}"
            retryable = result.status is None or result.status == 429 or result.status >= 500
            if not retryable or attempt == self.attempts:
                break
            delay = self.backoff * 2 ** (attempt - 1)
            if result.status == 429:
                _, _, after = reason.partition("|")
                with contextlib.suppress(ValueError):
                    delay = max(delay, min(float(after), MAX_RETRY_AFTER))
            self.sleep(delay)
        return ("failed" if answered_all else "unknown"), attempt, reason.partition("|")[0]

    def send(
        self,
        spikes: Iterable[Mapping[str, Any]],
        posts_for: Callable[[Mapping[str, Any]], Iterable[Mapping[str, Any]]] = lambda s: (),
    ) -> AlertResult:
        """Alert each row with `is_spike` not alerted before; what happened to each."""
        out = AlertResult()
        for spike in spikes:
            if not spike.get("is_spike"):
                continue
            name = f"{spike['dimension']}:{spike['key']}@{window_key(spike['window_start'])}"
            key = ledger_key(spike["window_start"], spike["dimension"], spike["key"])
            entry = self._entry(key)
            if entry is not None and entry.get("status") != "failed":
                out.skipped.append(name)
                continue
            self._record(key, spike, "sending")
            body = json.dumps(alert_message(spike, posts_for(spike))).encode()
            status, attempts, reason = self._deliver(body)
            self._record(key, spike, status, attempts=attempts, reason=reason)
            if status == "sent":
                out.sent.append(name)
            else:
                log.warning(
                    "spike alert %s not delivered after %d attempt(s): %s", name, attempts, reason
                )
                out.failed.append(name)
        return out
