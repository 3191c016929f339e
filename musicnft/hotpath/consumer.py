"""The consumer's logic (the Lambda's job): decode stream records, enrich, write `posts_hot`.

Pure per-record work (`decode_post`, `enrich`) plus two batch functions shaped exactly like AWS's
contracts, so the same code runs under Lambda and under the local consumer loop:

- Kinesis event source: returns `{"batchItemFailures": [{"itemIdentifier": <sequenceNumber>}]}`
  naming only the records that failed; a warehouse outage raises, so the whole batch is retried.
- Firehose transformation: answers every `recordId` with `Ok` (the conformed post as JSON) or
  `ProcessingFailed` (Firehose then writes it to its error prefix).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from musicnft.contract.schema import (
    HOT_FIELDS,
    POST_FIELDS,
    SchemaError,
    conform,
    encode_record,
)
from musicnft.contract.tombstone import is_tombstone_record
from musicnft.hotpath.decode import RejectedRecord, decode_line
from musicnft.hotpath.enrich import enrich
from musicnft.hotpath.entities import with_entities
from musicnft.hotpath.model_scoring import score_rows  # the trained model's columns
from musicnft.hotpath.tombstones import apply_tombstones, tombstone_of

log = logging.getLogger("musicnft.consumer")

# The posts_hot columns a decoded post does not have yet (enrichment, model, entities, inserted_at)
_POST_NAMES = frozenset(f.name for f in POST_FIELDS)
_ADDED_HOT_FIELDS = tuple(f for f in HOT_FIELDS if f.name not in _POST_NAMES)


class PostsHotWriter(Protocol):
    def insert_rows(self, table: str, rows: Any, row_ids: Any) -> Any: ...


def without_repaired(warehouse: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` less the posts reconciliation already put into posts_hot from the lake (a
    consumer that lagged behind the lake would otherwise insert them a second time)."""
    repaired_ids = getattr(warehouse, "repaired_ids", None)  # a capability of some warehouses
    if not rows or repaired_ids is None:
        return rows
    repaired = repaired_ids([r["post_id"] for r in rows])
    if repaired:
        log.info(
            "%d post(s) already repaired into posts_hot by reconciliation; skipped", len(repaired)
        )
    return [r for r in rows if r["post_id"] not in repaired]


def decode_post(data: bytes) -> dict[str, Any]:
    """A stream record's bytes → a conformed post. Raises RejectedRecord naming the fault."""
    try:
        return conform(decode_line(data))
    except SchemaError as exc:
        raise RejectedRecord(f"does not fit the post schema: {exc}") from None


def _b64(data: Any) -> bytes:
    if not isinstance(data, str):
        raise RejectedRecord("record data is not a base64 string")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RejectedRecord("record data is not valid base64") from None


def enrich_rows(posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Posts → posts_hot rows (every warehouse column; the warehouse stamps `inserted_at`)."""
    return score_rows([with_entities(conform(enrich(p), HOT_FIELDS)) for p in posts])


def enrich_decoded(posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`enrich_rows` for posts `decode_post` has just conformed: only the columns `enrich` adds
    are checked, not the post's own a second time (checking them twice was a third of the
    consumer's CPU). Same rows as `enrich_rows` gives (tests/hotpath/test_enrich_decoded.py)."""
    rows = []
    for post in posts:
        row = enrich(post)
        row.update(conform(row, _ADDED_HOT_FIELDS))
        rows.append(with_entities(row))
    return score_rows(rows)


def handle_kinesis_event(event: Mapping[str, Any], warehouse: PostsHotWriter) -> dict[str, Any]:
    """Kinesis event → posts_hot rows; reports exactly the records that could not be processed:
    those that do not decode, and those whose rows the warehouse rejected after its retries."""
    failures: list[dict[str, str]] = []
    posts: list[dict[str, Any]] = []
    tombstones: list[Any] = []  # deletions at the source (musicnft.hotpath.tombstones)
    sequences: dict[str, list[str]] = {}  # post_id -> the records that carried it
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise ValueError("not a Kinesis event: no 'Records' list")
    for record in records:
        kinesis = record.get("kinesis") if isinstance(record, Mapping) else None
        seq = kinesis.get("sequenceNumber") if isinstance(kinesis, Mapping) else None
        if not isinstance(seq, str):
            # Without a sequence number Lambda cannot be told which record failed: fail loudly.
            raise ValueError("Kinesis record without kinesis.sequenceNumber")
        assert isinstance(kinesis, Mapping)  # a str sequence number came from a Mapping
        try:
            data = _b64(kinesis.get("data"))
            if is_tombstone_record(data):
                tombstones.append(tombstone_of(data))
                continue
            post = decode_post(data)
        except RejectedRecord as exc:
            log.error("kinesis record %s rejected: %s", seq, exc.reason)
            failures.append({"itemIdentifier": seq})
            continue
        posts.append(post)
        sequences.setdefault(post["post_id"], []).append(seq)
    rows = apply_tombstones(
        warehouse, tombstones, without_repaired(warehouse, enrich_decoded(posts))
    )
    if rows:
        # An exception here (warehouse down) fails the batch as a whole: Lambda retries it.
        result = warehouse.insert_rows("posts_hot", rows, [r["post_id"] for r in rows])
        log.debug("posts_hot insert: %s", result)
        for post_id in getattr(result, "failed", ()):
            for seq in sequences.get(post_id, []):
                log.error("kinesis record %s: posts_hot rejected post %s", seq, post_id)
                failures.append({"itemIdentifier": seq})
    return {"batchItemFailures": failures}


def handle_firehose_event(event: Mapping[str, Any], warehouse: PostsHotWriter) -> dict[str, Any]:
    """Firehose transformation event → one answer per recordId; good posts also go to posts_hot."""
    records = event.get("records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise ValueError("not a Firehose transformation event: no 'records' list")
    answers: list[dict[str, Any]] = []
    good: list[dict[str, Any]] = []
    tombstones: list[Any] = []
    for record in records:
        record_id = record.get("recordId") if isinstance(record, Mapping) else None
        if not isinstance(record_id, str):
            raise ValueError("Firehose record without recordId")
        raw = record.get("data")
        try:
            data = _b64(raw)
            if is_tombstone_record(data):  # applied below; never a row of the lake's raw/
                tombstones.append(tombstone_of(data))
                answers.append({"recordId": record_id, "result": "Dropped", "data": raw})
                continue
            post = decode_post(data)
        except RejectedRecord as exc:
            log.error("firehose record %s rejected: %s", record_id, exc.reason)
            answers.append({"recordId": record_id, "result": "ProcessingFailed", "data": raw or ""})
            continue
        good.append(post)
        body = encode_record(post) + b"\n"
        answers.append(
            {"recordId": record_id, "result": "Ok", "data": base64.b64encode(body).decode()}
        )
    rows = apply_tombstones(warehouse, tombstones, enrich_decoded(good))
    if rows:
        result = warehouse.insert_rows("posts_hot", rows, [r["post_id"] for r in rows])
        for post_id in getattr(result, "failed", ()):
            # The record still goes to the lake (answered Ok): reconciliation inserts it into
            # posts_hot from there. Failing it here would send it to errors/ instead.
            log.error(
                "posts_hot rejected post %s; it is kept in the lake and reconciliation "
                "will insert it",
                post_id,
            )
    return {"records": answers}
