"""`conform` answers the common case (plain types within bounds) without `_conform_value`'s generic
dispatch. Its outcome (the row, or the SchemaError's message) must be exactly the one the plain
field-by-field `_conform_value` loop gives, for every field kind and every awkward value."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from musicnft.contract import schema
from musicnft.contract.schema import HOT_FIELDS, POST_FIELDS, Field, SchemaError, conform


def reference(record: Mapping[str, Any], fields: tuple[Field, ...]) -> dict[str, Any]:
    """The definition: every field through `_conform_value`, then the required check."""
    if not isinstance(record, Mapping):
        raise SchemaError(f"expected a JSON object, got {type(record).__name__}")
    row: dict[str, Any] = {}
    for f in fields:
        value = schema._conform_value(f, record.get(f.name))
        if value is None and f.required:
            raise SchemaError(f"missing required field {f.name!r}")
        row[f.name] = value
    if "schema_version" in row and row["schema_version"] != schema.SCHEMA_VERSION:
        raise SchemaError(f"unsupported schema_version {row['schema_version']!r}")
    return row


def outcome(fn: Any, record: Any, fields: tuple[Field, ...]) -> tuple[str, Any]:
    try:
        row = fn(record, fields)
    except SchemaError as exc:
        return "error", str(exc)
    # the same values, of the same types (a str subclass must come back as it went in)
    return "ok", [(k, type(v), v) for k, v in row.items()]


class Str(str):
    """A str subclass: the fast path must leave it to the definition."""


class Int(int):
    """An int subclass."""


class Flt(float):
    """A float subclass."""


BASE = {
    "post_id": "x:1",
    "platform": "x",
    "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    "ingested_at": "2026-01-01T00:00:01Z",
    "text": "hello music nft",
    "schema_version": 1,
}

VALUES: list[Any] = [
    None, "", "a", "é", "🎵", "\ud800", "x" * 8_192, "x" * 8_193, "x" * 25_000, "x" * 25_001,
    Str("sub"), 0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 2**63,
    -(2**63), -(2**63) - 1, Int(5), True, False, 0.0, -0.0, 1.5, float("nan"), float("inf"),
    Flt(2.5), 10**400,
    datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1), datetime(1999, 12, 31, tzinfo=UTC),
    datetime(2100, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2))),
    datetime(2026, 1, 1, tzinfo=timezone(timedelta(0))), "2026-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00",
    "not a time", [], ["a", "b"], ["é"], ["\ud800"], [1], ["x" * 8_193], ["a"] * 1_000,
    ["a"] * 1_001, [Str("s")], ("a",), {"a": 1}, b"bytes",
]  # fmt: skip


@pytest.mark.parametrize("fields", [POST_FIELDS, HOT_FIELDS], ids=["post", "hot"])
def test_conform_gives_the_definitions_outcome_for_every_field_and_value(
    fields: tuple[Field, ...],
) -> None:
    checked = 0
    for f in fields:
        for value in VALUES:
            record = BASE | {f.name: value}
            assert outcome(conform, record, fields) == outcome(reference, record, fields), (
                f.name,
                repr(value)[:80],
            )
            checked += 1
    assert checked == len(fields) * len(VALUES)


def test_a_missing_required_field_and_a_non_mapping_are_named_as_before() -> None:
    for record in ({k: v for k, v in BASE.items() if k != "text"}, [1, 2], "x", None):
        assert outcome(conform, record, POST_FIELDS) == outcome(reference, record, POST_FIELDS)


def test_field_sets_built_per_call_do_not_pile_up() -> None:
    for _ in range(1_000):
        conform(BASE, tuple(POST_FIELDS))
    assert len(schema._PLANS) <= 257
