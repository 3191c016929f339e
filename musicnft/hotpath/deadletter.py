"""Dead-letter files: where a record that cannot be processed goes, with the reason, never lost.

One JSON object per line in `$MUSICNFT_DATA_DIR/dead_letter/<stage>.jsonl`. The raw record is
kept whole (as text when it is valid UTF-8, base64 otherwise) so it can be inspected and replayed.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class DeadLetter:
    """Appends rejected records for one stage; safe for threads; each entry durable when written."""

    def __init__(self, directory: Path, stage: str) -> None:
        self.path = Path(directory) / f"{stage}.jsonl"
        self.stage = stage
        self.count = 0
        self._lock = threading.Lock()
        self._fh: Any = None

    def _open(self) -> Any:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab")  # noqa: SIM115 (kept open across writes; closed in close())
        return self._fh

    def write(self, raw: bytes | str, reason: str, ref: str, **extra: Any) -> None:
        entry: dict[str, Any] = {
            "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "stage": self.stage,
            "ref": ref,
            "reason": reason,
        }
        entry.update(extra)
        if isinstance(raw, str):
            entry["raw"] = raw
        else:
            try:
                entry["raw"] = raw.decode("utf-8")
            except UnicodeDecodeError:
                entry["raw_b64"] = base64.b64encode(raw).decode("ascii")
        line = json.dumps(entry, ensure_ascii=False).encode("utf-8") + b"\n"
        with self._lock:
            fh = self._open()
            fh.write(line)
            # Rare by nature, so each entry is made durable at once: a crash loses none.
            fh.flush()
            os.fsync(fh.fileno())
            self.count += 1

    def flush(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.flush()
                os.fsync(self._fh.fileno())

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)


def read_entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, "rb") as fh:
        return [json.loads(line) for line in fh if line.strip()]
