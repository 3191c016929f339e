"""The scoring job's commit log (`<checkpoint>/_scored_log/`), and its compaction.

Each committed micro-batch N is one entry, `{"batch": N, "files": [keys], "rows": n}`, first
written as `N.json` (`sink.BatchWriter`). At a 30 s trigger that is ~2,880 objects a day, forever,
and every reader lists them all. So, the way Spark's own metadata logs do it
(`CompactibleFileStreamLog`), every `COMPACT_INTERVAL`-th batch (N + 1 a multiple of it) also
writes `N.compact`: `{"compact": N, "entries": [...]}`, every committed entry up to N (the
previous compact's and the `.json` entries since), in batch order. Only once that file is in
place (written whole: a temp file and a rename locally, one PUT on S3) are the `.json` entries
it holds and the older compacts deleted.

Readers (`entries`) take the newest `.compact` and then every `<M>.json` still present, in batch
order (an entry found in both is the same entry): the answer is the same before compaction,
after it, and after a kill at any point of it: before the rename there is no new compact (a
half-written temp file, `N.compact.tmp-*`, is not a log name and is ignored; the next
compaction removes it, and any other temp file a killed write left), after it the `.json` files
not yet deleted repeat what the compact holds. An old checkpoint with only `<N>.json` entries
reads as before.

The log still grows: the compact holds every committed batch's file list (about 100 bytes a
file), rewritten every `COMPACT_INTERVAL` batches; the number of log objects stays below
`COMPACT_INTERVAL` + a few.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from musicnft.spark.lake_fs import LakeRoot
from musicnft.spark.layout import scored_log_key

log = logging.getLogger("musicnft.spark")

COMPACT_INTERVAL = 10  # batches between compactions (Spark's compactInterval default is 10)
ENTRY_SUFFIX = ".json"
COMPACT_SUFFIX = ".compact"
PENDING_SUFFIX = ".pending"
_TMP_MARK = ".tmp-"  # LakeRoot.put's temp files (local lake)

Entry = dict[str, Any]


def entry_key(batch_id: int, rescore_version: str | None = None) -> str:
    return f"{scored_log_key(rescore_version)}{batch_id}{ENTRY_SUFFIX}"


def compact_key(batch_id: int, rescore_version: str | None = None) -> str:
    return f"{scored_log_key(rescore_version)}{batch_id}{COMPACT_SUFFIX}"


def pending_key(batch_id: int, rescore_version: str | None = None) -> str:
    return f"{scored_log_key(rescore_version)}{batch_id}{PENDING_SUFFIX}"


def is_compaction_batch(batch_id: int, interval: int | None = None) -> bool:
    """Batches 9, 19, 29, ... (interval 10) write a compact: Spark's own rule."""
    every = COMPACT_INTERVAL if interval is None else interval
    return (batch_id + 1) % every == 0


def _listing(lake: LakeRoot, rescore_version: str | None) -> tuple[dict[int, str], dict[int, str]]:
    """(batch -> `.json` key, batch -> `.compact` key) of the log; other names are ignored."""
    entries: dict[int, str] = {}
    compacts: dict[int, str] = {}
    for key, _size, _mtime in lake.list(scored_log_key(rescore_version)):
        name = key.rsplit("/", 1)[-1]
        for suffix, found in ((ENTRY_SUFFIX, entries), (COMPACT_SUFFIX, compacts)):
            stem = name[: -len(suffix)]
            if name.endswith(suffix) and stem.isdigit():
                found[int(stem)] = key
    return entries, compacts


def _entry(key: str, doc: Any) -> Entry:
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise ValueError(f"{key} is not a scored batch log entry (no files list)")
    return doc


def _read_compact(lake: LakeRoot, key: str) -> list[Entry]:
    doc = json.loads(lake.get(key))
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise ValueError(f"{key} is not a scored log compact file (no entries list)")
    return [_entry(key, e) for e in doc["entries"]]


def latest_compact(lake: LakeRoot, rescore_version: str | None = None) -> int | None:
    """The batch id of the newest compact file, None when the log has none."""
    _entries, compacts = _listing(lake, rescore_version)
    return max(compacts) if compacts else None


def entries(
    lake: LakeRoot, rescore_version: str | None = None, through: int | None = None
) -> dict[int, Entry]:
    """batch -> committed entry, in batch order (only batches <= `through` when given)."""
    jsons, compacts = _listing(lake, rescore_version)
    found: dict[int, Entry] = {}
    if compacts:
        for e in _read_compact(lake, compacts[max(compacts)]):
            found[int(e["batch"])] = e
    for batch, key in jsons.items():
        if batch not in found and (through is None or batch <= through):
            found[batch] = _entry(key, json.loads(lake.get(key)))
    return {b: found[b] for b in sorted(found) if through is None or b <= through}


def is_committed(lake: LakeRoot, batch_id: int, rescore_version: str | None = None) -> bool:
    """Whether batch `batch_id` is in the log (its `.json`, or a compact that holds it). A
    compact holds only batches up to its own id, so a new batch costs one listing, no read."""
    if lake.exists(entry_key(batch_id, rescore_version)):
        return True
    newest = latest_compact(lake, rescore_version)
    if newest is None or batch_id > newest:
        return False
    return any(
        int(e["batch"]) == batch_id
        for e in _read_compact(lake, compact_key(newest, rescore_version))
    )


def compact(lake: LakeRoot, batch_id: int, rescore_version: str | None = None) -> int:
    """Write `<batch_id>.compact` (every committed entry up to `batch_id`), then delete what it
    supersedes: the `.json` entries it holds, older compacts, and temp files a killed write
    left. Returns the number of log objects deleted. Idempotent: a compaction killed anywhere is
    redone (or finished) by running it again."""
    held = entries(lake, rescore_version, through=batch_id)
    key = compact_key(batch_id, rescore_version)
    doc = {"compact": batch_id, "entries": list(held.values())}
    lake.put(key, json.dumps(doc, separators=(",", ":")).encode())
    deleted = 0
    jsons, compacts = _listing(lake, rescore_version)
    stale = [k for b, k in jsons.items() if b in held]
    stale += [k for b, k in compacts.items() if b < batch_id]
    stale += [
        k
        for k, _size, _mtime in lake.list(scored_log_key(rescore_version))
        if _TMP_MARK in k.rsplit("/", 1)[-1]  # the job is the log's only writer: none is live
    ]
    for k in sorted(stale):
        lake.delete(k)
        deleted += 1
    log.info(
        "scored log: %d entries compacted into %s, %d objects removed", len(held), key, deleted
    )
    return deleted
