"""The embedded profile's stream: a durable, ordered log in SQLite (WAL mode).

It plays Kinesis Data Streams' role on one machine: one writer and any number of readers in other
processes, records kept in arrival order, and a checkpoint per named reader so each consumer
(delivery, consumer) resumes exactly where it committed. WAL lets readers read while the writer
appends; every transaction is short, and a busy timeout turns the rare writer overlap (checkpoint
commits) into a brief wait rather than an error.
"""

from __future__ import annotations

import sqlite3
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from musicnft.ports import StreamRecord

DEFAULT_READERS: tuple[str, ...] = ("delivery", "consumer")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    shard INTEGER NOT NULL,
    partition_key TEXT NOT NULL,
    data BLOB NOT NULL,
    arrival REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    reader TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
"""


def shard_for(partition_key: str, shards: int) -> int:
    """Stable shard choice (crc32 of the key), so one post id always lands on one shard."""
    return zlib.crc32(partition_key.encode("utf-8")) % shards


class LocalStream:
    """A stream in one SQLite file. Open one instance per process (connections don't cross fork)."""

    poll_seconds = 0.05  # an idle reader's pause: a read is one indexed SQLite query

    def __init__(
        self,
        path: Path,
        shards: int = 4,
        readers: Iterable[str] = DEFAULT_READERS,
        timeout_seconds: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self.shards = shards
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(self.path), timeout=timeout_seconds, isolation_level=None, check_same_thread=False
        )
        # A new file gives freed pages back on request (`trim`); an older file is converted by
        # the first VACUUM `trim` makes (set on an existing file, the pragma would only pretend).
        if self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed put survives power loss, which is what the producer promises callers.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        now = time.time()
        self._db.executemany(
            "INSERT OR IGNORE INTO checkpoints(reader, seq, updated_at) VALUES (?, 0, ?)",
            [(r, now) for r in readers],
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LocalStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put_records(self, entries: Sequence[tuple[str, bytes]]) -> list[int]:
        """Append (partition_key, data) pairs atomically, in order; returns their sequence numbers."""
        if not entries:
            return []
        now = time.time()
        rows = [(shard_for(k, self.shards), k, sqlite3.Binary(d), now) for k, d in entries]
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            seqs = []
            for row in rows:
                cur.execute(
                    "INSERT INTO records(shard, partition_key, data, arrival) VALUES (?, ?, ?, ?)",
                    row,
                )
                seqs.append(int(cur.lastrowid or 0))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return seqs

    def read(self, after: int, limit: int) -> list[StreamRecord]:
        """Records with a sequence number above `after`, oldest first."""
        rows = self._db.execute(
            "SELECT seq, shard, partition_key, data, arrival FROM records "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [
            StreamRecord(int(s), int(sh), str(k), bytes(d), float(a)) for s, sh, k, d, a in rows
        ]

    def checkpoint(self, reader: str) -> int:
        row = self._db.execute("SELECT seq FROM checkpoints WHERE reader = ?", (reader,)).fetchone()
        return int(row[0]) if row else 0

    def commit(self, reader: str, seq: int) -> None:
        """Move `reader`'s checkpoint forward to `seq` (never backwards)."""
        self._db.execute(
            "INSERT INTO checkpoints(reader, seq, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(reader) DO UPDATE SET seq = max(seq, excluded.seq), "
            "updated_at = excluded.updated_at",
            (reader, seq, time.time()),
        )

    def total_appended(self) -> int:
        """Every record ever accepted (trimmed ones included)."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        return int(row[0]) if row else 0

    def count(self) -> int:
        """Records currently held (after retention trims)."""
        return int(self._db.execute("SELECT count(*) FROM records").fetchone()[0])

    def lag(self, reader: str) -> int:
        return int(
            self._db.execute(
                "SELECT count(*) FROM records WHERE seq > ?", (self.checkpoint(reader),)
            ).fetchone()[0]
        )

    def checkpoints(self) -> dict[str, int]:
        return {str(r): int(s) for r, s in self._db.execute("SELECT reader, seq FROM checkpoints")}

    def trim(self, retention_seconds: float, now: float | None = None) -> int:
        """Drop records older than the retention that every registered reader has passed.

        Unlike Kinesis, a record nobody has read yet is kept past retention: losing posts is worse
        than keeping a larger file.
        """
        now = time.time() if now is None else now
        cur = self._db.execute(
            "DELETE FROM records WHERE arrival < ? AND seq <= "
            "(SELECT coalesce(min(seq), 0) FROM checkpoints)",
            (now - retention_seconds,),
        )
        removed = int(cur.rowcount)
        if removed:
            self.reclaim()
        return removed

    def reclaim(self, min_free_pages: int = 1024) -> bool:
        """Give the disk back once a quarter of the file (and at least `min_free_pages`) is free
        pages, as after a backlog was worked off: SQLite otherwise keeps the file at its peak
        size for ever. Returns whether pages were given back."""
        free = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
        total = int(self._db.execute("PRAGMA page_count").fetchone()[0])
        if free < min_free_pages or free * 4 < total:
            return False
        if int(self._db.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2:
            self._db.executescript("PRAGMA incremental_vacuum;")  # (stepped to the end)
        else:  # a file made before auto_vacuum was set: one full VACUUM converts it
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("VACUUM")
        return True


class LocalStreamSink:
    """The embedded profile's sink: one atomic append per batch to the local stream."""

    def __init__(self, stream: LocalStream) -> None:
        self.stream = stream

    def put_records(self, entries: Sequence[tuple[str, bytes]]) -> None:
        self.stream.put_records(entries)

    def close(self) -> None:
        self.stream.close()
