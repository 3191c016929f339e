"""decode_line parses with orjson first and falls back to the standard library: the result (a dict,
or the rejection's reason) must be exactly what the standard library alone gives, for the sample,
the whole hostile corpus and the JSON corner cases where the two parsers differ."""

from __future__ import annotations

import pytest

from musicnft.devtools.sample import generate_lines
from musicnft.hotpath import decode
from musicnft.hotpath.decode import RejectedRecord, decode_line
from tests.support import hostile

CORNERS = [
    b'{"a": 1, "a": 2}',  # duplicate keys: the last wins in both
    b'{"n": 1e400}',  # overflows a double: the standard library gives inf
    b'{"n": 123456789012345678901234567890}',  # past 64 bits
    b'{"n": 18446744073709551615, "m": 9223372036854775808}',  # orjson keeps these exact
    b'{"n": 18446744073709551616}',  # one past: orjson gives a float
    b'{"n": -9223372036854775808, "m": -9223372036854775809}',  # the last one past int64
    b'{"a": {"b": [1, {"c": [99999999999999999999999]}]}}',  # deep in the value
    b'{"f": 1e19, "g": -9.3e18, "h": 9.2e18}',  # float literals that large read the same
    b'{"n": -0, "f": -0.0, "e": 1E+2}',
    b'{"s": "\\ud83c\\udfb5 pair", "t": "\\u00e9"}',
    b'{"s": "\\ud800 lone"}',
    b"\xef\xbb\xbf{}",  # a UTF-8 byte-order mark
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b"[1, 2]",
    b'"just a string"',
    b"{}",
    b'{"x": [' * 2000 + b"]}" * 2000,
    b"\xff\xfe",
    b'{"a": "\x00"}',
    b' \t\n{"a": 1}\n ',
    b'{"a": 1} trailing',
    b"",
]


def _outcome(raw: bytes | str) -> tuple[str, object]:
    try:
        return "ok", decode_line(raw)
    except RejectedRecord as exc:
        return "rejected", exc.reason


def _stdlib_outcome(raw: bytes | str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, object]:
    with monkeypatch.context() as m:
        m.setattr(decode, "_orjson", None)
        return _outcome(raw)


def _same(a: object, b: object) -> bool:
    """Equal, with NaN equal to itself (inf and NaN floats round-trip as themselves)."""
    return repr(a) == repr(b)


def test_orjson_is_the_fast_path_here() -> None:
    assert decode._orjson is not None


def test_every_line_decodes_as_the_standard_library_decodes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines: list[bytes | str] = [*generate_lines(3000, seed=3), *CORNERS]
    lines += [raw for cases in hostile.build().values() for raw, _ in cases]
    lines += [c.decode("utf-8", "surrogatepass") for c in CORNERS if b"\xff" not in c]
    differ = [
        raw[:80] for raw in lines if not _same(_outcome(raw), _stdlib_outcome(raw, monkeypatch))
    ]
    assert differ == []
