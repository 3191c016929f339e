"""The Bluesky source: Jetstream's websocket, resumed by cursor, reconnected for ever.

Jetstream delivers at least once and can replay about a day by `cursor` (a `time_us`). This source
leans on that: it remembers the `time_us` of the last message it handed over, persists it, and on
every (re)connect asks for a few seconds *before* it. Posts seen twice are harmless (post ids are
stable and the reconciliation is unique by post id); posts never seen are not, so every choice
here trades duplicates for gaps.

With `durable_acks=True` (the producer's wiring) the cursor it persists is only that of the newest
message whose every predecessor its consumer has acknowledged as durable (`acknowledge(n)`: on
the stream, dead-lettered or skipped), so a kill -9 while a batch is still in memory replays that
batch instead of losing it. No frame can stop the source: a broken one is handed over like any
other (the producer dead-letters it) and the cursor moves on with the next good one; a frame the
producer has already dead-lettered (`dead_lettered`) is not handed over again when a rewind or a
restart replays it, so it is dead-lettered once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from musicnft.hotpath.normalize_bluesky import jetstream_cursor

log = logging.getLogger("musicnft.produce.bluesky")

DEFAULT_URL = "wss://jetstream2.us-east.bsky.network/subscribe"

# A time_us this far past our clock is not a real cursor (Jetstream stamps messages itself);
# persisting it would make every later resume wait for a future that delivers nothing.
_MAX_FUTURE_US = 300 * 1_000_000
# Before any cursor, a time_us this far before our clock is not real either (it would make the
# next resume replay Jetstream's whole retention).
_MAX_PAST_US = 24 * 3600 * 1_000_000
# Dead-lettered frames are remembered this long past the rewind window, to recognise replays.
_DEAD_LETTER_MEMORY_US = 60 * 1_000_000


class Connection(Protocol):
    """The part of a websocket connection the source uses (websockets' sync ClientConnection)."""

    def recv(self, timeout: float | None = None, decode: bool | None = None) -> str | bytes: ...


# `connect(url)` gives a context manager that opens the connection on entry and closes it on exit:
# the form websockets (>= 16) asks for; its ClientConnection is such a context manager too.
Connect = Callable[[str], AbstractContextManager[Connection]]


def _websockets_connect(url: str) -> AbstractContextManager[Connection]:
    """websockets' client with the source's settings.

    `max_size=None`: a size limit would turn one oversized frame into an endless loop (the
    connection fails, the cursor points before the frame, the replay sends it again); the producer
    dead-letters oversized records instead. Keepalive pings (websockets' default, 20 s) detect a
    silently dead connection so it is replaced instead of waited on for ever.
    """
    from websockets.sync.client import connect

    # max_queue: frames buffered while the source handles the previous ones (it polls the
    # queue; 16 frames a poll would cap a busy firehose)
    return connect(url, open_timeout=10, close_timeout=2, max_size=None, max_queue=4096)


class JetstreamSource:
    """Iterate to get `(ref, raw_bytes)` for every Jetstream message until `stop` is set.

    Frames are passed on as they came, even broken ones: the normalizer decides, and a broken
    frame belongs in the dead-letter, not in a crash of the only thread reading the stream.
    """

    def __init__(
        self,
        url: str,
        cursor_path: Path,
        stop: threading.Event,
        collections: Sequence[str] = ("app.bsky.feed.post",),
        rewind_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
        connect: Connect | None = None,
        max_backoff: float = 60.0,
        poll_seconds: float = 0.05,
        stats_seconds: float = 30.0,
        persist_seconds: float = 1.0,
        durable_acks: bool = False,
    ) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in ("ws", "wss"):
            # Fail at start-up: a bad URL would otherwise become an endless reconnect loop.
            raise ValueError(f"Jetstream URL must be ws:// or wss://, got {url!r}")
        if not collections:
            raise ValueError("at least one collection is required")
        self.url = url
        self.cursor_path = Path(cursor_path)
        self.stop = stop
        self.collections = tuple(collections)
        self.rewind_us = int(rewind_seconds * 1_000_000)
        self.clock = clock
        # stop.wait, not time.sleep: a stop must not wait out a minute of backoff.
        self._sleep: Callable[[float], object] = sleep if sleep is not None else stop.wait
        self._connect: Connect = connect if connect is not None else _websockets_connect
        self.max_backoff = max_backoff
        self.poll_seconds = poll_seconds
        self.stats_seconds = stats_seconds
        self.persist_seconds = persist_seconds
        self.durable_acks = durable_acks

        self.cursor: int | None = self._load_cursor()  # time_us of the last message handed over
        # time_us of the newest message whose predecessors are all durable: what is persisted
        self.durable_cursor: int | None = self.cursor
        self.messages = 0  # frames received, all connections
        self.connects = 0  # successful connections
        self.disconnects = 0
        self.replayed_dead_letters = 0  # frames not handed over again (already dead-lettered)
        self._saved: int | None = self.cursor
        self._live_since_us: int | None = None
        self._frames_without_cursor = 0
        # The usable time_us (or None) of each message handed over and not yet durable, in order.
        self._pending: deque[int | None] = deque()
        self._handed = 0  # messages handed over
        self._settled = 0  # of which known durable (popped from _pending)
        self._acked = 0  # acknowledged by the consumer (any thread)
        self._dead_path = self.cursor_path.with_name(self.cursor_path.name + ".dead-lettered")
        self._dead: dict[str, int] = self._load_dead_lettered()  # digest → position (time_us)

    # -- cursor ------------------------------------------------------------------------------

    def _load_cursor(self) -> int | None:
        try:
            text = self.cursor_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error(
                "cannot read cursor %s (%s): starting live, posts may be missed",
                self.cursor_path,
                exc,
            )
            return None
        try:
            value = int(text)
        except ValueError:
            log.error(
                "cursor file %s holds %r, not a time_us: starting live, posts may be missed",
                self.cursor_path,
                text[:40],
            )
            return None
        return value if value >= 0 else None

    def acknowledge(self, durable: int) -> None:
        """The consumer's word that the first `durable` messages handed over are durable (on
        the stream, dead-lettered or needing nothing). Cheap and safe from any thread; the cursor
        is moved and persisted by the source's own thread."""
        if durable > self._acked:
            self._acked = durable

    def dead_lettered(self, ref: str, data: bytes) -> None:
        """The consumer dead-lettered this frame (durably): a replay of it is not handed over."""
        # Where it was in the stream: the cursor as it was handed over (the frame's own time_us
        # may be absent or absurd), which decides when it is old enough to forget.
        position = self.cursor if self.cursor is not None else (self.durable_cursor or 0)
        self._dead[_digest(data)] = position
        # Now, not with the next cursor: a kill -9 after the dead-letter's fsync must not make
        # the restart's replay dead-letter the frame again. Dead letters are rare.
        self._save_dead_lettered()

    def _settle(self) -> None:
        """Move the durable cursor over every message acknowledged so far."""
        acked = min(self._acked, self._handed)
        while self._settled < acked:
            time_us = self._pending.popleft()
            self._settled += 1
            if time_us is not None and (
                self.durable_cursor is None or time_us > self.durable_cursor
            ):
                self.durable_cursor = time_us

    def save_cursor(self) -> None:
        """Write the durable cursor atomically (temp file, fsync, rename), so a crash at any
        moment leaves the old cursor or the new one, never a torn file that would cost the
        resume."""
        self._settle()
        value = self.durable_cursor
        if value is None or value == self._saved:
            return
        _write_atomically(self.cursor_path, f"{value}\n")
        self._saved = value

    def close(self) -> None:
        """Persist what became durable after iteration ended (the producer's final flush)."""
        self.save_cursor()

    def _load_dead_lettered(self) -> dict[str, int]:
        try:
            lines = self._dead_path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return {}
        out: dict[str, int] = {}
        for line in lines:
            position, _, digest = line.partition(" ")
            if position.isdigit() and digest:
                out[digest] = int(position)
        return out

    def _save_dead_lettered(self) -> None:
        horizon = (self.durable_cursor or 0) - self.rewind_us - _DEAD_LETTER_MEMORY_US
        self._dead = {d: p for d, p in self._dead.items() if p >= horizon}
        text = "".join(f"{p} {d}\n" for d, p in self._dead.items())
        _write_atomically(self._dead_path, text)

    def resume_cursor(self) -> int | None:
        """The `cursor` to ask for: `rewind_seconds` before the last message handed over.

        The margin covers what the consumer of this iterator accepted but had not yet made
        durable (the producer batches for up to half a second) and small clock differences
        between Jetstream's hosts. Before any message, it is the moment we first tried to
        connect, so a connection that fails early does not open a gap either."""
        base = self.cursor if self.cursor is not None else self._live_since_us
        if base is None:
            return None
        return max(0, base - self.rewind_us)

    def subscribe_url(self) -> str:
        """`url` with our `wantedCollections` and `cursor` (any the caller put there replaced)."""
        parts = urlsplit(self.url)
        query = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k not in ("wantedCollections", "cursor")
        ]
        query.extend(("wantedCollections", c) for c in self.collections)
        cursor = self.resume_cursor()
        if cursor is not None:
            query.append(("cursor", str(cursor)))
        return urlunsplit(parts._replace(query=urlencode(query)))

    def _usable(self, time_us: int | None) -> int | None:
        """`time_us` if it can be a cursor; None for an absurd one (the frame still goes on)."""
        if time_us is None:
            return None
        now_us = int(self.clock() * 1_000_000)
        if time_us > now_us + _MAX_FUTURE_US:
            log.warning(
                "ignoring time_us %d: %.0f s in the future", time_us, (time_us - now_us) / 1e6
            )
            return None
        if self.cursor is None and time_us < now_us - _MAX_PAST_US:
            log.warning(
                "ignoring time_us %d: %.0f s in the past", time_us, (now_us - time_us) / 1e6
            )
            return None
        return time_us

    def _advance(self, time_us: int | None) -> None:
        # max: after a rewind the replayed messages are older than what was already handed over.
        if time_us is not None and (self.cursor is None or time_us > self.cursor):
            self.cursor = time_us

    def _hand_over(self, data: bytes) -> tuple[str, bytes] | None:
        """(ref, data) for a received frame, or None for one not to hand over again; never
        raises, whatever the frame holds."""
        if self._dead and _digest(data) in self._dead:
            self.replayed_dead_letters += 1
            log.info("skipping a replayed frame that is already in the dead-letter")
            return None
        time_us = self._usable(jetstream_cursor(data))
        self._advance(time_us)
        self._pending.append(time_us)
        self._handed += 1
        if not self.durable_acks:
            self._acked = self._handed  # handed over = done with, for a plain iterator
        return self._ref(time_us), data

    # -- iteration ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        delay = 1.0
        last_saved_at = last_stats_at = self.clock()
        stats_messages = self.messages
        if self.cursor is not None:
            age = self.clock() - self.cursor / 1_000_000
            log.info(
                "resuming from cursor %d (%.0f s ago, rewind %.1f s)",
                self.cursor,
                age,
                self.rewind_us / 1e6,
            )
        try:
            while not self.stop.is_set():
                url = self.subscribe_url()
                if self.cursor is None and self._live_since_us is None:
                    # A fresh start joins live; should this first connection fail before any
                    # message, the next one resumes from here rather than from "live" again.
                    self._live_since_us = int(self.clock() * 1_000_000)
                    if self.durable_acks and self.durable_cursor is None:
                        # Nothing before this moment is ours to deliver: a restart (even after
                        # a kill -9 before the first batch) resumes from here, not from "live".
                        self.durable_cursor = self._live_since_us
                        self.save_cursor()
                try:
                    session = self._connect(url)
                    conn = session.__enter__()
                except Exception as exc:
                    log.warning(
                        "connect to %s failed: %s: %s; retrying in %.0f s",
                        url,
                        type(exc).__name__,
                        exc,
                        delay,
                    )
                    delay = self._backoff(delay)
                    continue
                self.connects += 1
                log.info("connected to %s (connection %d)", url, self.connects)
                cause = "stop requested"
                try:
                    while not self.stop.is_set():
                        try:
                            # Never block inside websockets' frame queue: a SIGTERM landing on a
                            # thread blocked in SimpleQueue.get(timeout) can leave it blocked
                            # until the next frame (seen: a stop that never came on a quiet
                            # stream). Take what is there; else wait on the stop event, which
                            # a signal wakes as it should.
                            frame = conn.recv(timeout=0, decode=False)
                        except TimeoutError:
                            frame = None
                            self.stop.wait(self.poll_seconds)
                        except Exception as exc:
                            cause = f"{type(exc).__name__}: {exc}"
                            break
                        now = self.clock()
                        if frame is not None:
                            delay = 1.0  # a healthy message: the next failure starts over
                            self.messages += 1
                            item = self._hand_over(_frame_bytes(frame))
                            if item is not None:
                                yield item
                            now = self.clock()
                        if now - last_saved_at >= self.persist_seconds:
                            self.save_cursor()
                            last_saved_at = now
                        if now - last_stats_at >= self.stats_seconds:
                            self._log_stats(self.messages - stats_messages, now - last_stats_at)
                            last_stats_at, stats_messages = now, self.messages
                finally:
                    try:
                        session.__exit__(None, None, None)
                    except Exception as exc:  # closing a broken connection may fail too
                        log.debug("closing the connection failed: %s", exc)
                if self.stop.is_set():
                    break
                self.disconnects += 1
                log.warning(
                    "disconnected from Jetstream (%s); reconnecting in %.0f s from cursor %s",
                    cause,
                    delay,
                    self.resume_cursor(),
                )
                delay = self._backoff(delay)
        finally:
            self.save_cursor()
            log.info("jetstream source stopped: %d messages, cursor %s", self.messages, self.cursor)

    def _backoff(self, delay: float) -> float:
        """Wait `delay` (interrupted by stop) and return the next one: doubling, capped."""
        self._sleep(delay)
        return min(delay * 2, self.max_backoff)

    def _ref(self, time_us: int | None) -> str:
        if time_us is not None:
            return f"jetstream:{time_us}"
        # A frame without a cursor (a broken one): name it after the last good one for finding.
        self._frames_without_cursor += 1
        return f"jetstream:after-{self.cursor}#{self._frames_without_cursor}"

    def _log_stats(self, count: int, seconds: float) -> None:
        lag = "" if self.cursor is None else f", {self.clock() - self.cursor / 1e6:.1f} s behind"
        log.info(
            "jetstream: %d messages in %.0f s (%.1f/s), cursor %s%s",
            count,
            seconds,
            count / max(seconds, 1e-9),
            self.cursor,
            lag,
        )


def _frame_bytes(frame: str | bytes) -> bytes:
    """A frame as bytes; a str with lone surrogates keeps them (as invalid UTF-8 the normalizer
    rejects with a reason) instead of raising here."""
    if isinstance(frame, str):
        return frame.encode("utf-8", "surrogatepass")
    return bytes(frame)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _write_atomically(path: Path, text: str) -> None:
    """Temp file, fsync, rename: a crash at any moment leaves the old file or the new one."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
