"""The OpenSea API v2 client the sales collector uses: sale events, top collections, stats.

Wire facts (OpenSea's OpenAPI spec, issue 17):
- `GET {base}/api/v2/events/collection/{slug}?event_type=sale&after=<unix s>&before=<unix s>
  &limit=<1..200>[&next=<cursor>]`, header `x-api-key`; answer `{"asset_events": [...], "next":
  "<cursor>"|null}`.
- `GET /api/v2/collections/top?category=music&sort_by=one_day_volume` lists collections;
  `GET /api/v2/collections/{slug}/stats` gives `{"total": {...}, "intervals": [...]}`.
- About one request a second per key; `X-RateLimit-*` headers; 429 means wait (`Retry-After` when
  present).

Discipline: requests are paced (`min_interval` seconds apart, and past a `X-RateLimit-Reset` when
`X-RateLimit-Remaining` hits 0); 429 waits `Retry-After` (seconds or an HTTP date) or backs off
exponentially from 2 s; 5xx, an unreadable answer and network errors back off exponentially from
1 s (each capped at 60 s, up to `max_attempts` tries); 401/403 raise `OpenSeaAuthError` at once
(retrying a refused key never helps). The key is held in a `Secret`, sent only as the `x-api-key`
header, and never logged, formatted or put in an exception message: an answer that echoes it is
redacted before any of it is quoted.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from musicnft.logs import add_secret
from producer.x_stream import Secret

log = logging.getLogger("musicnft.opensea")

DEFAULT_BASE = "https://api.opensea.io"
PAGE_LIMIT = 200  # OpenSea's maximum page size for events
MAX_PAGES = 10_000  # one range never takes more pages than this (a cursor loop is a bug)
BACKOFF_CAP = 60.0
RETRY_AFTER_CAP = 900.0


class OpenSeaError(RuntimeError):
    """A failure talking to OpenSea (after the retries); the message never holds the key."""


class OpenSeaAuthError(OpenSeaError):
    """OpenSea refused the key (401/403): retrying never helps; the command exits 2."""


class OpenSeaNotFound(OpenSeaError):
    """404: no such collection (a mistyped slug)."""


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds to wait: delta-seconds or an HTTP date; None when absent or
    unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass  # not a number of seconds: try it as an HTTP date
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _reset_seconds(value: str | None) -> float | None:
    """`X-RateLimit-Reset`: seconds until the reset, or its epoch time (both are in use)."""
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    if number is None or number < 0:
        return None
    if number > 10 * 365 * 86400:  # an epoch time (seconds or milliseconds)
        epoch = number / 1000 if number > 1e11 else number
        return max(0.0, epoch - time.time())
    return number


class OpenSeaApi:
    """The few OpenSea API v2 calls the collector makes, against a configurable base URL."""

    def __init__(
        self,
        base: str,
        key: Secret,
        session: requests.Session | None = None,
        min_interval: float = 1.0,
        max_attempts: int = 8,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = base.rstrip("/")
        self._key = key
        add_secret(key.reveal())  # redacted from every log record from here on
        self.session = session or requests.Session()
        self.min_interval = min_interval
        self.max_attempts = max(1, max_attempts)
        self.timeout = timeout
        self.sleep = sleep
        self.clock = clock
        self._next_at = 0.0  # no request before this (pacing, a rate-limit reset)
        self.requests = 0
        self.retries = 0
        self.waited = 0.0  # seconds slept for pacing, backoff and rate limits

    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self._key.reveal(), "accept": "application/json"}

    def _clean(self, text: str) -> str:
        """Text from an answer, safe to quote: the key (if the server echoed it) redacted."""
        key = self._key.reveal()
        return text.replace(key, "***") if key else text

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.waited += seconds
            self.sleep(seconds)

    def _pace(self) -> None:
        self._wait(self._next_at - self.clock())
        self._next_at = self.clock() + self.min_interval

    def _note_rate_limit(self, resp: requests.Response) -> None:
        if resp.headers.get("X-RateLimit-Remaining", "").strip() == "0":
            reset = _reset_seconds(resp.headers.get("X-RateLimit-Reset"))
            if reset:
                self._next_at = max(self._next_at, self.clock() + min(reset, RETRY_AFTER_CAP))

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET `path` → its JSON object, with pacing, backoff and the key kept out of errors."""
        backoff = {"rate_limit": 0, "server": 0}
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            self._pace()
            self.requests += 1
            try:
                resp = self.session.get(
                    self.base + path, params=params, headers=self._headers(), timeout=self.timeout
                )
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}"
                kind, retry_after = "server", None
            else:
                self._note_rate_limit(resp)
                status = resp.status_code
                if status in (401, 403):
                    raise OpenSeaAuthError(
                        f"OpenSea refused the API key (HTTP {status}) for GET {path}: check "
                        "OPENSEA_API_KEY or --api-key-file (the key is never printed)"
                    )
                if status == 404:
                    raise OpenSeaNotFound(f"GET {path}: HTTP 404 (no such collection?)")
                if status == 200:
                    try:
                        body = resp.json()
                    except ValueError:
                        body = None
                    if isinstance(body, dict):
                        return body
                    last = "HTTP 200 with an answer that is not a JSON object"
                    kind, retry_after = "server", None
                elif status == 429:
                    last = "HTTP 429 (rate limited)"
                    kind = "rate_limit"
                    retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
                elif status >= 500:
                    last = f"HTTP {status}"
                    kind, retry_after = "server", None
                else:
                    raise OpenSeaError(
                        f"GET {path}: HTTP {status} {self._clean(resp.text[:200])!r}"
                    )
            if attempt == self.max_attempts:
                break
            if retry_after is not None:
                delay = min(retry_after, RETRY_AFTER_CAP)
            else:
                base = 2.0 if kind == "rate_limit" else 1.0
                delay = min(base * 2 ** backoff[kind], BACKOFF_CAP)
                backoff[kind] += 1
            self.retries += 1
            log.warning(
                "OpenSea GET %s: %s; retrying in %.1fs (attempt %d of %d)",
                path,
                last,
                delay,
                attempt + 1,
                self.max_attempts,
            )
            self._wait(delay)
        raise OpenSeaError(f"GET {path}: {last} after {self.max_attempts} attempts")

    def sale_pages(
        self, slug: str, after: int, before: int, limit: int = PAGE_LIMIT
    ) -> Iterator[list[Any]]:
        """The sale events of `slug` OpenSea reports between `after` and `before` (unix seconds),
        page by page, following `next` until it is null."""
        path = f"/api/v2/events/collection/{quote(slug, safe='')}"
        params: dict[str, Any] = {
            "event_type": "sale",
            "after": after,
            "before": before,
            "limit": max(1, min(limit, PAGE_LIMIT)),
        }
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            body = self.get(path, params)
            events = body.get("asset_events")
            if events is None:
                events = []
            if not isinstance(events, list):
                raise OpenSeaError(f"GET {path}: asset_events is not a list")
            yield events
            cursor = body.get("next")
            if not cursor:
                return
            if not isinstance(cursor, str) or cursor in seen:
                raise OpenSeaError(f"GET {path}: the `next` cursor repeats or is not a string")
            seen.add(cursor)
            params = {**params, "next": cursor}
        raise OpenSeaError(f"GET {path}: more than {MAX_PAGES} pages for one range")

    def top_collections(
        self, category: str = "music", sort_by: str = "one_day_volume", limit: int = 20
    ) -> list[dict[str, Any]]:
        body = self.get(
            "/api/v2/collections/top",
            {"category": category, "sort_by": sort_by, "limit": max(1, min(limit, 100))},
        )
        items = body.get("collections")
        return [c for c in items if isinstance(c, dict)] if isinstance(items, list) else []

    def collection_stats(self, slug: str) -> dict[str, Any]:
        return self.get(f"/api/v2/collections/{quote(slug, safe='')}/stats")


def unix_seconds(t: datetime) -> int:
    return int(t.astimezone(UTC).timestamp())
