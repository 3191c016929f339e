"""The post ids of every lake file, remembered between calls: `status` (every 15 s under the
supervisor) reads only the files that are new or changed since its last look, instead of every
file of the lake (on S3, a download each).

The memory is one local Parquet file of (key, size, last_modified, post_id) rows beside the other
local state. A file is read again when its size or last_modified changes (a purge rewrote it);
a file gone from the listing is forgotten. Losing the memory costs one full read, nothing else.
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from musicnft.batch.lake_index import read_table
from musicnft.ports import Lake, LakeObject

log = logging.getLogger("musicnft.status")

_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("modified", pa.float64()),
        pa.field("post_id", pa.string()),
    ]
)


@dataclass(frozen=True)
class Census:
    rows: int
    unique: int
    files: int
    read: int  # files read in this call (the rest came from the memory)


def _load(path: Path | None) -> dict[tuple[str, int, float], pa.ChunkedArray]:
    if path is None or not path.exists():
        return {}
    try:
        table = pq.read_table(path, schema=_SCHEMA)
    except (pa.ArrowException, OSError) as exc:
        log.warning("lake census memory %s unreadable (%s); reading the lake afresh", path, exc)
        return {}
    out: dict[tuple[str, int, float], pa.ChunkedArray] = {}
    if table.num_rows == 0:
        return out
    table = table.sort_by("key")
    keys = table.column("key")
    # one slice per file: the rows of a key are contiguous after sorting
    starts = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1)).to_pylist()
    bounds = [0] + [i + 1 for i, changed in enumerate(starts) if changed] + [len(keys)]
    for lo, hi in itertools.pairwise(bounds):
        part = table.slice(lo, hi - lo)
        ident = (part["key"][0].as_py(), part["size"][0].as_py(), part["modified"][0].as_py())
        ids = part.column("post_id")
        out[ident] = ids if part["post_id"].null_count < len(part) else ids.slice(0, 0)
    return out


def _save(path: Path, remembered: dict[tuple[str, int, float], pa.ChunkedArray]) -> None:
    parts = []
    for (key, size, modified), ids in remembered.items():
        n = max(len(ids), 1)  # a file with no rows is remembered by one null id
        column = ids.combine_chunks() if len(ids) else pa.nulls(1, pa.string())
        parts.append(
            pa.table(
                [
                    pa.array([key] * n, pa.string()),
                    pa.array([size] * n, pa.int64()),
                    pa.array([modified] * n, pa.float64()),
                    column.cast(pa.string()),
                ],
                schema=_SCHEMA,
            )
        )
    table = pa.concat_tables(parts) if parts else _SCHEMA.empty_table()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # atomic: a concurrent status reads the old memory or the new one


def _ident(obj: LakeObject) -> tuple[str, int, float]:
    return (obj.key, int(obj.size), obj.last_modified.timestamp())


def lake_census(
    lake: Lake, objects: list[LakeObject], memory: Path | None, column: str = "post_id"
) -> Census:
    """Rows and unique post ids over `objects` (the lake's Parquet files), reading only those the
    memory does not hold as they are now. An unreadable file is logged and counted as empty (the
    windows quarantine it); it is tried again next time. `column` names the id read (`sale_id`
    for the lake's sales/, with a memory of its own; the memory keeps it as `post_id`)."""
    remembered = _load(memory)
    current: dict[tuple[str, int, float], pa.ChunkedArray] = {}
    read = 0
    for obj in objects:
        ident = _ident(obj)
        if ident in remembered:
            current[ident] = remembered[ident]
            continue
        try:
            ids = read_table(lake, obj.key, columns=[column]).column(0).cast(pa.string())
        except Exception as exc:  # an unreadable file (quarantined by the windows) or a blip
            log.warning("status cannot read %s: %s", obj.key, exc)
            continue
        read += 1
        current[ident] = ids
    if memory is not None and (read or set(current) != set(remembered)):
        try:
            _save(memory, current)
        except OSError as exc:  # a read-only data dir: counting still works, only slower
            log.warning("cannot keep the lake census memory at %s: %s", memory, exc)
    rows = sum(len(ids) for ids in current.values())
    chunks = [chunk for ids in current.values() for chunk in ids.chunks]
    unique = pc.count_distinct(pa.chunked_array(chunks, pa.string())).as_py() if rows else 0
    return Census(rows=rows, unique=int(unique), files=len(objects), read=read)
