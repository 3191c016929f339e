"""The post contract (schema v1): Arrow schemas, Glue columns, `conform`, Parquet round trip.

Contract: DESIGN.md "Post", "Enrichment", "Lake key layout" (Glue table must match the post).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicnft.contract.schema import (
    ENRICHED_COLUMNS,
    ENRICHED_FIELDS,
    ENRICHED_SCHEMA,
    POST_COLUMNS,
    POST_FIELDS,
    POST_SCHEMA,
    SchemaError,
    conform,
    format_timestamp,
    glue_columns,
    to_json_record,
    to_table,
)

# The post columns exactly as DESIGN.md lists them, in order.
DESIGN_POST_COLUMNS = [
    "post_id",
    "platform",
    "created_at",
    "ingested_at",
    "text",
    "lang",
    "author_id",
    "author_handle",
    "author_followers",
    "author_verified",
    "author_location",
    "is_repost",
    "reply_count",
    "repost_count",
    "like_count",
    "quote_count",
    "hashtags",
    "mentions",
    "urls",
    "matched_keywords",
    "matching_rules",
    "schema_version",
]
DESIGN_ENRICHMENT_COLUMNS = [
    "sentiment_compound",
    "sentiment_pos",
    "sentiment_neu",
    "sentiment_neg",
    "sentiment_label",
    "engagement_rate",
]

UTC_TS = pa.timestamp("us", tz="UTC")
STRINGS = pa.list_(pa.string())
EXPECTED_ARROW: dict[str, pa.DataType] = {
    "post_id": pa.string(),
    "platform": pa.string(),
    "created_at": UTC_TS,
    "ingested_at": UTC_TS,
    "text": pa.string(),
    "lang": pa.string(),
    "author_id": pa.string(),
    "author_handle": pa.string(),
    "author_followers": pa.int64(),
    "author_verified": pa.bool_(),
    "author_location": pa.string(),
    "is_repost": pa.bool_(),
    "reply_count": pa.int64(),
    "repost_count": pa.int64(),
    "like_count": pa.int64(),
    "quote_count": pa.int64(),
    "hashtags": STRINGS,
    "mentions": STRINGS,
    "urls": STRINGS,
    "matched_keywords": STRINGS,
    "matching_rules": STRINGS,
    "schema_version": pa.int32(),
}
EXPECTED_GLUE: dict[str, str] = {
    "post_id": "string",
    "platform": "string",
    "created_at": "timestamp",
    "ingested_at": "timestamp",
    "text": "string",
    "lang": "string",
    "author_id": "string",
    "author_handle": "string",
    "author_followers": "bigint",
    "author_verified": "boolean",
    "author_location": "string",
    "is_repost": "boolean",
    "reply_count": "bigint",
    "repost_count": "bigint",
    "like_count": "bigint",
    "quote_count": "bigint",
    "hashtags": "array<string>",
    "mentions": "array<string>",
    "urls": "array<string>",
    "matched_keywords": "array<string>",
    "matching_rules": "array<string>",
    "schema_version": "int",
}
OPTIONAL_COLUMNS = DESIGN_POST_COLUMNS[5:21]  # lang .. matching_rules
REQUIRED_COLUMNS = ["post_id", "platform", "created_at", "ingested_at", "text", "schema_version"]


def a_row(**overrides: Any) -> dict[str, Any]:
    """A complete, loosely typed post as it arrives on the stream (timestamps as strings)."""
    row: dict[str, Any] = {
        "post_id": "x:1785612345678901234",
        "platform": "x",
        "created_at": "2024-05-01T11:59:58.123456Z",
        "ingested_at": "2024-05-01T12:00:05Z",
        "text": "Minting my new music NFT 🎵",
        "lang": "en",
        "author_id": "1500000000000000001",
        "author_handle": "ana_beats",
        "author_followers": 200,
        "author_verified": False,
        "author_location": "Berlin",
        "is_repost": False,
        "reply_count": 2,
        "repost_count": 3,
        "like_count": 4,
        "quote_count": 1,
        "hashtags": ["web3", "musicnft"],
        "mentions": [],
        "urls": ["https://opensea.io/collection/first-song"],
        "matched_keywords": ["music", "nft"],
        "matching_rules": ["music-nft"],
        "schema_version": 1,
    }
    row.update(overrides)
    return row


# ---- Arrow schemas ----------------------------------------------------------------------------


def test_post_schema_has_exactly_the_design_columns_in_order() -> None:
    assert POST_SCHEMA.names == DESIGN_POST_COLUMNS
    assert list(POST_COLUMNS) == DESIGN_POST_COLUMNS
    assert [f.name for f in POST_FIELDS] == DESIGN_POST_COLUMNS


@pytest.mark.parametrize("column", DESIGN_POST_COLUMNS)
def test_post_schema_column_types(column: str) -> None:
    assert POST_SCHEMA.field(column).type == EXPECTED_ARROW[column]


def test_timestamps_are_utc_microseconds() -> None:
    for column in ("created_at", "ingested_at"):
        dtype = POST_SCHEMA.field(column).type
        assert pa.types.is_timestamp(dtype)
        assert dtype.tz == "UTC"
        assert dtype.unit == "us"


def test_post_id_and_text_are_not_nullable() -> None:
    assert POST_SCHEMA.field("post_id").nullable is False
    assert POST_SCHEMA.field("text").nullable is False


@pytest.mark.parametrize("column", OPTIONAL_COLUMNS)
def test_optional_columns_are_nullable(column: str) -> None:
    assert POST_SCHEMA.field(column).nullable is True


def test_enriched_schema_adds_the_six_enrichment_columns() -> None:
    assert ENRICHED_SCHEMA.names == DESIGN_POST_COLUMNS + DESIGN_ENRICHMENT_COLUMNS
    assert list(ENRICHED_COLUMNS) == ENRICHED_SCHEMA.names
    # the post part is unchanged
    for column in DESIGN_POST_COLUMNS:
        assert ENRICHED_SCHEMA.field(column) == POST_SCHEMA.field(column)
    for column in DESIGN_ENRICHMENT_COLUMNS:
        expected = pa.string() if column == "sentiment_label" else pa.float64()
        assert ENRICHED_SCHEMA.field(column).type == expected
        assert ENRICHED_SCHEMA.field(column).nullable is True


# ---- Glue -------------------------------------------------------------------------------------


def test_glue_columns_one_per_post_column_with_glue_types() -> None:
    columns = glue_columns()

    assert [c["Name"] for c in columns] == DESIGN_POST_COLUMNS
    assert {c["Name"]: c["Type"] for c in columns} == EXPECTED_GLUE
    assert all(isinstance(c["Comment"], str) and c["Comment"] for c in columns)
    # Glue rejects comments over 255 characters
    assert all(len(c["Comment"]) <= 255 for c in columns)


def test_glue_columns_for_the_enriched_fields_use_double_and_string() -> None:
    columns = {c["Name"]: c["Type"] for c in glue_columns(ENRICHED_FIELDS)}

    assert list(columns) == DESIGN_POST_COLUMNS + DESIGN_ENRICHMENT_COLUMNS
    assert columns["sentiment_compound"] == "double"
    assert columns["engagement_rate"] == "double"
    assert columns["sentiment_label"] == "string"


# ---- conform ----------------------------------------------------------------------------------


def test_conform_gives_typed_row_with_exactly_the_post_columns() -> None:
    row = conform(a_row())

    assert list(row) == DESIGN_POST_COLUMNS
    assert row["created_at"] == datetime(2024, 5, 1, 11, 59, 58, 123456, tzinfo=UTC)
    assert row["ingested_at"] == datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
    assert row["hashtags"] == ["web3", "musicnft"]
    assert row["author_followers"] == 200


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00.000Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        (" 2024-05-01T12:00:00Z ", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        (
            datetime(2024, 5, 1, 7, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2024, 5, 1, 12, tzinfo=UTC),
        ),
    ],
)
def test_conform_accepts_iso_strings_and_aware_datetimes_for_timestamps(
    raw: Any, expected: datetime
) -> None:
    row = conform(a_row(created_at=raw))

    assert row["created_at"] == expected
    assert row["created_at"].utcoffset() == timedelta(0)


def test_conform_ignores_unknown_keys() -> None:
    row = conform(a_row(impression_count=57, sentiment_compound=0.5, extra={"a": 1}))

    assert list(row) == DESIGN_POST_COLUMNS
    assert row == conform(a_row())


@pytest.mark.parametrize("column", OPTIONAL_COLUMNS)
def test_conform_makes_missing_optional_fields_null(column: str) -> None:
    record = a_row()
    del record[column]

    assert conform(record)[column] is None


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_conform_rejects_a_missing_required_field_naming_it(column: str) -> None:
    record = a_row()
    del record[column]

    with pytest.raises(SchemaError, match=column):
        conform(record)


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_conform_rejects_a_null_required_field_naming_it(column: str) -> None:
    with pytest.raises(SchemaError, match=column):
        conform(a_row(**{column: None}))


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("post_id", 123),
        ("text", ["music"]),
        ("platform", True),
        ("lang", 5),
        ("like_count", "7"),
        ("like_count", 1.5),
        ("like_count", True),
        ("author_followers", 2**63),
        ("author_verified", "yes"),
        ("is_repost", 1),
        ("hashtags", "nft"),
        ("hashtags", ["nft", 1]),
        ("urls", [None]),
        ("created_at", 1714564800),
        ("created_at", "yesterday"),
        ("ingested_at", "2024-13-01T00:00:00Z"),
        ("schema_version", "1"),
        ("schema_version", 2),
        ("schema_version", 2**40),
    ],
)
def test_conform_rejects_wrong_types_naming_the_field(column: str, value: Any) -> None:
    with pytest.raises(SchemaError, match=column):
        conform(a_row(**{column: value}))


@pytest.mark.parametrize("record", [[a_row()], "post", None])
def test_conform_rejects_a_record_that_is_not_an_object(record: Any) -> None:
    with pytest.raises(SchemaError):
        conform(record)


def test_conform_float_columns_take_ints_as_floats() -> None:
    enriched = {**a_row(), "sentiment_compound": 1, "engagement_rate": 5}

    row = conform(enriched, ENRICHED_FIELDS)

    assert row["sentiment_compound"] == 1.0
    assert type(row["sentiment_compound"]) is float
    assert row["sentiment_label"] is None


def test_conform_does_not_modify_its_input() -> None:
    record = a_row()
    before = json.dumps(record)

    conform(record)

    assert json.dumps(record) == before


def test_conformed_strings_are_storable_as_utf8() -> None:
    # GIVEN a stream record (valid JSON) whose text holds an escaped lone UTF-16 surrogate
    record = json.loads(json.dumps(a_row(text="broken \ud800 text")))

    # WHEN it passes the gate that promises "a record that would break a Parquet file is caught"
    try:
        row = conform(record)
    except SchemaError as exc:
        assert "text" in str(exc)
        return

    # THEN what comes out can be written to Parquet
    to_table([row])


# ---- Arrow tables, Parquet, JSON --------------------------------------------------------------


def test_to_table_round_trips_through_parquet(tmp_path: Path) -> None:
    # GIVEN conformed rows, one full and one with every optional field missing
    full = conform(a_row())
    sparse = conform(
        {
            "post_id": "x:2",
            "platform": "x",
            "created_at": "2024-05-01T12:00:00Z",
            "ingested_at": "2024-05-01T12:00:01Z",
            "text": "",
            "schema_version": 1,
        }
    )
    table = to_table([full, sparse])

    # WHEN written to Parquet and read back
    path = tmp_path / "posts.parquet"
    pq.write_table(table, path)
    back = pq.read_table(path)

    # THEN the schema (types, nullability, metadata) and the rows survive unchanged
    assert table.schema.equals(POST_SCHEMA, check_metadata=True)
    assert back.schema.equals(POST_SCHEMA)
    assert back.schema.metadata == POST_SCHEMA.metadata
    assert [f.nullable for f in back.schema] == [f.nullable for f in POST_SCHEMA]
    assert back.to_pylist() == [full, sparse]


def test_enriched_rows_round_trip_through_parquet(tmp_path: Path) -> None:
    row = conform(
        {**a_row(), "sentiment_compound": 0.6369, "sentiment_label": "positive"}, ENRICHED_FIELDS
    )
    table = to_table([row], ENRICHED_SCHEMA)

    pq.write_table(table, tmp_path / "enriched.parquet")
    back = pq.read_table(tmp_path / "enriched.parquet")

    assert back.schema.equals(ENRICHED_SCHEMA)
    assert back.schema.metadata == ENRICHED_SCHEMA.metadata
    assert back.to_pylist() == [row]


def test_json_record_round_trips_through_conform() -> None:
    row = conform(a_row())

    record = to_json_record(row)
    again = conform(json.loads(json.dumps(record)))

    assert record["created_at"] == "2024-05-01T11:59:58.123456Z"
    assert record["ingested_at"] == "2024-05-01T12:00:05Z"
    assert again == row


def test_format_timestamp_is_utc_with_z() -> None:
    local = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))

    assert format_timestamp(local) == "2024-05-01T12:00:00Z"
