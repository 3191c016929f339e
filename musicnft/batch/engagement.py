"""Engagement that means something (issue 18): re-read each post's counts about 1 h and 24 h
after it was created, because at stream time they are ~0.

- Bluesky: the public AppView's `app.bsky.feed.getPosts` (free, no auth, at most 25 URIs a call).
- X: `GET /2/tweets?ids=...&tweet.fields=public_metrics` (at most 100 ids a call, paid per post
  read): off unless a daily budget in USD is set; the day's spend is counted from the snapshots
  (distinct X posts read since 00:00 UTC × the price per post; X may bill less, as it bills a post
  once per UTC day), and a run stops at the cap.

A post is due at an age once it is that old and until a grace period later (6 h for 1 h, 24 h for
24 h: a run that was missed is caught up, a post much older than its age is not read as if it were
that age). Snapshots are appended to `engagement_snapshots` after every call, so a run that stops
on a 429 keeps what it read and the next run continues; posts the source no longer returns
(deleted, or not found) get a `missing` snapshot and are not read again. `engagement_15m` is then
rebuilt for the windows whose posts were read, and the engagement-at-24 h columns of their
`window_metrics_15m` rows updated (`refresh_window_metrics`): a window materialized before its
posts turned 24 h old gets them when they are read; one materialized after has them already
(`fill_engagement_24h`, called by the window pipeline).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pyarrow as pa

from musicnft.batch.window_sql import in_windows
from musicnft.contract.tables import ENGAGEMENT_15M_SCHEMA, TABLES, WINDOW_METRICS_SCHEMA
from musicnft.contract.windows import window_key

log = logging.getLogger("musicnft.engagement")

AGES: dict[str, timedelta] = {"1h": timedelta(hours=1), "24h": timedelta(hours=24)}
GRACE: dict[str, timedelta] = {"1h": timedelta(hours=6), "24h": timedelta(hours=24)}
BLUESKY_BATCH = 25
X_BATCH = 100
MAX_WAIT = 60.0


class RereadError(RuntimeError):
    """A source kept refusing (429, 5xx, network); what was read before stays stored."""


@dataclass(frozen=True)
class Counts:
    reply: int = 0
    repost: int = 0
    like: int = 0
    quote: int = 0

    @property
    def total(self) -> int:
        return self.reply + self.repost + self.like + self.quote


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _wait_seconds(response: Any, attempt: int, backoff: float) -> float:
    """Retry-After (seconds or a date), X's x-rate-limit-reset (epoch seconds), else backoff."""
    headers = response.headers if response is not None else {}
    raw = headers.get("Retry-After") or ""
    try:
        return min(float(raw), MAX_WAIT)
    except ValueError:
        pass  # not a number of seconds: an HTTP date, or empty (tried below)
    if raw:
        try:
            return min(
                max((parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds(), 0), MAX_WAIT
            )
        except (TypeError, ValueError):
            pass
    reset = headers.get("x-rate-limit-reset")
    if reset and reset.isdigit():
        return min(max(int(reset) - time.time(), 0.0), MAX_WAIT)
    return backoff * 2 ** (attempt - 1)


class _Client:
    def __init__(
        self,
        base_url: str,
        session: Any = None,
        attempts: int = 4,
        backoff: float = 1.0,
        timeout: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if session is None:
            import requests

            session = requests.Session()
        self.base_url = base_url.rstrip("/")
        self.session, self.attempts, self.backoff = session, attempts, backoff
        self.timeout, self.sleep = timeout, sleep
        self.calls = 0

    def _get(self, path: str, params: Any, headers: dict[str, str] | None = None) -> Any:
        import requests

        for attempt in range(1, self.attempts + 1):
            self.calls += 1
            response = None
            try:
                response = self.session.get(
                    self.base_url + path, params=params, headers=headers, timeout=self.timeout
                )
            except requests.RequestException as exc:
                reason = type(exc).__name__
            else:
                if response.status_code == 200:
                    return response.json()
                reason = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    raise RereadError(f"{path}: {reason}")
            if attempt == self.attempts:
                raise RereadError(f"{path}: {reason} after {attempt} attempts")
            self.sleep(_wait_seconds(response, attempt, self.backoff))
        raise AssertionError("unreachable")


class BlueskyReader(_Client):
    """`app.bsky.feed.getPosts` on a public AppView."""

    def read(self, uris: Sequence[str]) -> dict[str, Counts | None]:
        """Counts per URI (None: not returned, i.e. deleted or not found); ≤25 URIs."""
        if len(uris) > BLUESKY_BATCH:
            raise ValueError(f"getPosts takes at most {BLUESKY_BATCH} URIs")
        body = self._get("/xrpc/app.bsky.feed.getPosts", [("uris", u) for u in uris])
        found: dict[str, Counts | None] = dict.fromkeys(uris)
        for post in body.get("posts") or []:
            if isinstance(post, dict) and post.get("uri") in found:
                found[post["uri"]] = Counts(
                    _int(post.get("replyCount")),
                    _int(post.get("repostCount")),
                    _int(post.get("likeCount")),
                    _int(post.get("quoteCount")),
                )
        return found


class XReader(_Client):
    """`GET /2/tweets?ids=` with `tweet.fields=public_metrics` (bearer token; paid)."""

    def __init__(self, base_url: str, bearer_token: str, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self._headers = {"Authorization": f"Bearer {bearer_token}"}

    def __repr__(self) -> str:  # never the token
        return f"XReader({self.base_url!r})"

    def read(self, ids: Sequence[str]) -> dict[str, Counts | None]:
        if len(ids) > X_BATCH:
            raise ValueError(f"/2/tweets takes at most {X_BATCH} ids")
        body = self._get(
            "/2/tweets",
            {"ids": ",".join(ids), "tweet.fields": "public_metrics"},
            self._headers,
        )
        found: dict[str, Counts | None] = dict.fromkeys(ids)
        for tweet in body.get("data") or []:
            if not isinstance(tweet, dict) or tweet.get("id") not in found:
                continue
            m = tweet.get("public_metrics") or {}
            found[tweet["id"]] = Counts(
                _int(m.get("reply_count")),
                _int(m.get("repost_count", m.get("retweet_count"))),
                _int(m.get("like_count")),
                _int(m.get("quote_count")),
            )
        return found


def due_posts(wh: Any, now: datetime, age: str, limit: int = 5000) -> list[dict[str, Any]]:
    """Posts at least `age` old (within its grace period) without a snapshot at that age."""
    newest = now - AGES[age]
    oldest = newest - GRACE[age]
    return list(
        wh.query(
            "SELECT p.post_id, p.window_start FROM posts AS p "
            "WHERE p.created_at > ? AND p.created_at <= ? "
            "AND p.post_id NOT IN (SELECT s.post_id FROM engagement_snapshots AS s "
            "WHERE s.age = ? AND s.window_start >= ?) "
            f"ORDER BY p.created_at, p.post_id LIMIT {int(limit)}",
            [oldest, newest, age, oldest - timedelta(minutes=15)],
        ).to_pylist()
    )


def x_spend_today(wh: Any, now: datetime, price: float) -> tuple[int, float]:
    """(distinct X posts re-read since 00:00 UTC, their cost at `price`)."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    n = (
        wh.query(
            "SELECT count(DISTINCT post_id) FROM engagement_snapshots "
            "WHERE platform = ? AND read_at >= ?",
            ["x", day],
        )
        .column(0)[0]
        .as_py()
    )
    return int(n or 0), int(n or 0) * price


@dataclass
class RereadResult:
    read: dict[str, int] = field(default_factory=dict)  # "<platform> <age>" -> posts read
    missing: int = 0
    x_skipped: int = 0  # due X posts not read: X off or the day's budget spent
    budget_exhausted: bool = False
    errors: list[str] = field(default_factory=list)
    windows: set[datetime] = field(default_factory=set)
    x_spend_usd: float = 0.0
    windows_24h: set[datetime] = field(default_factory=set)  # windows read at +24 h
    # windows whose window_metrics_15m rows got new engagement-at-24 h values
    metrics_updated: set[datetime] = field(default_factory=set)


def _snapshot(
    post: dict[str, Any], platform: str, age: str, now: datetime, c: Counts | None
) -> dict[str, Any]:
    return {
        "post_id": post["post_id"],
        "platform": platform,
        "age": age,
        "window_start": post["window_start"],
        "read_at": now,
        "status": "ok" if c is not None else "missing",
        "replies": c.reply if c else None,
        "reposts": c.repost if c else None,
        "likes": c.like if c else None,
        "quotes": c.quote if c else None,
        "engagement": c.total if c else None,
    }


def _store(wh: Any, rows: list[dict[str, Any]], result: RereadResult) -> None:
    if rows:
        wh.append(
            "engagement_snapshots",
            pa.Table.from_pylist(rows, schema=TABLES["engagement_snapshots"]),
        )
        result.missing += sum(1 for r in rows if r["status"] == "missing")
        result.windows.update(r["window_start"] for r in rows)
        result.windows_24h.update(r["window_start"] for r in rows if r["age"] == "24h")


def run_rereads(
    wh: Any,
    now: datetime,
    bluesky: BlueskyReader | None,
    x: XReader | None,
    x_price: float,
    x_budget_usd: float,
    limit: int = 5000,
) -> RereadResult:
    """Read every due post once per age, within the X budget; store the snapshots and rebuild
    `engagement_15m` for the windows read."""
    result = RereadResult()
    for age in AGES:
        due = due_posts(wh, now, age, limit)
        by_platform = {
            "bluesky": [p for p in due if p["post_id"].startswith("bsky:")],
            "x": [p for p in due if p["post_id"].startswith("x:")],
        }
        try:
            if bluesky is not None:
                posts = by_platform["bluesky"]
                for i in range(0, len(posts), BLUESKY_BATCH):
                    batch = posts[i : i + BLUESKY_BATCH]
                    got = bluesky.read([p["post_id"][5:] for p in batch])
                    _store(
                        wh,
                        [_snapshot(p, "bluesky", age, now, got[p["post_id"][5:]]) for p in batch],
                        result,
                    )
                    key = f"bluesky {age}"
                    result.read[key] = result.read.get(key, 0) + len(batch)
            posts = by_platform["x"]
            if x is None or x_budget_usd <= 0 or x_price <= 0:
                result.x_skipped += len(posts)
                continue
            i = 0
            while i < len(posts):
                _, spent = x_spend_today(wh, now, x_price)
                allowed = math.floor((x_budget_usd - spent) / x_price + 1e-9)
                if allowed <= 0:
                    result.budget_exhausted = True
                    result.x_skipped += len(posts) - i
                    break
                batch = posts[i : i + min(X_BATCH, allowed)]
                got = x.read([p["post_id"][2:] for p in batch])
                _store(
                    wh, [_snapshot(p, "x", age, now, got[p["post_id"][2:]]) for p in batch], result
                )
                key = f"x {age}"
                result.read[key] = result.read.get(key, 0) + len(batch)
                i += len(batch)
        except RereadError as exc:
            log.warning("engagement re-read at %s stopped: %s; the next run continues", age, exc)
            result.errors.append(str(exc))
    result.x_spend_usd = x_spend_today(wh, now, x_price)[1]
    for window in sorted(result.windows):
        build_engagement_window(wh, window, now)
    # Only a +24 h read changes window_metrics_15m: this run's, and those of the last hour (a
    # run that stopped between storing its snapshots and this step is caught up by the next).
    for window in sorted(result.windows_24h | recent_24h_windows(wh, now)):
        if refresh_window_metrics(wh, window):
            result.metrics_updated.add(window)
    return result


def latest_engagement(wh: Any, window: datetime) -> dict[tuple[str, str], int]:
    """(post_id, age) -> engagement (replies + reposts + likes + quotes) of the window's posts
    read `ok`: the one definition `engagement_15m` and `window_metrics_15m` share (the latest
    read wins should a post have been read twice at an age)."""
    return latest_engagement_by_window(wh, [window])[window]


def latest_engagement_by_window(
    wh: Any, windows: Sequence[datetime]
) -> dict[datetime, dict[tuple[str, str], int]]:
    """`latest_engagement` for several windows in one query: window -> (post_id, age) -> n."""
    latest: dict[datetime, dict[tuple[str, str], int]] = {w: {} for w in windows}
    if not windows:
        return latest
    condition, params = in_windows(windows)
    snaps = wh.query(
        "SELECT window_start, post_id, age, engagement FROM engagement_snapshots "
        f"WHERE {condition} AND status = ? ORDER BY read_at, post_id",
        [*params, "ok"],
    ).to_pylist()
    for s in snaps:
        latest[s["window_start"]][(s["post_id"], s["age"])] = int(s["engagement"] or 0)
    return latest


def build_engagement_window(wh: Any, window: datetime, now: datetime | None = None) -> int:
    """Replace the window's `engagement_15m` rows: per keyword (and `all`), posts and the
    engagement re-read at 1 h and at 24 h (posts read `ok` only)."""
    posts = wh.query(
        "SELECT post_id, matched_keywords FROM posts WHERE window_start = ?", [window]
    ).to_pylist()
    latest = latest_engagement(wh, window)
    groups: dict[str, list[str]] = {"all": []}
    for p in posts:
        groups["all"].append(p["post_id"])
        for k in p.get("matched_keywords") or []:
            groups.setdefault(k, []).append(p["post_id"])
    rows = []
    for keyword, ids in groups.items():
        row: dict[str, Any] = {"window_start": window, "keyword": keyword, "post_count": len(ids)}
        for age in AGES:
            values = [latest[(pid, age)] for pid in ids if (pid, age) in latest]
            row[f"read_{age}"] = len(values)
            row[f"engagement_{age}"] = sum(values) if values else None
        row["updated_at"] = now or datetime.now(UTC)
        rows.append(row)
    wh.replace_partition(
        "engagement_15m",
        window_key(window),
        pa.Table.from_pylist(rows, schema=ENGAGEMENT_15M_SCHEMA),
    )
    return len(rows)


def reread_status(wh: Any, now: datetime, price: float, budget_usd: float) -> dict[str, Any]:
    """For `musicnft status`: X posts re-read today, their estimated cost and the daily cap
    (None when the snapshots table cannot be read, e.g. a warehouse not yet migrated)."""
    try:
        posts, spend = x_spend_today(wh, now, price)
    except Exception as exc:  # status must still print the rest
        log.debug("engagement_snapshots not readable: %s", exc)
        posts, spend = None, None
    return {
        "x_reread_posts_today": posts,
        "x_reread_spend_usd_today": spend,
        "x_reread_budget_usd": budget_usd,
    }


# ---- engagement at 24 h in window_metrics_15m (issue 18 item 4) -------------------------------

ENGAGEMENT_24H_COLUMNS = ("engagement_24h_posts", "avg_engagement_24h")


def _row_posts(keyword: str, posts: Sequence[dict[str, Any]]) -> list[str]:
    """The post ids a window_metrics row counts: all of them for `all`, else those that matched
    the keyword (as `musicnft.batch.aggregates.window_metrics` groups them)."""
    if keyword == "all":
        return [p["post_id"] for p in posts]
    return [p["post_id"] for p in posts if keyword in (p.get("matched_keywords") or [])]


def engagement_24h_values(post_ids: Sequence[str], at_24h: dict[str, int]) -> dict[str, Any]:
    """The row's posts read `ok` at +24 h and their mean engagement then (None before any)."""
    values = [at_24h[pid] for pid in post_ids if pid in at_24h]
    return {
        "engagement_24h_posts": len(values),
        "avg_engagement_24h": sum(values) / len(values) if values else None,
    }


def engagement_24h_by_post(wh: Any, window: datetime) -> dict[str, int]:
    """post_id -> engagement at +24 h, for the window's posts read `ok` at that age."""
    return engagement_24h_by_window(wh, [window])[window]


def engagement_24h_by_window(
    wh: Any, windows: Sequence[datetime]
) -> dict[datetime, dict[str, int]]:
    """`engagement_24h_by_post` for several windows in one query."""
    return {
        window: {pid: n for (pid, age), n in latest.items() if age == "24h"}
        for window, latest in latest_engagement_by_window(wh, windows).items()
    }


def fill_engagement_24h(
    posts: Sequence[dict[str, Any]], rows: list[dict[str, Any]], at_24h: dict[str, int]
) -> list[dict[str, Any]]:
    """Fill the engagement-at-24 h columns of a window's fresh window_metrics rows from its
    posts' engagement at +24 h (in place, and returned)."""
    for row in rows:
        row.update(engagement_24h_values(_row_posts(row["keyword"], posts), at_24h))
    return rows


REFRESH_LOOKBACK = timedelta(hours=1)


def recent_24h_windows(wh: Any, now: datetime) -> set[datetime]:
    """Windows with a +24 h snapshot read within `REFRESH_LOOKBACK` before `now`."""
    rows = wh.query(
        "SELECT DISTINCT window_start FROM engagement_snapshots WHERE age = ? AND read_at >= ?",
        ["24h", now - REFRESH_LOOKBACK],
    ).to_pylist()
    return {r["window_start"] for r in rows}


def refresh_window_metrics(wh: Any, window: datetime) -> bool:
    """Update the engagement-at-24 h columns of the window's `window_metrics_15m` rows from the
    snapshots stored since it was materialized. Every other column, `updated_at` included, is
    kept as it was (`updated_at` says when the window's posts were last counted: the deletion
    pass relies on it). Idempotent: nothing is written when the values are already current, and
    a window not materialized yet is left to the window pipeline. True when rows were written."""
    rows = wh.query(
        "SELECT * FROM window_metrics_15m WHERE window_start = ? ORDER BY keyword", [window]
    ).to_pylist()
    if not rows:
        return False
    posts = wh.query(
        "SELECT post_id, matched_keywords FROM posts WHERE window_start = ?", [window]
    ).to_pylist()
    at_24h = engagement_24h_by_post(wh, window)
    changed = False
    for row in rows:
        values = engagement_24h_values(_row_posts(row["keyword"], posts), at_24h)
        if any(row.get(k) != v for k, v in values.items()):
            row.update(values)
            changed = True
    if changed:
        wh.replace_partition(
            "window_metrics_15m",
            window_key(window),
            pa.Table.from_pylist(rows, schema=WINDOW_METRICS_SCHEMA),
        )
    return changed
