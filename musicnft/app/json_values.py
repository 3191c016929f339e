"""Query results as JSON: every type DuckDB or BigQuery can return, without losing a digit.

Used by `musicnft sql --json` (and its table output). The rules, by Arrow type of the column:

| type | JSON |
|---|---|
| integers of any width (TINYINT … HUGEINT, UBIGINT; DECIMAL with scale 0, e.g. `sum()` of integers) | number, every digit |
| DECIMAL / NUMERIC / BIGNUMERIC with a scale | string with its exact digits (`"12.50"`): a JSON number would go through a double in most readers |
| FLOAT / DOUBLE | number; NaN, Infinity and -Infinity → `null` (JSON has none) |
| BOOLEAN, VARCHAR, ENUM, UUID | as is (UUID as its canonical string) |
| DATE | `"2021-12-01"` |
| TIME (also TIME WITH TIME ZONE) | `"12:34:56.789000"` |
| TIMESTAMP (no zone) | `"2021-12-01T01:02:03"`; nanosecond precision kept |
| TIMESTAMP WITH TIME ZONE | UTC, `"2021-12-01T00:00:00Z"` |
| INTERVAL | ISO-8601 duration, `"P1Y2M3DT4H5M6.5S"` (each part keeps its own sign: `"P-1D"`) |
| BLOB / BYTES / BIT and other binary | base64 string |
| LIST / ARRAY | array |
| STRUCT | object |
| MAP | object; keys as strings (`{"1": "x"}`) |
| UNION | the value of its member |
| anything else | its string form |
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import uuid
from decimal import Decimal
from typing import Any

import pyarrow as pa


def iso_duration(months: int, days: int, nanoseconds: int) -> str:
    """ISO-8601 duration of an INTERVAL's parts (months, days, nanoseconds), each signed."""
    out = "P"
    years, rest = int(months / 12), months - int(months / 12) * 12
    if years:
        out += f"{years}Y"
    if rest:
        out += f"{rest}M"
    if days:
        out += f"{days}D"
    sign = "-" if nanoseconds < 0 else ""
    ns = abs(nanoseconds)
    hours, ns = divmod(ns, 3_600 * 10**9)
    minutes, ns = divmod(ns, 60 * 10**9)
    seconds, frac = divmod(ns, 10**9)
    clock = ""
    if hours:
        clock += f"{sign}{hours}H"
    if minutes:
        clock += f"{sign}{minutes}M"
    if seconds or frac:
        text = f"{seconds}.{frac:09d}".rstrip("0").rstrip(".") if frac else str(seconds)
        clock += f"{sign}{text}S"
    if clock:
        out += "T" + clock
    return out if out != "P" else "PT0S"


def _timedelta(value: dt.timedelta) -> str:
    ns = (value.days * 86_400 + value.seconds) * 10**9 + value.microseconds * 1000
    days, ns = (int(ns / (86_400 * 10**9)), ns - int(ns / (86_400 * 10**9)) * 86_400 * 10**9)
    return iso_duration(0, days, ns)


def _decimal(value: Decimal, scale: int | None) -> Any:
    if not value.is_finite():
        return None
    if scale == 0 or (scale is None and value == value.to_integral_value()):
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent >= 0:
            return int(value)
    return str(value)


def _datetime(value: Any) -> str:
    if getattr(value, "tzinfo", None) is not None and value.utcoffset() is not None:
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None).isoformat() + "Z"
    return str(value.isoformat())


def json_value(value: Any, type_: pa.DataType | None = None) -> Any:
    """One value as JSON-ready Python (see the module docstring); `type_` is its Arrow type when
    known (it tells a MAP from a list of pairs, and a DECIMAL's scale)."""
    if value is None:
        return None
    if type_ is not None:
        if pa.types.is_map(type_):
            key_type, item_type = type_.key_type, type_.item_type
            return {_key(json_value(k, key_type)): json_value(v, item_type) for k, v in list(value)}
        if pa.types.is_struct(type_) and isinstance(value, dict):
            return {f.name: json_value(value.get(f.name), f.type) for f in type_ if f.name in value}
        if (
            pa.types.is_list(type_)
            or pa.types.is_large_list(type_)
            or pa.types.is_fixed_size_list(type_)
        ) and isinstance(value, list | tuple):
            return [json_value(v, type_.value_type) for v in value]
        if pa.types.is_decimal(type_) and isinstance(value, Decimal):
            return _decimal(value, type_.scale)
        if pa.types.is_dictionary(type_):
            return json_value(value, type_.value_type)
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return _decimal(value, None)
    if isinstance(value, dt.datetime):
        return _datetime(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _timedelta(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, tuple) and all(
        hasattr(value, part) for part in ("months", "days", "nanoseconds")
    ):  # pyarrow's MonthDayNano (an INTERVAL)
        parts: Any = value
        return iso_duration(int(parts.months), int(parts.days), int(parts.nanoseconds))
    if isinstance(value, dict):
        return {_key(json_value(k)): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if hasattr(value, "isoformat"):  # pandas.Timestamp (nanoseconds) and the like
        return _datetime(value)
    return str(value)


def _key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def json_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Every row of an Arrow table as a JSON-ready dict (column order kept)."""
    types = {f.name: f.type for f in table.schema}
    return [{k: json_value(v, types.get(k)) for k, v in row.items()} for row in table.to_pylist()]
