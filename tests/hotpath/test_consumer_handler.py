"""The consumer's Lambda contract: Kinesis event source and Firehose transformation.

Events are fixtures shaped exactly as AWS sends them (REFERENCE.md "Lambda on a Kinesis stream",
"Firehose"); each record's data is a normalized post as the producer puts it on the stream.
The handler file is loaded by path, as the Lambda runtime does.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import (
    ENRICHED_COLUMNS,
    HOT_COLUMNS,
    HOT_FIELDS,
    conform,
    parse_timestamp,
)
from musicnft.contract.schema import to_json_record as json_record
from musicnft.hotpath.consumer import handle_firehose_event, handle_kinesis_event
from musicnft.hotpath.enrich import enrich
from musicnft.hotpath.entities import with_entities
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.local.consumer_loop import kinesis_event, load_handler_module
from musicnft.ports import StreamRecord

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
Event = dict[str, Any]
Post = dict[str, Any]

KINESIS_RECORD_KEYS = {
    "kinesis",
    "eventSource",
    "eventVersion",
    "eventID",
    "eventName",
    "invokeIdentityArn",
    "awsRegion",
    "eventSourceARN",
}
KINESIS_DATA_KEYS = {
    "kinesisSchemaVersion",
    "partitionKey",
    "sequenceNumber",
    "data",
    "approximateArrivalTimestamp",
}


def load_event(name: str) -> Event:
    event: Event = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return event


def source_posts() -> list[Post]:
    """The posts the fixtures' good records carry, produced by the normalizer."""
    source = json.loads((FIXTURES / "x_messages.json").read_text(encoding="utf-8"))
    matcher = KeywordMatcher(source["keywords"])
    ingested_at = parse_timestamp(source["ingested_at"])
    return [normalize_x_message(m, matcher, ingested_at) for m in source["messages"]]


POSTS = source_posts()
POST_IDS = [p["post_id"] for p in POSTS]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def stream_data(post: Post) -> bytes:
    """A post as the producer puts it on the stream."""
    return json.dumps(json_record(post)).encode("utf-8")


def sequence_numbers(event: Event) -> list[str]:
    return [r["kinesis"]["sequenceNumber"] for r in event["Records"]]


def expected_rows(posts: list[Post]) -> list[Post]:
    """posts_hot rows as the consumer writes them, without `inserted_at` (the warehouse's)."""
    rows = (with_entities(conform(enrich(p), HOT_FIELDS)) for p in posts)
    return sorted(({k: v for k, v in r.items() if k != "inserted_at"} for r in rows),
                  key=lambda r: r["post_id"])  # fmt: skip


def hot_rows(warehouse: EmbeddedWarehouse) -> list[Post]:
    """posts_hot's rows; every one carries the time the warehouse accepted it (then dropped)."""
    rows = warehouse.query("SELECT * FROM posts_hot ORDER BY post_id").to_pylist()
    assert all(r.pop("inserted_at") is not None for r in rows)
    return rows


class FakeWarehouse:
    """Records every insert_rows call; optionally fails like an unreachable warehouse."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, list[Post], list[str]]] = []
        self.fail = fail

    def insert_rows(self, table: str, rows: Any, row_ids: Any) -> None:
        if self.fail:
            raise ConnectionError("warehouse unreachable")
        self.calls.append((table, list(rows), list(row_ids)))

    @property
    def rows(self) -> list[Post]:
        return [row for _, rows, _ in self.calls for row in rows]


POISON_DATA: dict[str, str] = {
    "invalid-base64": "this is not base64!!",
    "non-json-bytes": b64(b"\x00\x01 definitely { not json"),
    "invalid-utf8": b64(b'{"post_id": "x:1", "text": "\xff"}'),
    "json-array": b64(json.dumps([json_record(POSTS[0])]).encode()),
    "json-without-post_id": b64(
        json.dumps({k: v for k, v in json_record(POSTS[0]).items() if k != "post_id"}).encode()
    ),
    "json-without-text": b64(
        json.dumps({k: v for k, v in json_record(POSTS[0]).items() if k != "text"}).encode()
    ),
    "wrong-type-like_count": b64(json.dumps({**json_record(POSTS[0]), "like_count": "7"}).encode()),
    "wrong-type-hashtags": b64(json.dumps({**json_record(POSTS[0]), "hashtags": "nft"}).encode()),
    "bad-created_at": b64(json.dumps({**json_record(POSTS[0]), "created_at": "soon"}).encode()),
    "future-schema_version": b64(
        json.dumps({**json_record(POSTS[0]), "schema_version": 2}).encode()
    ),
}


def with_poison_in_the_middle(data: str) -> tuple[Event, str]:
    """The all-good Kinesis event with its middle record's data replaced; returns its seq too."""
    event = load_event("kinesis_event.json")
    middle = event["Records"][1]
    middle["kinesis"]["data"] = data
    return event, middle["kinesis"]["sequenceNumber"]


# ---- the fixtures are what the producer and AWS would send --------------------------------------


def test_kinesis_fixture_records_carry_the_normalized_posts() -> None:
    event = load_event("kinesis_event.json")

    decoded = [json.loads(base64.b64decode(r["kinesis"]["data"])) for r in event["Records"]]

    assert decoded == [json_record(p) for p in POSTS]
    assert [r["kinesis"]["partitionKey"] for r in event["Records"]] == POST_IDS


@pytest.mark.parametrize("name", ["kinesis_event.json", "kinesis_event_poison.json"])
def test_kinesis_fixture_has_the_aws_event_shape(name: str) -> None:
    event = load_event(name)

    assert list(event) == ["Records"]
    for record in event["Records"]:
        assert set(record) == KINESIS_RECORD_KEYS
        assert set(record["kinesis"]) == KINESIS_DATA_KEYS
        assert record["eventSource"] == "aws:kinesis"
        assert record["eventName"] == "aws:kinesis:record"
        assert record["eventID"].endswith(":" + record["kinesis"]["sequenceNumber"])
        assert record["eventSourceARN"].startswith("arn:aws:kinesis:")


def test_local_consumer_loop_builds_the_same_event_shape_as_the_fixture() -> None:
    record = StreamRecord(
        seq=7, shard=0, partition_key="x:1", data=stream_data(POSTS[0]), arrival=1714564801.1234
    )

    event = kinesis_event([record], "musicnft-posts")

    assert set(event) == {"Records"}
    assert set(event["Records"][0]) == KINESIS_RECORD_KEYS
    assert set(event["Records"][0]["kinesis"]) == KINESIS_DATA_KEYS


def test_firehose_fixture_has_the_aws_event_shape() -> None:
    event = load_event("firehose_event.json")

    assert set(event) == {
        "invocationId",
        "deliveryStreamArn",
        "sourceKinesisStreamArn",
        "region",
        "records",
    }
    for record in event["records"]:
        assert set(record) == {
            "recordId",
            "approximateArrivalTimestamp",
            "data",
            "kinesisRecordMetadata",
        }


# ---- pure functions with a fake warehouse -------------------------------------------------------


def test_kinesis_all_good_reports_no_failures_and_inserts_enriched_posts() -> None:
    warehouse = FakeWarehouse()

    result = handle_kinesis_event(load_event("kinesis_event.json"), warehouse)

    assert result == {"batchItemFailures": []}
    # one streaming insert for the batch, keyed by post id (BigQuery's insertId)
    assert len(warehouse.calls) == 1
    table, rows, row_ids = warehouse.calls[0]
    assert table == "posts_hot"
    assert row_ids == POST_IDS
    assert rows == [with_entities(conform(enrich(p), HOT_FIELDS)) for p in POSTS]
    assert all(list(r) == list(HOT_COLUMNS) for r in rows)


@pytest.mark.parametrize("data", list(POISON_DATA.values()), ids=list(POISON_DATA))
def test_kinesis_poison_record_in_the_middle_is_reported_alone(data: str) -> None:
    # GIVEN three records whose middle one is poison
    event, poison_seq = with_poison_in_the_middle(data)
    warehouse = FakeWarehouse()

    # WHEN the batch is handled
    result = handle_kinesis_event(event, warehouse)

    # THEN exactly that record is reported, and the good ones around it are written
    assert result == {"batchItemFailures": [{"itemIdentifier": poison_seq}]}
    assert [r["post_id"] for r in warehouse.rows] == [POST_IDS[0], POST_IDS[2]]


@pytest.mark.parametrize("data", [None, 42, ["eyJ9"]], ids=repr)
def test_kinesis_record_with_non_string_data_is_reported(data: Any) -> None:
    event, poison_seq = with_poison_in_the_middle("")
    event["Records"][1]["kinesis"]["data"] = data

    result = handle_kinesis_event(event, FakeWarehouse())

    assert result == {"batchItemFailures": [{"itemIdentifier": poison_seq}]}


def test_kinesis_mixed_poison_fixture_reports_exactly_the_poison_records() -> None:
    event = load_event("kinesis_event_poison.json")
    seqs = sequence_numbers(event)
    warehouse = FakeWarehouse()

    result = handle_kinesis_event(event, warehouse)

    # records 2, 4, 5, 6 are: invalid base64, non-JSON bytes, JSON without post_id, wrong type
    assert result == {"batchItemFailures": [{"itemIdentifier": seqs[i]} for i in (1, 3, 4, 5)]}
    assert [r["post_id"] for r in warehouse.rows] == POST_IDS


def test_kinesis_all_poison_batch_reports_all_and_inserts_nothing() -> None:
    event = load_event("kinesis_event.json")
    for record in event["Records"]:
        record["kinesis"]["data"] = POISON_DATA["non-json-bytes"]
    warehouse = FakeWarehouse()

    result = handle_kinesis_event(event, warehouse)

    assert result == {"batchItemFailures": [{"itemIdentifier": s} for s in sequence_numbers(event)]}
    assert warehouse.calls == []


def test_kinesis_empty_batch_is_fine() -> None:
    warehouse = FakeWarehouse()

    assert handle_kinesis_event({"Records": []}, warehouse) == {"batchItemFailures": []}
    assert warehouse.calls == []


def test_kinesis_warehouse_failure_raises_so_lambda_retries_the_batch() -> None:
    # GIVEN a warehouse whose insert raises (outage)
    warehouse = FakeWarehouse(fail=True)

    # WHEN a good batch is handled, THEN the handler raises instead of reporting success
    with pytest.raises(ConnectionError):
        handle_kinesis_event(load_event("kinesis_event.json"), warehouse)


@pytest.mark.parametrize(
    "event",
    [{}, {"records": []}, {"Records": None}, {"Records": "x"}, [], None],
    ids=repr,
)
def test_kinesis_event_without_records_raises_value_error(event: Any) -> None:
    with pytest.raises(ValueError):
        handle_kinesis_event(event, FakeWarehouse())


def test_kinesis_record_without_sequence_number_raises_value_error() -> None:
    event = load_event("kinesis_event.json")
    del event["Records"][1]["kinesis"]["sequenceNumber"]
    warehouse = FakeWarehouse()

    with pytest.raises(ValueError):
        handle_kinesis_event(event, warehouse)
    assert warehouse.calls == []


def test_kinesis_does_not_modify_the_event() -> None:
    event = load_event("kinesis_event_poison.json")
    before = copy.deepcopy(event)

    handle_kinesis_event(event, FakeWarehouse())

    assert event == before


def test_firehose_answers_every_record_id_in_order() -> None:
    event = load_event("firehose_event.json")
    warehouse = FakeWarehouse()

    result = handle_firehose_event(event, warehouse)

    assert list(result) == ["records"]
    assert [a["recordId"] for a in result["records"]] == [r["recordId"] for r in event["records"]]
    assert [a["result"] for a in result["records"]] == ["Ok", "Ok", "ProcessingFailed", "Ok"]


def test_firehose_ok_records_carry_the_post_json() -> None:
    event = load_event("firehose_event.json")

    result = handle_firehose_event(event, FakeWarehouse())

    ok = [a for a in result["records"] if a["result"] == "Ok"]
    decoded = [base64.b64decode(a["data"], validate=True) for a in ok]
    # one JSON object per record, newline-terminated, as Firehose's Parquet conversion reads them
    assert all(d.endswith(b"\n") and d.count(b"\n") == 1 for d in decoded)
    assert [json.loads(d) for d in decoded] == [json_record(p) for p in POSTS]


def test_firehose_failed_record_keeps_its_original_data() -> None:
    event = load_event("firehose_event.json")

    result = handle_firehose_event(event, FakeWarehouse())

    failed = result["records"][2]
    assert failed == {
        "recordId": event["records"][2]["recordId"],
        "result": "ProcessingFailed",
        "data": event["records"][2]["data"],
    }


@pytest.mark.parametrize("data", list(POISON_DATA.values()), ids=list(POISON_DATA))
def test_firehose_poison_record_is_processing_failed_with_original_data(data: str) -> None:
    event = load_event("firehose_event.json")
    event["records"][1]["data"] = data
    warehouse = FakeWarehouse()

    result = handle_firehose_event(event, warehouse)

    assert [a["result"] for a in result["records"]] == [
        "Ok",
        "ProcessingFailed",
        "ProcessingFailed",
        "Ok",
    ]
    assert result["records"][1]["data"] == data
    assert [r["post_id"] for r in warehouse.rows] == [POST_IDS[0], POST_IDS[2]]


def test_firehose_also_writes_good_posts_to_posts_hot() -> None:
    warehouse = FakeWarehouse()

    handle_firehose_event(load_event("firehose_event.json"), warehouse)

    assert len(warehouse.calls) == 1
    table, rows, row_ids = warehouse.calls[0]
    assert table == "posts_hot"
    assert row_ids == POST_IDS
    assert rows == [with_entities(conform(enrich(p), HOT_FIELDS)) for p in POSTS]


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"records": "x"}, None], ids=repr)
def test_firehose_event_without_records_raises_value_error(event: Any) -> None:
    with pytest.raises(ValueError):
        handle_firehose_event(event, FakeWarehouse())


# ---- pure functions with the real embedded warehouse --------------------------------------------


def test_kinesis_into_embedded_warehouse_stores_enriched_posts(tmp_path: Path) -> None:
    warehouse = EmbeddedWarehouse(tmp_path)

    result = handle_kinesis_event(load_event("kinesis_event.json"), warehouse)

    assert result == {"batchItemFailures": []}
    assert hot_rows(warehouse) == expected_rows(POSTS)


def test_kinesis_redelivery_adds_no_duplicates(tmp_path: Path) -> None:
    # GIVEN a batch already written
    warehouse = EmbeddedWarehouse(tmp_path)
    event = load_event("kinesis_event_poison.json")
    first = handle_kinesis_event(event, warehouse)

    # WHEN Lambda redelivers the same batch (it retries from the lowest failed record)
    second = handle_kinesis_event(event, warehouse)

    # THEN the answer is the same and posts_hot holds each post once
    assert second == first
    assert [r["post_id"] for r in hot_rows(warehouse)] == sorted(POST_IDS)


def test_kinesis_redelivery_to_a_fresh_container_adds_no_duplicates(tmp_path: Path) -> None:
    event = load_event("kinesis_event.json")
    handle_kinesis_event(event, EmbeddedWarehouse(tmp_path))

    # a new Lambda container has no in-memory insert ids: it must learn them from the table
    handle_kinesis_event(event, EmbeddedWarehouse(tmp_path))

    assert [r["post_id"] for r in hot_rows(EmbeddedWarehouse(tmp_path))] == sorted(POST_IDS)


def test_duplicate_post_within_one_batch_is_stored_once(tmp_path: Path) -> None:
    # GIVEN a batch where the producer's retry put the same post twice (new sequence number)
    event = load_event("kinesis_event.json")
    duplicate = copy.deepcopy(event["Records"][0])
    duplicate["kinesis"]["sequenceNumber"] = "4965" + "9" * 52
    event["Records"].append(duplicate)
    warehouse = EmbeddedWarehouse(tmp_path)

    result = handle_kinesis_event(event, warehouse)

    assert result == {"batchItemFailures": []}
    assert [r["post_id"] for r in hot_rows(warehouse)] == sorted(POST_IDS)


def test_firehose_into_embedded_warehouse_stores_enriched_posts(tmp_path: Path) -> None:
    warehouse = EmbeddedWarehouse(tmp_path)

    handle_firehose_event(load_event("firehose_event.json"), warehouse)

    assert hot_rows(warehouse) == expected_rows(POSTS)


def _surrogate_data() -> str:
    # Valid JSON (ASCII-escaped, as json.dumps writes by default) whose text is a lone surrogate.
    return b64(json.dumps({**json_record(POSTS[1]), "text": "broken \ud800 text"}).encode())


def test_kinesis_unstorable_text_is_a_reported_record_not_a_stuck_batch(tmp_path: Path) -> None:
    # GIVEN a batch whose middle record's text cannot be encoded as UTF-8 (lone surrogate)
    event, poison_seq = with_poison_in_the_middle(_surrogate_data())
    warehouse = EmbeddedWarehouse(tmp_path)

    # WHEN it is handled, THEN that record alone is reported and the others are written;
    # raising instead would make Lambda retry the same batch until the record expires
    result = handle_kinesis_event(event, warehouse)

    assert result == {"batchItemFailures": [{"itemIdentifier": poison_seq}]}
    assert [r["post_id"] for r in hot_rows(warehouse)] == sorted([POST_IDS[0], POST_IDS[2]])


def test_firehose_unstorable_text_is_processing_failed(tmp_path: Path) -> None:
    event = load_event("firehose_event.json")
    event["records"][1]["data"] = _surrogate_data()

    result = handle_firehose_event(event, EmbeddedWarehouse(tmp_path))

    assert [a["result"] for a in result["records"]] == [
        "Ok",
        "ProcessingFailed",
        "ProcessingFailed",
        "Ok",
    ]


# ---- the Lambda entry points, loaded by path ----------------------------------------------------


@pytest.fixture
def lambda_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MUSICNFT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MUSICNFT_PROFILE", raising=False)
    return tmp_path


@pytest.fixture
def handler(lambda_dir: Path) -> Iterator[ModuleType]:
    module = load_handler_module()
    module._warehouse.cache_clear()
    yield module
    module._warehouse.cache_clear()


def lambda_warehouse(lambda_dir: Path) -> EmbeddedWarehouse:
    """A separate reader over the same folder the handler writes to."""
    return EmbeddedWarehouse(lambda_dir / "warehouse")


def test_handler_module_exposes_both_entry_points_and_does_no_work_at_import(
    lambda_dir: Path,
) -> None:
    module = load_handler_module()

    assert callable(module.kinesis_handler)
    assert callable(module.firehose_handler)
    assert list(lambda_dir.iterdir()) == []


def test_kinesis_handler_all_good(handler: ModuleType, lambda_dir: Path) -> None:
    result = handler.kinesis_handler(load_event("kinesis_event.json"), None)

    assert result == {"batchItemFailures": []}
    rows = hot_rows(lambda_warehouse(lambda_dir))
    assert rows == expected_rows(POSTS)
    # the enrichment columns are exactly what enrich() computes for each post
    for row, expected in zip(rows, expected_rows(POSTS), strict=True):
        for column in ENRICHED_COLUMNS[-6:]:
            assert row[column] == expected[column], column


def test_kinesis_handler_result_is_json_serializable(handler: ModuleType) -> None:
    result = handler.kinesis_handler(load_event("kinesis_event_poison.json"), None)

    assert json.loads(json.dumps(result)) == result


def test_kinesis_handler_reports_exactly_the_poison_records(
    handler: ModuleType, lambda_dir: Path
) -> None:
    event = load_event("kinesis_event_poison.json")
    seqs = sequence_numbers(event)

    result = handler.kinesis_handler(event, None)

    assert result == {"batchItemFailures": [{"itemIdentifier": seqs[i]} for i in (1, 3, 4, 5)]}
    assert hot_rows(lambda_warehouse(lambda_dir)) == expected_rows(POSTS)


def test_kinesis_handler_redelivery_adds_no_duplicates(
    handler: ModuleType, lambda_dir: Path
) -> None:
    event = load_event("kinesis_event.json")

    handler.kinesis_handler(event, None)
    handler.kinesis_handler(event, None)
    handler._warehouse.cache_clear()  # and once more in a "new container"
    handler.kinesis_handler(event, None)

    warehouse = lambda_warehouse(lambda_dir)
    assert warehouse.count("posts_hot") == len(POSTS)
    assert warehouse.count("posts_hot", distinct="post_id") == len(POSTS)


def test_kinesis_handler_builds_the_warehouse_once_per_process(handler: ModuleType) -> None:
    handler.kinesis_handler(load_event("kinesis_event.json"), None)
    first = handler._warehouse()
    handler.firehose_handler(load_event("firehose_event.json"), None)

    assert handler._warehouse() is first
    assert handler._warehouse.cache_info().misses == 1


def test_firehose_handler_answers_every_record(handler: ModuleType, lambda_dir: Path) -> None:
    event = load_event("firehose_event.json")

    result = handler.firehose_handler(event, None)

    answers = result["records"]
    assert [a["recordId"] for a in answers] == [r["recordId"] for r in event["records"]]
    assert [a["result"] for a in answers] == ["Ok", "Ok", "ProcessingFailed", "Ok"]
    assert answers[2]["data"] == event["records"][2]["data"]
    ok = [json.loads(base64.b64decode(a["data"])) for a in answers if a["result"] == "Ok"]
    assert ok == [json_record(p) for p in POSTS]
    assert hot_rows(lambda_warehouse(lambda_dir)) == expected_rows(POSTS)


def test_kinesis_handler_raises_when_the_warehouse_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a data directory that is a regular file, so no warehouse file can be written
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    monkeypatch.setenv("MUSICNFT_DATA_DIR", str(blocker))
    module = load_handler_module()
    module._warehouse.cache_clear()
    try:
        # WHEN a good batch arrives, THEN the function errors (Lambda retries the whole batch)
        with pytest.raises(OSError):
            module.kinesis_handler(load_event("kinesis_event.json"), None)
    finally:
        module._warehouse.cache_clear()


def test_kinesis_handler_without_records_raises_value_error(handler: ModuleType) -> None:
    with pytest.raises(ValueError):
        handler.kinesis_handler({"records": []}, None)


def test_rows_keep_utc_timestamps(handler: ModuleType, lambda_dir: Path) -> None:
    handler.kinesis_handler(load_event("kinesis_event.json"), None)

    rows = hot_rows(lambda_warehouse(lambda_dir))

    created = {r["post_id"]: r["created_at"] for r in rows}
    assert created == {p["post_id"]: p["created_at"] for p in POSTS}
    assert all(
        isinstance(v, datetime) and v.utcoffset().total_seconds() == 0 for v in created.values()
    )
