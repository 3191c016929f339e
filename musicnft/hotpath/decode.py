"""Bytes → a JSON object, the three outcomes a source record can have besides a post, and the
hashtags, cashtags and mentions of a text for records that arrive without their entities.

Shared by every normalizer (X, Bluesky) and by the stages that re-read stream records.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

try:  # a fast parser where installed (not needed in the Lambda bundle: the result is the same)
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by the Lambda bundle test
    _orjson = None  # type: ignore[assignment]

Post = dict[str, Any]

# orjson reads an integer outside its range (below -2**63, above 2**64 - 1) as a float; the
# standard library keeps it exact. Such a float is at least 2**63 in size, so a parsed value
# holding a float that large takes the standard path (a float literal that large reads the same
# either way). Looking for one in the parsed value costs a fifth of scanning the line's bytes
# for long digit runs, which cost more than parsing the line.
_FLOAT_OF_A_HUGE_INTEGER = 2.0**63


def _may_hold_a_huge_integer(value: Any) -> bool:
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is dict:
            extend(item.values())
        elif kind is list:
            extend(item)
        elif kind is float and not -_FLOAT_OF_A_HUGE_INTEGER < item < _FLOAT_OF_A_HUGE_INTEGER:
            return True
    return False


class RejectedRecord(ValueError):
    """A record that cannot become a post; `reason` is short and names what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SkipRecord(Exception):
    """A well-formed record that is deliberately not a post for us (not tracked, a delete, ...).

    Counted, not dead-lettered: nothing is wrong with it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ControlMessage(Exception):
    """A well-formed stream message that carries no post (e.g. X's in-stream `errors`)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode_line(raw: bytes | str) -> dict[str, Any]:
    """One stream line → a JSON object. Raises RejectedRecord naming the fault.

    orjson parses first when installed (about 3× the standard library); whatever it refuses (bad
    UTF-8 or JSON, a lone surrogate, an integer past 64 bits, 1e400, deep nesting) goes to the
    standard library, which accepts exactly what it always accepted and names the fault as it
    always did. The two agree on everything both accept (a test holds them to it)."""
    if _orjson is not None:
        try:
            value = _orjson.loads(raw)
        except _orjson.JSONDecodeError:
            return _decode_line_stdlib(raw)
        if _may_hold_a_huge_integer(value):
            return _decode_line_stdlib(raw)
        if not isinstance(value, dict):
            raise RejectedRecord(f"not a JSON object (got {type(value).__name__})")
        return value
    return _decode_line_stdlib(raw)


def _decode_line_stdlib(raw: bytes | str) -> dict[str, Any]:
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RejectedRecord(f"invalid UTF-8 at byte {exc.start}") from None
    else:
        text = raw
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise RejectedRecord(f"invalid JSON: {exc.msg} at char {exc.pos}") from None
    except RecursionError:
        raise RejectedRecord("invalid JSON: nested too deeply") from None
    except ValueError as exc:
        # Python refuses integers of more than 4,300 digits (int_max_str_digits), and NaN /
        # Infinity are not JSON: either way a reason, never a crash of the stage reading it.
        raise RejectedRecord(f"invalid JSON: {str(exc)[:120]}") from None
    if not isinstance(value, dict):
        raise RejectedRecord(f"not a JSON object (got {type(value).__name__})")
    return value


# ---- entities from the text ---------------------------------------------------------------------
# X's extraction rules (twitter-text), for payloads that come without `entities` (archives, other
# clients) and Bluesky records without facets. They only run when the structured entities are
# absent: when present, the source's own entities are authoritative.

_HASH_SIGNS = "#\uff03"  # '#' and the full-width '＃'
_AT_SIGNS = "@\uff20"  # '@' and the full-width '＠'
_URL = re.compile(r"(?i)\b(?:https?://|www\.)\S+")
_ASCII_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_CASHTAG = re.compile(r"([A-Za-z]{1,6}(?:[._][A-Za-z]{1,2})?)(?![A-Za-z0-9_])")


def _is_word_char(c: str) -> bool:
    """A letter (any script), a combining mark, a decimal digit or '_': what a hashtag is made of."""
    if c == "_":
        return True
    category = unicodedata.category(c)
    return category[0] in "LM" or category == "Nd"


def _url_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _URL.finditer(text)]


def _in_spans(i: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= i < end for start, end in spans)


def text_hashtags(text: str) -> list[str]:
    """Hashtags in `text` by X's rule, as written (without '#'), in order, duplicates kept.

    '#' then letters, marks, digits or '_' (any script), not all digits; not inside a word (no
    letter, digit, '_' or '&' right before the '#', so `a#b` and `&#39;` are not tags), not followed
    by another '#' or '://', and not inside a URL (`example.com/#anchor`)."""
    out: list[str] = []
    if "#" not in text and "\uff03" not in text:  # the common case, without a loop per character
        return out
    urls = _url_spans(text)
    n = len(text)
    for i, c in enumerate(text):
        if c not in _HASH_SIGNS:
            continue
        if i > 0 and (_is_word_char(text[i - 1]) or text[i - 1] == "&"):
            continue
        j = i + 1
        while j < n and _is_word_char(text[j]):
            j += 1
        tag = text[i + 1 : j]
        if not tag or tag.isdigit() or all(ch.isdigit() or ch == "_" for ch in tag):
            continue
        if j < n and (text[j] in _HASH_SIGNS or text.startswith("://", j)):
            continue
        if _in_spans(i, urls):
            continue
        out.append(tag)
    return out


def text_cashtags(text: str) -> list[str]:
    """Cashtags in `text` by X's rule, without '$': 1-6 letters (optionally `.xx` / `_xx`), with
    a space, the start of the text or punctuation other than '$' before the '$'."""
    out: list[str] = []
    if "$" not in text:
        return out
    urls = _url_spans(text)
    for i, c in enumerate(text):
        if c != "$":
            continue
        if i > 0 and (_is_word_char(text[i - 1]) or text[i - 1] == "$"):
            continue
        m = _CASHTAG.match(text, i + 1)
        if m is None or _in_spans(i, urls):
            continue
        out.append(m.group(1))
    return out


def text_mentions(text: str) -> list[str]:
    """Mentions in `text` by X's rule, as written (without '@'): 1-15 ASCII letters, digits or
    '_', not inside a word or an e-mail address (nothing of `[A-Za-z0-9_!#$%&*@]` right before
    the '@'), and not running on into more name characters, another '@' or '://'."""
    out: list[str] = []
    if "@" not in text and "\uff20" not in text:
        return out
    n = len(text)
    for i, c in enumerate(text):
        if c not in _AT_SIGNS:
            continue
        if i > 0 and (text[i - 1] in _ASCII_WORD or text[i - 1] in "!#$%&*" + _AT_SIGNS):
            continue
        j = i + 1
        while j < n and text[j] in _ASCII_WORD:
            j += 1
        name = text[i + 1 : j]
        if not 1 <= len(name) <= 15:
            continue
        if j < n and (text[j] in _AT_SIGNS or _is_word_char(text[j]) or text.startswith("://", j)):
            continue
        out.append(name)
    return out
