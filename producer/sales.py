"""The sales collector: marketplace sale events → normalized sales → Parquet in the lake's `sales/`.

Guarantees, as for posts: nothing lost, nothing counted twice.

- **Nothing lost.** A collection's cursor (the time up to which every sale has been fetched) is
  persisted only after the sales of the range are durably in the lake (one Parquet file per
  collection and fetch: a lake put is atomic) and the malformed events dead-lettered. A crash, an
  outage or a refused request leaves the cursor where it was, and the next run fetches the range
  again. Each poll re-reads the last `REWIND` (15 minutes) for late and changed events (OpenSea:
  events under about 10 minutes old can still change with a reorg).
- **Nothing counted twice.** A sale's id is stable (`musicnft.contract.sale.sale_id`). The
  collector remembers a fingerprint of every sale it wrote (`SalesState`, SQLite beside the data):
  a re-read that finds a sale unchanged writes nothing (a rerun of the same range adds nothing),
  a changed one is written again and the window aggregation keeps the latest read. A sale on two
  pages of one answer is written once. The lake may still hold a sale twice (a crash between the
  lake put and the state's commit); the windows deduplicate by `sale_id` regardless.
- **Malformed events** are dead-lettered with the reason (`dead_letter/sales.jsonl`), once: a
  re-read of the same bad event is recognized and not written again.
- Events outside the asked range (OpenSea's bounds are its own) are dropped here and counted:
  a range is exactly [since, until).

The replay source (`SalesReplay`) feeds recorded or generated OpenSea-shaped events through the
same normalization and writer, paced like the post replay (and restamped to now with `restamp`),
so the demo's sales land beside its posts without an API key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from musicnft.batch.sales import write_sales
from musicnft.contract.sale import fingerprint
from musicnft.hotpath.deadletter import DeadLetter
from musicnft.hotpath.decode import RejectedRecord, SkipRecord
from musicnft.hotpath.normalize_opensea import normalize_opensea_event
from musicnft.ports import Lake
from producer.opensea import OpenSeaApi, OpenSeaAuthError, OpenSeaError, unix_seconds
from producer.replay import Pacer

log = logging.getLogger("musicnft.sales")

REWIND = timedelta(minutes=15)  # each poll re-reads this much before the cursor
FIRST_LOOKBACK = timedelta(minutes=15)  # a collection's first poll, without --since or a cursor


def _raw_text(event: Any) -> str:
    try:
        return json.dumps(event, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(event)


class SalesState:
    """The collector's memory, in SQLite: per-collection cursors, the fingerprint of every sale
    written, and the digests of the events dead-lettered. Changes are committed together, after
    the lake write they describe."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS cursors (
                collection TEXT PRIMARY KEY, until REAL NOT NULL, updated_at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS written (
                sale_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, collection TEXT NOT NULL,
                event_at REAL NOT NULL, written_at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS rejected (
                digest TEXT PRIMARY KEY, collection TEXT NOT NULL, rejected_at REAL NOT NULL);
            """
        )
        self.db.commit()
        self._lock = threading.Lock()

    def cursor(self, collection: str) -> datetime | None:
        row = self.db.execute(
            "SELECT until FROM cursors WHERE collection = ?", (collection,)
        ).fetchone()
        return datetime.fromtimestamp(row[0], UTC) if row else None

    def fingerprints(self, sale_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        ids = list(sale_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out.update(
                self.db.execute(
                    f"SELECT sale_id, fingerprint FROM written WHERE sale_id IN ({marks})", chunk
                ).fetchall()
            )
        return out

    def was_rejected(self, digest: str) -> bool:
        row = self.db.execute("SELECT 1 FROM rejected WHERE digest = ?", (digest,)).fetchone()
        return row is not None

    def commit(
        self,
        collection: str,
        written: Iterable[dict[str, Any]],
        rejected: Iterable[str],
        cursor: datetime | None,
    ) -> None:
        now = time.time()
        with self._lock, self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO written VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        r["sale_id"],
                        fingerprint(r),
                        r["collection"],
                        r["event_timestamp"].timestamp(),
                        now,
                    )
                    for r in written
                ],
            )
            self.db.executemany(
                "INSERT OR IGNORE INTO rejected VALUES (?, ?, ?)",
                [(d, collection, now) for d in rejected],
            )
            if cursor is not None:
                self.db.execute(
                    "INSERT INTO cursors VALUES (?, ?, ?) ON CONFLICT(collection) DO UPDATE SET "
                    "until = max(until, excluded.until), updated_at = excluded.updated_at",
                    (collection, cursor.timestamp(), now),
                )

    def close(self) -> None:
        self.db.close()


@dataclass
class FetchReport:
    """What one fetch of one collection's range did."""

    collection: str
    since: datetime
    until: datetime
    events: int = 0  # events OpenSea answered (every page)
    pages: int = 0
    new: int = 0  # sales written for the first time
    changed: int = 0  # sales written again because what they say changed
    unchanged: int = 0  # sales already written as they are: nothing written
    repeated: int = 0  # the same sale again within this fetch (e.g. on two pages)
    outside: int = 0  # events outside [since, until): dropped
    skipped: int = 0  # events that are not sales
    rejected: int = 0  # malformed events dead-lettered now
    rejected_before: int = 0  # malformed events already dead-lettered by an earlier fetch
    key: str | None = None  # the lake file written (None when there was nothing new)
    error: str | None = None

    @property
    def written(self) -> int:
        return self.new + self.changed

    def line(self) -> str:
        where = f" → {self.key}" if self.key else ""
        return (
            f"{self.collection} [{self.since:%Y-%m-%d %H:%M:%S}, {self.until:%Y-%m-%d %H:%M:%S}): "
            f"{self.events} event(s) in {self.pages} page(s): {self.new} new, {self.changed} "
            f"changed, {self.unchanged} already written, {self.repeated} repeated, "
            f"{self.outside} outside the range, {self.rejected} dead-lettered"
            f"{f' ({self.rejected_before} again)' if self.rejected_before else ''}{where}"
        )


@dataclass
class _Batch:
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # sale_id -> row (last wins)
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (digest, raw, reason)


class SalesCollector:
    """Fetches ranges of sales per collection and lands them in the lake (see the module doc)."""

    def __init__(
        self,
        api: OpenSeaApi,
        lake: Lake,
        state: SalesState,
        dead_letter: DeadLetter,
        source: str = "opensea",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api = api
        self.lake = lake
        self.state = state
        self.dead_letter = dead_letter
        self.source = source
        self.now = now

    def _take(
        self, report: FetchReport, batch: _Batch, event: Any, ingested: datetime, ref: str
    ) -> None:
        report.events += 1
        try:
            row = normalize_opensea_event(event, report.collection, ingested, self.source)
        except SkipRecord:
            report.skipped += 1
            return
        except RejectedRecord as exc:
            raw = _raw_text(event)
            digest = hashlib.sha256(f"{report.collection}\n{raw}".encode()).hexdigest()
            if self.state.was_rejected(digest) or any(d == digest for d, _, _ in batch.rejected):
                report.rejected_before += 1
            else:
                batch.rejected.append((digest, raw, f"{exc.reason} ({ref})"))
            return
        if not report.since <= row["event_timestamp"] < report.until:
            report.outside += 1
            return
        if row["sale_id"] in batch.rows:
            report.repeated += 1
        batch.rows[row["sale_id"]] = row

    def collect(self, collection: str, since: datetime, until: datetime) -> FetchReport:
        """Every sale of `collection` in [since, until): fetched, normalized, new and changed ones
        written to the lake, bad ones dead-lettered; then the cursor moves to `until` (only when
        the range reaches the cursor, so it never jumps over sales not fetched)."""
        report = FetchReport(collection, since, until)
        batch = _Batch()
        ingested = self.now()
        # OpenSea's `after` is exclusive; one second earlier, then the range is cut here.
        pages = self.api.sale_pages(collection, unix_seconds(since) - 1, unix_seconds(until) + 1)
        for page_no, page in enumerate(pages, start=1):
            report.pages += 1
            for i, event in enumerate(page):
                self._take(report, batch, event, ingested, f"{collection} page {page_no} #{i}")
        known = self.state.fingerprints(list(batch.rows))
        to_write = []
        for sid, row in batch.rows.items():
            before = known.get(sid)
            if before is None:
                report.new += 1
                to_write.append(row)
            elif before != fingerprint(row):
                report.changed += 1
                to_write.append(row)
            else:
                report.unchanged += 1
        report.key = write_sales(self.lake, to_write, self.source)
        for _digest, raw, reason in batch.rejected:
            self.dead_letter.write(raw, reason, f"opensea:{collection}", collection=collection)
        report.rejected = len(batch.rejected)
        # The cursor says "every sale before it has been fetched" for the collection as it is
        # followed: it moves on when this range starts at or before it, or, for a collection
        # without one, when the range reaches the present (a historical range sets none).
        cursor = self.state.cursor(collection)
        advance = until >= self.now() - REWIND if cursor is None else since <= cursor
        self.state.commit(
            collection,
            to_write,
            [d for d, _, _ in batch.rejected],
            until if advance else None,
        )
        return report

    def run_once(
        self, collections: Sequence[str], since: datetime | None, until: datetime
    ) -> list[FetchReport]:
        """`--once`: every collection's [since, until) (since: the collection's cursor minus the
        rewind, or 15 minutes before `until`). A collection that fails is reported and the
        others still run; an auth failure stops everything (it fails them all)."""
        reports = []
        for slug in collections:
            start = since or self._default_since(slug, until)
            try:
                report = self.collect(slug, start, until)
            except OpenSeaAuthError:
                raise
            except OpenSeaError as exc:
                report = FetchReport(slug, start, until, error=str(exc))
                log.error("%s: %s; its cursor stays where it was", slug, exc)
            else:
                log.info("%s", report.line())
            reports.append(report)
        return reports

    def _default_since(self, slug: str, until: datetime) -> datetime:
        cursor = self.state.cursor(slug)
        return (cursor - REWIND) if cursor is not None else until - FIRST_LOOKBACK

    def poll(
        self,
        collections: Sequence[str],
        stop: threading.Event,
        interval: float = 60.0,
        since: datetime | None = None,
    ) -> int:
        """Every `interval` seconds, each collection from its cursor (minus the rewind) to now;
        the first poll from `since` when given. Runs until `stop`; an auth failure ends it (it
        raises). Returns how many polls were made."""
        polls = 0
        first = True
        while not stop.is_set():
            started = time.monotonic()
            until = self.now()
            for slug in collections:
                if stop.is_set():
                    break
                start = since if (first and since is not None) else None
                self.run_once([slug], start, until)
            first = False
            polls += 1
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
        return polls


# ---- replay (the demo, recorded dumps)


def replay_events(path: Path) -> Iterator[dict[str, Any]]:
    """OpenSea sale events from a JSON-lines file (one event per line; an `asset_events` page
    is taken whole). Lines that are not JSON objects are yielded as they are, to be rejected."""
    from producer.replay import open_lines

    with open_lines(path) as fh:
        for raw in fh:
            line = raw.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except ValueError:
                yield {"_unreadable": line.decode("utf-8", "replace")[:2000]}
                continue
            if isinstance(value, dict) and isinstance(value.get("asset_events"), list):
                yield from value["asset_events"]
            else:
                yield value


def event_collection(event: Any) -> str:
    """The collection slug an event names (its `nft.collection`, or a `collection` beside it)."""
    if isinstance(event, dict):
        nft = event.get("nft")
        if isinstance(nft, dict) and isinstance(nft.get("collection"), str):
            return str(nft["collection"])
        if isinstance(event.get("collection"), str):
            return str(event["collection"])
    return "unknown"


def event_time(event: Any) -> datetime | None:
    if isinstance(event, dict):
        ts = event.get("event_timestamp")
        if isinstance(ts, int | float) and not isinstance(ts, bool):
            try:
                return datetime.fromtimestamp(ts, UTC)
            except (OverflowError, OSError, ValueError):
                return None
    return None


@dataclass
class ReplayReport:
    events: int = 0
    written: int = 0
    repeated: int = 0
    rejected: int = 0
    files: int = 0


class SalesReplay:
    """Replays OpenSea-shaped events into the lake through the collector's normalization, paced
    by `pacer` (its speed; with restamp each sale's time becomes the moment it is replayed), in a
    file every `flush_seconds` (or `max_batch` sales). No cursor: a replay is not a feed."""

    def __init__(
        self,
        lake: Lake,
        dead_letter: DeadLetter,
        pacer: Pacer,
        stop: threading.Event | None = None,
        flush_seconds: float = 5.0,
        max_batch: int = 500,
        source: str = "replay",
    ) -> None:
        self.lake = lake
        self.dead_letter = dead_letter
        self.pacer = pacer
        self.stop = stop or threading.Event()
        self.flush_seconds = flush_seconds
        self.max_batch = max_batch
        self.source = source
        self.report = ReplayReport()
        self._batch: dict[str, dict[str, Any]] = {}
        self._seen: set[str] = set()
        self._last_flush = time.monotonic()

    def _flush(self) -> None:
        if self._batch:
            write_sales(self.lake, list(self._batch.values()), self.source)
            self.report.files += 1
            self.report.written += len(self._batch)
            self._seen.update(self._batch)
            self._batch = {}
        self._last_flush = time.monotonic()

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop.is_set():
            if time.monotonic() - self._last_flush >= self.flush_seconds:
                self._flush()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.stop.wait(min(left, 0.2, max(0.01, self.flush_seconds)))

    def run(self, events: Iterable[Any]) -> ReplayReport:
        """Replay until the events end or `stop` is set; what was read is always written."""
        try:
            for n, event in enumerate(events, start=1):
                if self.stop.is_set():
                    break
                when = event_time(event)
                if when is not None:
                    self._wait(self.pacer.due_in(when))
                    if self.stop.is_set():
                        break
                self.report.events += 1
                self._one(event, n)
                if (
                    len(self._batch) >= self.max_batch
                    or time.monotonic() - self._last_flush >= self.flush_seconds
                ):
                    self._flush()
        finally:
            self._flush()
        return self.report

    def _one(self, event: Any, n: int) -> None:
        slug = event_collection(event)
        now = datetime.now(UTC)
        try:
            row = normalize_opensea_event(event, slug, now, self.source)
        except SkipRecord:
            return
        except RejectedRecord as exc:
            self.report.rejected += 1
            self.dead_letter.write(_raw_text(event), f"{exc.reason} (event {n})", f"replay:{n}")
            return
        if self.pacer.restamp:
            row["event_timestamp"] = self.pacer.stamp(row["event_timestamp"], row["sale_id"])
        if row["sale_id"] in self._batch or row["sale_id"] in self._seen:
            self.report.repeated += 1
        self._batch[row["sale_id"]] = row
