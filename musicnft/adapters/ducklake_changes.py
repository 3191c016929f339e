"""Small reads kept until a DuckLake snapshot changes the tables they read.

The consumer asks two questions per batch of the embedded warehouse: which of these posts were
deleted at the source (`deletions`), and which did reconciliation already repair into posts_hot
(`posts_hot_repairs`). Each was a DuckLake table scan: ~40 ms of catalog work per table, per
batch, for tables that change a few times a day. DuckLake records what every snapshot changed
(`ducklake_snapshot_changes`, one metadata row per snapshot), so one look at the snapshots since
the last read (~6 ms) says whether a kept answer still holds.

The rule is conservative: an answer is read again when any snapshot since it was read changed one
of its tables, changed anything that is not plainly a table id (a table created, dropped or
altered: ids may have moved), or is missing from the catalog (expired meanwhile: its changes are
unknown). Otherwise the kept answer is exactly what a fresh read would give.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger("musicnft.warehouse")

T = TypeVar("T")

# One change of a snapshot that names a table by its id (anything else forces a re-read)
_TABLE_CHANGE = re.compile(r"^(?:inserted_into_table|deleted_from_table|compacted_table):(\d+)$")


@dataclass(frozen=True)
class Changes:
    """What the snapshots after a given one changed: table ids, or `everything`."""

    latest: int
    table_ids: frozenset[int]
    everything: bool


def changes_since(rows: Sequence[tuple[Any, Any]], after: int) -> Changes:
    """Fold `(snapshot_id, changes_made)` rows of the snapshots after `after` into Changes.

    Pure (the tests give it rows by hand). A gap in the ids (an expired snapshot) or a change that
    does not name a table id makes `everything` true."""
    ids = sorted(int(s) for s, _ in rows)
    latest = ids[-1] if ids else after
    everything = ids != list(range(after + 1, latest + 1))
    tables: set[int] = set()
    for _, made in rows:
        if made is None:  # a snapshot whose changes the catalog does not say
            everything = True
            continue
        for item in str(made).split(","):
            if not item:
                continue
            match = _TABLE_CHANGE.match(item.strip())
            if match is None:
                everything = True
            else:
                tables.add(int(match.group(1)))
    return Changes(latest=latest, table_ids=frozenset(tables), everything=everything)


@dataclass
class _Entry:
    snapshot: int
    table_ids: frozenset[int]
    value: Any


class SnapshotCache:
    """Answers of `read` kept per key, valid until a snapshot changes one of their tables.

    `query(sql, params)` runs a metadata query on the warehouse's reader and returns rows.
    """

    def __init__(self, query: Callable[[str, list[Any]], list[tuple[Any, ...]]], alias: str):
        self._query = query
        self._meta = f"__ducklake_metadata_{alias}"
        self._entries: dict[str, _Entry] = {}
        self.reads = 0  # answers read afresh (the tests count them)
        self.disabled = False

    def get(self, key: str, tables: Iterable[str], read: Callable[[], T]) -> T:
        """`read()`'s answer for `key`, read afresh only when `tables` may have changed."""
        if self.disabled:
            return read()
        entry = self._entries.get(key)
        try:
            if entry is not None:
                changes = self._changes_since(entry.snapshot)
                if not changes.everything and not (changes.table_ids & entry.table_ids):
                    entry.snapshot = changes.latest
                    return entry.value
            snapshot = self._latest()
            table_ids = self._table_ids(tables)
        except Exception as exc:  # a catalog without these metadata tables: read every time
            log.warning("snapshot cache off (%s: %s); reading every time", type(exc).__name__, exc)
            self.disabled = True
            return read()
        # The snapshot is taken before the read: the read sees it or a later one, so a change
        # after it is looked at next time (at worst read twice, never missed).
        value = read()
        self.reads += 1
        self._entries[key] = _Entry(snapshot, table_ids, value)
        return value

    def _latest(self) -> int:
        ((latest,),) = self._query(
            f"SELECT max(snapshot_id) FROM {self._meta}.ducklake_snapshot", []
        )
        return int(latest or 0)

    def _changes_since(self, after: int) -> Changes:
        rows = self._query(
            f"SELECT s.snapshot_id, c.changes_made FROM {self._meta}.ducklake_snapshot s "
            f"LEFT JOIN {self._meta}.ducklake_snapshot_changes c USING (snapshot_id) "
            "WHERE s.snapshot_id > ?",
            [after],
        )
        return changes_since([(r[0], r[1]) for r in rows], after)

    def _table_ids(self, tables: Iterable[str]) -> frozenset[int]:
        names = sorted(set(tables))
        rows = self._query(
            f"SELECT t.table_id FROM {self._meta}.ducklake_table t "
            f"JOIN {self._meta}.ducklake_schema s USING (schema_id) "
            "WHERE t.end_snapshot IS NULL AND s.end_snapshot IS NULL AND s.schema_name = 'main' "
            "AND list_contains(?, t.table_name)",
            [names],
        )
        found = frozenset(int(r[0]) for r in rows)
        if len(found) != len(names):
            raise LookupError(f"tables {names} not all in the catalog")
        return found
