"""The post contract (schema version 1), defined once.

Every part that stores or moves a post derives its shape from `POST_FIELDS`: the producer's JSON
records, the delivery's Parquet files, the consumer's warehouse rows and the Glue table in `infra/`.
`conform` is the single gate that turns a loosely typed dict into a row that fits the schema, so a
record that would break a Parquet file is caught (and dead-lettered) one record at a time.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

try:  # a fast encoder where installed (the Lambda bundle goes without: same values)
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by the Lambda bundle test
    _orjson = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # one of: string, int, bool, timestamp, float, list
    required: bool
    doc: str


POST_FIELDS: tuple[Field, ...] = (
    Field("post_id", "string", True, "Platform-prefixed unique id, e.g. x:1234 or bsky:at://..."),
    Field("platform", "string", True, "x | bluesky | replay"),
    Field("created_at", "timestamp", True, "When the post was created (UTC)"),
    Field("ingested_at", "timestamp", True, "When the producer read the post (UTC)"),
    Field("text", "string", True, "Post text"),
    Field("lang", "string", False, "Language code as the platform reports it"),
    Field("author_id", "string", False, "Platform author id"),
    Field("author_handle", "string", False, "Author's handle/username"),
    Field("author_followers", "int", False, "Author's follower count when streamed"),
    Field("author_verified", "bool", False, "Author verified flag"),
    Field("author_location", "string", False, "Free-text location from the author's profile"),
    Field("is_repost", "bool", False, "True for reposts/retweets"),
    Field("reply_count", "int", False, "Replies when streamed"),
    Field("repost_count", "int", False, "Reposts/retweets when streamed"),
    Field("like_count", "int", False, "Likes when streamed"),
    Field("quote_count", "int", False, "Quotes when streamed"),
    Field("hashtags", "list", False, "Hashtags, lower-case, without '#'"),
    Field("mentions", "list", False, "Mentioned handles, without '@'"),
    Field("urls", "list", False, "Expanded URLs"),
    Field("matched_keywords", "list", False, "Tracked keywords the post matched (lower-case)"),
    Field("matching_rules", "list", False, "Stream rule tags that matched"),
    Field("schema_version", "int32", True, "Post schema version (1)"),
)

ENRICHMENT_FIELDS: tuple[Field, ...] = (
    Field("sentiment_compound", "float", False, "VADER 3.3.2 compound score"),
    Field("sentiment_pos", "float", False, "VADER 3.3.2 positive share"),
    Field("sentiment_neu", "float", False, "VADER 3.3.2 neutral share"),
    Field("sentiment_neg", "float", False, "VADER 3.3.2 negative share"),
    Field("sentiment_label", "string", False, "positive | neutral | negative (±0.05)"),
    Field("engagement_rate", "float", False, "(reply+repost+like+quote)/followers*100"),
)

# Added in the second round (DESIGN.md): the trained model's score beside VADER's (whose columns
# never change), the entities a post mentions, and when the warehouse accepted the row. All
# nullable: rows written before these existed, or by a path that does not compute them, stay valid.
SCORING_FIELDS: tuple[Field, ...] = (
    Field("model_score", "float", False, "Trained sentiment model's score in [-1, 1]"),
    Field("model_label", "string", False, "positive | neutral | negative (the trained model)"),
    Field("model_version", "string", False, "Version of the model that scored the post"),
    Field("entities", "list", False, "Ids of the entities the post mentions (entities file)"),
)
WAREHOUSE_FIELDS: tuple[Field, ...] = (
    Field("inserted_at", "timestamp", False, "When the warehouse accepted the row (UTC)"),
)

# Identity fields: an empty value would make every such record the same post.
_NON_EMPTY = frozenset({"post_id", "platform"})

# X's longest posts (Premium) are 25,000 characters. Longer text is not a real post, and VADER's
# cost grows quadratically with length (25k chars ≈ 1 s, 1 MB ≈ an hour), so it is rejected here,
# at the one gate every record passes, before it could stall a consumer.
MAX_TEXT_CHARS = 25_000
# Every other string (ids, handles, locations, URLs, list items) and list length: far beyond any real
# value, small enough that one record cannot balloon a batch.
MAX_STRING_CHARS = 8_192
MAX_LIST_ITEMS = 1_000
# Timestamps outside this range are not posts of this world (X started in 2006; pyarrow's and
# BigQuery's ranges end long before a year like 9999 would matter): such records are rejected with a
# reason, so a post stamped 0001 or 2999 can neither crash a stage nor fan a backfill out to millions
# of windows.
MIN_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TIMESTAMP = datetime(2100, 1, 1, tzinfo=UTC)


@cache
def _arrow_types() -> dict[str, pa.DataType]:
    # pyarrow is imported on first use only: the Lambda bundle scores posts without it.
    import pyarrow as pa

    return {
        "string": pa.string(),
        "int": pa.int64(),
        "int32": pa.int32(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "float": pa.float64(),
        "list": pa.list_(pa.string()),
    }


_GLUE_TYPES: dict[str, str] = {
    "string": "string",
    "int": "bigint",
    "int32": "int",
    "bool": "boolean",
    "timestamp": "timestamp",
    "float": "double",
    "list": "array<string>",
}


def arrow_schema(fields: tuple[Field, ...]) -> pa.Schema:
    import pyarrow as pa

    types = _arrow_types()
    return pa.schema(
        [pa.field(f.name, types[f.kind], nullable=not f.required) for f in fields],
        metadata={b"musicnft.schema_version": str(SCHEMA_VERSION).encode()},
    )


ENRICHED_FIELDS: tuple[Field, ...] = POST_FIELDS + ENRICHMENT_FIELDS
POST_COLUMNS: tuple[str, ...] = tuple(f.name for f in POST_FIELDS)
ENRICHED_COLUMNS: tuple[str, ...] = tuple(f.name for f in ENRICHED_FIELDS)
# A warehouse post row (posts_hot; posts adds window_start): enriched, scored, stamped.
HOT_FIELDS: tuple[Field, ...] = ENRICHED_FIELDS + SCORING_FIELDS + WAREHOUSE_FIELDS
HOT_COLUMNS: tuple[str, ...] = tuple(f.name for f in HOT_FIELDS)


@cache
def _lazy(name: str) -> Any:
    if name == "POST_SCHEMA":
        return arrow_schema(POST_FIELDS)
    if name == "ENRICHED_SCHEMA":
        return arrow_schema(ENRICHED_FIELDS)
    if name == "HOT_SCHEMA":
        return arrow_schema(HOT_FIELDS)
    return _arrow_types()["timestamp"]


def __getattr__(name: str) -> Any:
    """POST_SCHEMA, ENRICHED_SCHEMA, HOT_SCHEMA and TIMESTAMP are built (with pyarrow) on first
    access."""
    if name in ("POST_SCHEMA", "ENRICHED_SCHEMA", "HOT_SCHEMA", "TIMESTAMP"):
        return _lazy(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def glue_columns(fields: tuple[Field, ...] = POST_FIELDS) -> list[dict[str, str]]:
    """Columns for an AWS Glue table (`StorageDescriptor.Columns`) generated from the contract."""
    return [{"Name": f.name, "Type": _GLUE_TYPES[f.kind], "Comment": f.doc} for f in fields]


class SchemaError(ValueError):
    """A record does not fit the schema; the message names the field."""


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 string or aware datetime → aware UTC datetime (naive strings are taken as UTC)."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise SchemaError(f"not an ISO-8601 timestamp: {value[:64]!r}") from None
    else:
        raise SchemaError(f"expected a timestamp string, got {type(value).__name__}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        dt = dt.astimezone(UTC)
    except (OverflowError, ValueError):
        raise SchemaError(f"timestamp out of range: {str(value)[:64]!r}") from None
    if not MIN_TIMESTAMP <= dt < MAX_TIMESTAMP:
        raise SchemaError(
            f"timestamp {dt.isoformat()} outside {MIN_TIMESTAMP.year}..{MAX_TIMESTAMP.year}"
        )
    return dt


def format_timestamp(value: datetime) -> str:
    """UTC ISO-8601 with a trailing Z, the form records carry on the stream."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _check_utf8(f: Field, value: str) -> None:
    """Parquet and every warehouse store UTF-8: a lone surrogate (valid in JSON) cannot be stored."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SchemaError(
            f"field {f.name!r}: unpaired surrogate at char {exc.start}, not storable as UTF-8"
        ) from None


def _conform_value(f: Field, value: Any) -> Any:
    if value is None:
        return None
    kind = f.kind
    if kind == "string":
        if isinstance(value, str):
            _check_utf8(f, value)
            if not value and f.name in _NON_EMPTY:
                raise SchemaError(f"field {f.name!r}: empty")
            if f.name == "text" and len(value) > MAX_TEXT_CHARS:
                raise SchemaError(f"field 'text': too long ({len(value)} chars > {MAX_TEXT_CHARS})")
            if f.name != "text" and len(value) > MAX_STRING_CHARS:
                raise SchemaError(
                    f"field {f.name!r}: too long ({len(value)} chars > {MAX_STRING_CHARS})"
                )
            return value
    elif kind in ("int", "int32"):
        if isinstance(value, int) and not isinstance(value, bool):
            limit = 2**31 if kind == "int32" else 2**63
            if -limit <= value < limit:
                return value
            raise SchemaError(f"field {f.name!r}: {value} is out of range")
    elif kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                raise SchemaError(f"field {f.name!r}: out of range") from None
            if not math.isfinite(number):
                raise SchemaError(f"field {f.name!r}: {number} is not a finite number")
            return number
    elif kind == "timestamp":
        try:
            return parse_timestamp(value)
        except SchemaError as exc:
            raise SchemaError(f"field {f.name!r}: {exc}") from None
    elif kind == "list":
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            if len(value) > MAX_LIST_ITEMS:
                raise SchemaError(f"field {f.name!r}: {len(value)} items > {MAX_LIST_ITEMS}")
            for v in value:
                _check_utf8(f, v)
                if len(v) > MAX_STRING_CHARS:
                    raise SchemaError(
                        f"field {f.name!r}: an item of {len(v)} chars > {MAX_STRING_CHARS}"
                    )
            return value
        raise SchemaError(f"field {f.name!r}: expected a list of strings")
    raise SchemaError(f"field {f.name!r}: expected {kind}, got {type(value).__name__}")


def _fast_check(f: Field) -> Callable[[Any], Any]:
    """`_conform_value(f, value)` for a value that is not None, with the common case (a plain
    str, int, float, bool, UTC datetime or list of ASCII strings already within bounds) answered
    without the generic dispatch: the same value back, as `_conform_value` returns it. Anything
    else, and every error, goes through `_conform_value` itself, so there is one definition of
    what fits. (Every stage conforms every post; this was a third of the producer's CPU.)"""

    def slow(value: Any) -> Any:
        return _conform_value(f, value)

    kind = f.kind
    if kind == "string":
        limit = MAX_TEXT_CHARS if f.name == "text" else MAX_STRING_CHARS
        may_be_empty = f.name not in _NON_EMPTY

        def check_string(value: Any) -> Any:
            # ASCII cannot hold a lone surrogate; isascii() is O(1) on CPython's str
            if (
                type(value) is str
                and value.isascii()
                and len(value) <= limit
                and (value or may_be_empty)
            ):
                return value
            return slow(value)

        return check_string
    if kind in ("int", "int32"):
        low, high = (-(2**31), 2**31) if kind == "int32" else (-(2**63), 2**63)

        def check_int(value: Any) -> Any:
            if type(value) is int and low <= value < high:
                return value
            return slow(value)

        return check_int
    if kind == "float":

        def check_float(value: Any) -> Any:
            if type(value) is float and math.isfinite(value):
                return value
            return slow(value)

        return check_float
    if kind == "timestamp":

        def check_timestamp(value: Any) -> Any:
            # astimezone(UTC) of a datetime already in UTC is the datetime itself
            if (
                type(value) is datetime
                and value.tzinfo is UTC
                and MIN_TIMESTAMP <= value < MAX_TIMESTAMP
            ):
                return value
            return slow(value)

        return check_timestamp
    if kind == "list":

        def check_list(value: Any) -> Any:
            if type(value) is list and len(value) <= MAX_LIST_ITEMS:
                for v in value:
                    if type(v) is not str or not v.isascii() or len(v) > MAX_STRING_CHARS:
                        return slow(value)
                return value
            return slow(value)

        return check_list
    return slow


_PLANS: dict[int, tuple[tuple[Field, ...], tuple[tuple[str, bool, Callable[[Any], Any]], ...]]] = {}


def _plan(fields: tuple[Field, ...]) -> tuple[tuple[str, bool, Callable[[Any], Any]], ...]:
    """Per field set (by identity: hashing 40 Field objects per call would cost more than it
    saves): (name, required, check) of each field."""
    entry = _PLANS.get(id(fields))
    if entry is None or entry[0] is not fields:
        if len(_PLANS) > 256:  # field sets built per call: never let them pile up
            _PLANS.clear()
        entry = (fields, tuple((f.name, f.required, _fast_check(f)) for f in fields))
        _PLANS[id(fields)] = entry
    return entry[1]


def conform(record: Mapping[str, Any], fields: tuple[Field, ...] = POST_FIELDS) -> dict[str, Any]:
    """Return a row with exactly `fields`: unknown keys ignored, missing optional ones null.

    Raises SchemaError for a missing required field or a value of the wrong type, so one bad
    record can be set aside without failing the batch it came in.
    """
    if not isinstance(record, Mapping):
        raise SchemaError(f"expected a JSON object, got {type(record).__name__}")
    row: dict[str, Any] = {}
    get = record.get
    for name, required, check in _plan(fields):
        value = get(name)
        if value is not None:
            value = check(value)
        if value is None and required:
            raise SchemaError(f"missing required field {name!r}")
        row[name] = value
    if "schema_version" in row and row["schema_version"] != SCHEMA_VERSION:
        raise SchemaError(f"unsupported schema_version {row['schema_version']!r}")
    return row


def to_table(rows: list[dict[str, Any]], schema: pa.Schema | None = None) -> pa.Table:
    """Rows already passed through `conform` → an Arrow table with the exact contract schema
    (the post schema unless another is given)."""
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=schema if schema is not None else _lazy("POST_SCHEMA"))


def to_json_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A conformed row → a JSON-ready dict (timestamps as ISO strings)."""
    return {k: format_timestamp(v) if isinstance(v, datetime) else v for k, v in row.items()}


def encode_record(row: Mapping[str, Any]) -> bytes:
    """A conformed post → the bytes of its stream record: compact UTF-8 JSON of `to_json_record`.

    orjson writes it where installed (the standard library's encoder was a fifth of the
    producer's CPU); the standard library's compact form otherwise (the Lambda bundle) and for
    anything orjson refuses. Either reads back to the same values."""
    record = to_json_record(row)
    if _orjson is not None:
        # orjson.JSONEncodeError (a TypeError) for what it refuses, e.g. an int past 64 bits
        with contextlib.suppress(TypeError):
            return bytes(_orjson.dumps(record))
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
