"""The producer's durable spool: posts the stream cannot take yet, on disk, in order.

While the stream is unavailable (outage, credentials, throttling past a bound), accepted posts go
here instead of memory, so the producer's memory stays bounded however long the outage lasts; they
are drained in order, oldest first, when the stream takes records again.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

log = logging.getLogger("musicnft.spool")

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
        self.quarantined: Path | None = None
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            # A spool that cannot be read must not keep the producer from starting: set it
            # aside whole (an operator can still recover what it holds) and start a new one.
            self.quarantined = self._quarantine(exc)
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            str(self.path), timeout=60, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            check = db.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check[0] if check else 'no answer'}")
            db.execute("SELECT count(*) FROM spool").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _quarantine(self, exc: Exception) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                part.rename(Path(f"{target}{suffix}"))
        log.error(
            "spool %s is unreadable (%s); moved to %s and starting an empty spool",
            self.path,
            exc,
            target,
        )
        return target

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

    def compact_if_empty(self, min_bytes: int = 1 << 20) -> bool:
        """Give the disk back after an outage: VACUUM an empty spool that grew past `min_bytes`."""
        if self.depth() or self.disk_bytes() < min_bytes:
            return False
        self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return True

    def disk_bytes(self) -> int:
        """The spool's size on disk, its write-ahead log included."""
        return sum(
            Path(f"{self.path}{s}").stat().st_size
            for s in ("", "-wal")
            if Path(f"{self.path}{s}").exists()
        )

    def depth(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM spool").fetchone()[0])

    def close(self) -> None:
        self._db.close()
