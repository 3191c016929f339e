"""The X API v2 filtered stream as a producer source, with X's documented reconnect discipline.

Wire facts (REFERENCE.md): chunked HTTP, one JSON object per `\\r\\n`-terminated line, a bare
`\\r\\n` keep-alive at least every 20 s, objects may be split across chunks; in-stream errors such as
`operational-disconnect`; one connection per app. Reconnect: once immediately, then by cause:
network errors +250 ms per try up to 16 s, HTTP errors 5 s doubling to 320 s, HTTP 429 60 s
doubling; 20 s without a byte is a stall. With invalid credentials this never earns a 429.

The bearer token is held privately and never logged, formatted or put in an exception message.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

log = logging.getLogger("musicnft.x")

TWEET_FIELDS = "created_at,lang,public_metrics,entities,author_id,referenced_tweets"
USER_FIELDS = "public_metrics,location,verified,username"
STREAM_PARAMS = {
    "tweet.fields": TWEET_FIELDS,
    "expansions": "author_id",
    "user.fields": USER_FIELDS,
}
RULE_TAG_PREFIX = "musicnft:"


class Secret:
    """A value that prints as *** everywhere (repr, str, f-strings, tracebacks)."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


class XError(RuntimeError):
    """A failure talking to X; the message never contains the token."""


@dataclass
class Backoff:
    """X's reconnect schedule: the first retry immediate, then by the cause of the failure."""

    attempts: int = 0
    last_kind: str = ""

    def next_delay(self, kind: str) -> float:
        """kind: 'network' | 'http' | 'rate_limit'."""
        if kind != self.last_kind:
            self.attempts = 0
            self.last_kind = kind
        self.attempts += 1
        n = self.attempts
        if n == 1 and kind == "network":
            return 0.0
        if kind == "network":
            return min(0.25 * (n - 1), 16.0)
        if kind == "rate_limit":
            return min(60.0 * 2 ** (n - 1), 960.0)
        return min(5.0 * 2 ** (n - 1), 320.0)

    def reset(self) -> None:
        self.attempts = 0
        self.last_kind = ""


@dataclass
class Gap:
    start: datetime
    end: datetime
    cause: str

    def to_json(self) -> str:
        return json.dumps(
            {"start": self.start.isoformat(), "end": self.end.isoformat(), "cause": self.cause}
        )


def desired_rules(keywords: list[str]) -> list[dict[str, str]]:
    """One filtered-stream rule per tracked keyword, matching the word and its hashtag."""
    out = []
    for kw in dict.fromkeys(k.strip() for k in keywords if k.strip()):
        value = f"{kw} OR #{kw}" if " " not in kw else f'"{kw}"'
        out.append({"value": value, "tag": f"{RULE_TAG_PREFIX}{kw.lower()}"})
    return out


class XApi:
    """The few X API v2 calls the producer makes, against a configurable base URL."""

    def __init__(
        self, api_base: str, token: Secret, session: requests.Session | None = None
    ) -> None:
        self.base = api_base.rstrip("/")
        self._token = token
        self.session = session or requests.Session()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token.reveal()}", "User-Agent": "musicnft"}

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = self.session.request(
                method, self.base + path, headers=self._headers(), timeout=30, **kwargs
            )
        except requests.RequestException as exc:
            raise XError(f"{method} {path}: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            raise XError(f"{method} {path}: HTTP {resp.status_code} {resp.text[:200]}")
        return resp.json()

    def get_rules(self) -> list[dict[str, str]]:
        return list(self._json("GET", "/2/tweets/search/stream/rules").get("data") or [])

    def add_rules(self, rules: list[dict[str, str]]) -> dict[str, Any]:
        return self._json("POST", "/2/tweets/search/stream/rules", json={"add": rules})

    def delete_rules(self, ids: list[str]) -> dict[str, Any]:
        return self._json("POST", "/2/tweets/search/stream/rules", json={"delete": {"ids": ids}})

    def search_recent(
        self,
        query: str,
        since_id: str | None,
        next_token: str | None = None,
        start_time: datetime | None = None,
    ) -> dict[str, Any]:
        """One page of recent search: posts after `since_id`, or else from `start_time` on."""
        params = dict(STREAM_PARAMS, query=query, max_results="100")
        if since_id is not None:
            params["since_id"] = since_id
        elif start_time is not None:
            params["start_time"] = start_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if next_token:
            params["next_token"] = next_token
        return self._json("GET", "/2/tweets/search/recent", params=params)

    def open_stream(self, stall_seconds: float) -> requests.Response:
        """The filtered stream response (streaming); the read timeout is the stall detector."""
        return self.session.get(
            self.base + "/2/tweets/search/stream",
            params=STREAM_PARAMS,
            headers=self._headers(),
            stream=True,
            timeout=(10, stall_seconds),
        )


@dataclass
class RuleDiff:
    add: list[dict[str, str]] = field(default_factory=list)
    delete: list[dict[str, str]] = field(default_factory=list)


def diff_rules(current: list[dict[str, str]], keywords: list[str]) -> RuleDiff:
    """What to add and what to delete; rules not tagged by us are left alone."""
    wanted = {(r["value"], r["tag"]) for r in desired_rules(keywords)}
    have = {(r.get("value"), r.get("tag")) for r in current}
    diff = RuleDiff()
    diff.add = [r for r in desired_rules(keywords) if (r["value"], r["tag"]) not in have]
    diff.delete = [
        r
        for r in current
        if str(r.get("tag", "")).startswith(RULE_TAG_PREFIX)
        and (r.get("value"), r.get("tag")) not in wanted
    ]
    return diff


def sync_rules(api: XApi, keywords: list[str], dry_run: bool = False) -> RuleDiff:
    diff = diff_rules(api.get_rules(), keywords)
    if not dry_run:
        if diff.delete:
            api.delete_rules([r["id"] for r in diff.delete])
        if diff.add:
            api.add_rules(diff.add)
    return diff


class SingleConnectionGuard:
    """X allows one stream connection per app: a second producer here fails fast, by a lock file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a+")  # noqa: SIM115 (held for the life of the stream)
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise XError(f"another producer holds the X stream connection ({path})") from None

    def release(self) -> None:
        fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        self._fh.close()


class XStreamSource:
    """Yields `(ref, line)` for each message line of the filtered stream, reconnecting forever.

    Keep-alives are swallowed; `operational-disconnect` ends the connection and reconnects; every
    disconnect is logged with its cause and recorded as a gap (start = last byte, end = the next
    connection), which the recent-search catch-up fills when enabled, as soon as the stream is
    back (everything after that comes on the stream).

    The newest post id whose line and every line before it are durable (acknowledged by the
    producer with `acknowledge(n)` when `durable_acks`, else as soon as the next line is asked
    for) is persisted in `x_state.json`, with the gaps in `x_gaps.jsonl`: after a restart, even a
    kill -9, the time the producer was down is a gap like any other, filled from that id.
    """

    def __init__(
        self,
        api: XApi,
        state_dir: Path,
        stop: threading.Event,
        stall_seconds: float = 20.0,
        catch_up_query: str | None = None,
        price_per_post: float = 0.005,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.time,
        durable_acks: bool = False,
    ) -> None:
        self.api = api
        self.state_dir = state_dir
        self.stop = stop
        self.stall_seconds = stall_seconds
        self.catch_up_query = catch_up_query
        self.price_per_post = price_per_post
        self.sleep = sleep or stop.wait
        self.clock = clock
        self.backoff = Backoff()
        self.delays: list[float] = []
        self.posts_read = 0
        self.durable_acks = durable_acks
        self._state_lock = threading.Lock()
        self._pending: deque[str | None] = deque()  # post id per line handed over, not durable
        self._handed = 0
        self._settled = 0
        self._gap_start: datetime | None = None
        self._gap_cause = ""
        # the newest post id whose line and all before it are durable, and when it was saved;
        # before the first post, the moment the first producer connected (from then on, posts
        # are ours to deliver)
        self.durable_last_id, saved_at, self.since = self._load_state()
        self.last_id: str | None = self.durable_last_id  # the newest handed over
        if self.durable_last_id is not None or self.since is not None:
            # Down since (at the latest) the last save: a gap the catch-up fills like any other.
            self._gap_start = saved_at or self._now()
            self._gap_cause = "producer restart"

    # ---- bookkeeping ------------------------------------------------------------------------
    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _load_state(self) -> tuple[str | None, datetime | None, datetime | None]:
        """(last_id, saved_at, since) from x_state.json; Nones when there is none."""
        try:
            state = json.loads((self.state_dir / "x_state.json").read_text(encoding="utf-8"))
            last_id = state.get("last_id")
            saved_at = _utc(datetime.fromisoformat(state["saved_at"]))
            since = _utc(datetime.fromisoformat(state["since"])) if state.get("since") else None
        except FileNotFoundError:
            return None, None, None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("cannot read x_state.json (%s): no catch-up of the time we were down", exc)
            return None, None, None
        if not (isinstance(last_id, str) and last_id.isdigit()):
            last_id = None
        return last_id, saved_at, since

    def _save_state(self) -> None:
        """Write x_state.json atomically (temp file, fsync, rename)."""
        since = self.since.isoformat() if self.since is not None else None
        text = json.dumps(
            {"last_id": self.durable_last_id, "saved_at": self._now().isoformat(), "since": since}
        )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".x_state.json.", dir=self.state_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.state_dir / "x_state.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def acknowledge(self, durable: int) -> None:
        """The consumer's word that the first `durable` lines handed over are durable (on the
        stream, dead-lettered or needing nothing); persists the newest post id among them."""
        with self._state_lock:
            newest = self.durable_last_id
            while self._settled < min(durable, self._handed):
                post_id = self._pending.popleft()
                self._settled += 1
                if post_id is not None and (newest is None or int(post_id) > int(newest)):
                    newest = post_id
            if newest != self.durable_last_id:
                self.durable_last_id = newest
                self._save_state()

    def _hand_over(self, post_id: str | None) -> None:
        self._pending.append(post_id)
        self._handed += 1
        if not self.durable_acks:
            self.acknowledge(self._handed)

    def _record_gap(self, end: datetime) -> Gap | None:
        if self._gap_start is None:
            return None
        gap = Gap(self._gap_start, end, self._gap_cause)
        self._gap_start = None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "x_gaps.jsonl", "a") as fh:
            fh.write(gap.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        log.warning(
            "stream gap %s → %s (%s)", gap.start.isoformat(), gap.end.isoformat(), gap.cause
        )
        return gap

    def _save_usage(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        usage = {
            "posts_read": self.posts_read,
            "price_per_post_usd": self.price_per_post,
            "estimated_spend_usd": round(self.posts_read * self.price_per_post, 4),
        }
        tmp = self.state_dir / ".x_usage.json.tmp"
        tmp.write_text(json.dumps(usage))
        tmp.replace(self.state_dir / "x_usage.json")

    def _disconnected(self, cause: str, kind: str) -> None:
        if self._gap_start is None:
            self._gap_start = self._now()
            self._gap_cause = cause
        delay = self.backoff.next_delay(kind)
        self.delays.append(delay)
        log.warning("X stream disconnected (%s); reconnecting in %.2fs", cause, delay)
        if delay:
            self.sleep(delay)

    # ---- the stream -----------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        if self.durable_acks and self.last_id is None and self.since is None:
            # A first start: should it die before its first post is durable, the restart
            # catches up from now (by time, there is no id yet) instead of losing those posts.
            self.since = self._now()
            with self._state_lock:
                self._save_state()
        while not self.stop.is_set():
            try:
                resp = self.api.open_stream(self.stall_seconds)
            except requests.RequestException as exc:
                self._disconnected(f"connect failed: {type(exc).__name__}", "network")
                continue
            if resp.status_code != 200:
                body = resp.text[:200] if resp.status_code < 500 else ""
                resp.close()
                kind = "rate_limit" if resp.status_code == 429 else "http"
                self._disconnected(f"HTTP {resp.status_code} {body}".strip(), kind)
                continue
            log.info("X stream connected")
            # From here on the stream carries every new post: fill the gap before it now, while
            # the stream waits, even if no new post comes for a long time.
            if self._record_gap(self._now()) is not None:
                yield from self._catch_up()
            yield from self._read(resp)

    def _read(self, resp: requests.Response) -> Iterator[tuple[str, bytes]]:
        buffer = b""
        got_data = False
        try:
            for chunk in resp.iter_content(chunk_size=None):
                if self.stop.is_set():
                    return
                buffer += chunk
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    if not line.strip():
                        continue  # keep-alive
                    if line.startswith(b'{"errors"') and b"operational-disconnect" in line:
                        self._disconnected("operational-disconnect", "network")
                        return
                    if not got_data:
                        got_data = True
                        self.backoff.reset()
                    self._hand_over(self._note_id(line))
                    yield f"x:{self.posts_read}", line
            self._disconnected("stream closed by server", "network")
        except (requests.RequestException, ConnectionError) as exc:
            cause = (
                "stall (no data or keep-alive)"
                if "Read timed out" in str(exc)
                else type(exc).__name__
            )
            self._disconnected(cause, "network")
        finally:
            resp.close()

    def _note_id(self, line: bytes) -> str | None:
        """Count a post read; its id if it is a usable one (digits), which may be the newest."""
        try:
            post_id = json.loads(line).get("data", {}).get("id")
        except (ValueError, AttributeError, RecursionError):
            return None
        if not isinstance(post_id, str):
            return None
        self.posts_read += 1
        if self.posts_read % 100 == 0:
            self._save_usage()
        return self._newest(post_id)

    def _newest(self, post_id: str) -> str | None:
        if not (post_id.isdigit() and len(post_id) <= 30):
            return None
        if self.last_id is None or int(post_id) > int(self.last_id):
            self.last_id = post_id
        return post_id

    def _catch_up(self) -> Iterator[tuple[str, bytes]]:
        """Fill the last gap from recent search (since the newest id seen), when enabled.

        Search pages run newest first, so no catch-up line moves the durable id on its own: the
        newest id fetched rides on the last line of the last page, durable only once every line
        of the catch-up is (a kill -9 half-way through repeats the catch-up, it skips nothing)."""
        if not self.catch_up_query or (self.last_id is None and self.since is None):
            return
        since_id = self.last_id
        # Without an id yet: by time, a little early for clocks that differ (never more than
        # recent search's 7 days back).
        start_time = None
        if since_id is None and self.since is not None:
            start_time = max(self.since - timedelta(seconds=30), self._now() - timedelta(days=7))
        token = None
        fetched = 0
        newest: str | None = None
        while True:
            try:
                page = self.api.search_recent(self.catch_up_query, since_id, token, start_time)
            except XError as exc:
                log.error("catch-up search failed: %s", exc)
                return
            users = (page.get("includes") or {}).get("users", [])
            token = (page.get("meta") or {}).get("next_token")
            tweets = [t for t in page.get("data") or [] if isinstance(t, dict)]
            for i, tweet in enumerate(tweets):
                message = {
                    "data": tweet,
                    "includes": {"users": users},
                    "matching_rules": [{"tag": "catch-up"}],
                }
                fetched += 1
                self.posts_read += 1
                post_id = tweet.get("id")
                usable = self._newest(post_id) if isinstance(post_id, str) else None
                if usable is not None and (newest is None or int(usable) > int(newest)):
                    newest = usable
                last = not token and i == len(tweets) - 1
                self._hand_over(newest if last else None)
                yield f"x-catch-up:{post_id}", json.dumps(message).encode()
            if not token:
                log.info("catch-up: %d post(s) from recent search filled the gap", fetched)
                return

    def close(self) -> None:
        self._save_usage()
        with self._state_lock:
            if self.durable_last_id is not None or self.since is not None:
                self._save_state()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
