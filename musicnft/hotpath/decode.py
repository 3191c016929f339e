"""Bytes → a JSON object, and the three outcomes a source record can have besides a post.

Shared by every normalizer (X, Bluesky) and by the stages that re-read stream records.
"""

from __future__ import annotations

import json
from typing import Any

Post = dict[str, Any]


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
    """One stream line → a JSON object. Raises RejectedRecord naming the fault."""
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
