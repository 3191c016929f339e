"""The producer's durable spool: posts the stream cannot take yet, on disk, in order.

While the stream is unavailable (outage, credentials, throttling past a bound), accepted posts go
here instead of memory, so the producer's memory stays bounded however long the outage lasts; they
are drained in order, oldest first, when the stream takes records again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    partition_key TEXT NOT NULL,
    data BLOB NOT NULL
);
"""


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(self.path), timeout=60, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def append(self, entries: Sequence[tuple[str, bytes]]) -> None:
        if not entries:
            return
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.executemany(
                "INSERT INTO spool(partition_key, data) VALUES (?, ?)",
                [(k, sqlite3.Binary(d)) for k, d in entries],
            )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def peek(self, limit: int) -> list[tuple[int, str, bytes]]:
        rows = self._db.execute(
            "SELECT id, partition_key, data FROM spool ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [(int(i), str(k), bytes(d)) for i, k, d in rows]

    def remove(self, ids: Iterable[int]) -> None:
        self._db.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])

    def depth(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM spool").fetchone()[0])

    def close(self) -> None:
        self._db.close()
