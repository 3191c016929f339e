"""Corrupt `raw/` drops: found, recorded and set aside, while the stream goes on.

Spark's file source reads with `spark.sql.files.ignoreCorruptFiles=true`, so one bad file never
stops the stream; but that alone loses the file silently. So, on the driver, every `raw/` file the
job has not checked before gets its Parquet footer read (one ranged read, never the whole file) and
its required post columns checked, with the batch path's rule (`lake_index.unreadable_reason`:
the file's fault, not a transient error). An unreadable file is logged as the batch path logs it
and recorded in the lake's ledger under `checkpoints/spark-score-files/`: one small JSON object
per check run, `{"checked_at", "ok": [keys], "quarantined": {key: reason}}` (objects are never
appended to, so this works the same on S3), merged into one when a start finds more than
COMPACT_AFTER. `quarantined()` reads the ledger back (`ledger_quarantined()` through the `Lake` port:
`musicnft status` counts it as `spark_quarantined_files`).

The check runs before the query starts, after it stops and once per trigger while it runs; a
corrupt file Spark reaches first is skipped by Spark and recorded by the next check. A file whose
footer is sound but whose pages are corrupt is skipped by Spark's reader (logged by Spark), not
recorded here: reading every page twice would double the job's reads.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from musicnft.batch.lake_index import REQUIRED_COLUMNS, UnreadableLakeFile, unreadable_reason
from musicnft.contract.lake_layout import CHECKPOINTS_PREFIX, RAW_PREFIX
from musicnft.spark.lake_fs import LakeRoot

if TYPE_CHECKING:
    from musicnft.ports import Lake

log = logging.getLogger("musicnft.lake_index")

LEDGER_PREFIX = f"{CHECKPOINTS_PREFIX}spark-score-files/"
# Ledger objects read at a start beyond which they are merged into one (a stream writes one per
# trigger that saw new drops: ~2,900 a day at 30 s).
COMPACT_AFTER = 64


@dataclass
class FileCheck:
    """The raw files this lake's Spark job has checked (from the ledger, then this process)."""

    lake: LakeRoot
    ok: set[str] = field(default_factory=set)
    bad: dict[str, str] = field(default_factory=dict)
    loaded: bool = False

    def load(self) -> None:
        keys = [k for k, _size, _mtime in self.lake.list(LEDGER_PREFIX, ".json")]
        for key in keys:
            try:
                doc = json.loads(self.lake.get(key))
            except (FileNotFoundError, ValueError) as exc:
                log.warning(
                    "spark file ledger %s unreadable (%s); its files are checked again", key, exc
                )
                continue
            self.ok.update(doc.get("ok", []))
            self.bad.update(doc.get("quarantined", {}))
        self.loaded = True
        if len(keys) > COMPACT_AFTER:
            self.compact(keys)

    def compact(self, keys: list[str]) -> None:
        """One ledger object for all of `keys`, written before they are deleted (a crash in
        between leaves both: they hold the same keys, and loading takes their union)."""
        self._write(sorted(self.ok), dict(sorted(self.bad.items())), "compact")
        for key in keys:
            self.lake.delete(key)

    def run(self) -> dict[str, str]:
        """Check the raw files not checked yet; returns the ones quarantined by this run."""
        if not self.loaded:
            self.load()
        new_ok: list[str] = []
        new_bad: dict[str, str] = {}
        for key, _size, _mtime in self.lake.list(RAW_PREFIX, ".parquet"):
            if key in self.ok or key in self.bad:
                continue
            reason = check_file(self.lake, key)
            if reason is None:
                new_ok.append(key)
            elif reason:
                log.error("lake file %s quarantined: %s", key, reason)
                new_bad[key] = reason
        if new_ok or new_bad:
            self._write(new_ok, new_bad)
            self.ok.update(new_ok)
            self.bad.update(new_bad)
        return new_bad

    def _write(self, ok: list[str], bad: dict[str, str], kind: str = "run") -> None:
        now = datetime.now(UTC)
        doc = {"checked_at": now.isoformat(), "ok": ok, "quarantined": bad}
        name = f"checked-{now:%Y%m%dT%H%M%S%f}-{kind}-{uuid.uuid4().hex[:8]}.json"
        self.lake.put(LEDGER_PREFIX + name, json.dumps(doc).encode())


def check_file(lake: LakeRoot, key: str) -> str | None:
    """None when the footer is sound; the reason when the file is at fault; "" when the read
    failed for a transient reason (the file is checked again next time)."""
    import pyarrow.parquet as pq

    try:
        with lake.fs.open_input_file(lake.path(key)) as fh:
            names = set(pq.read_metadata(fh).schema.to_arrow_schema().names)
        missing = sorted(REQUIRED_COLUMNS - names)
        if missing:
            raise UnreadableLakeFile(key, f"required column(s) missing: {', '.join(missing)}")
    except Exception as exc:
        reason = unreadable_reason(exc)
        if reason is None:
            log.warning("raw file %s could not be checked now (%s); will retry", key, exc)
            return ""
        return reason
    return None


def quarantined(lake_root: str) -> dict[str, str]:
    """key -> reason of every raw file the Spark job quarantined."""
    check = FileCheck(LakeRoot.of(lake_root))
    check.load()
    return dict(check.bad)


def ledger_quarantined(lake: Lake) -> dict[str, str]:
    """key -> reason of every raw file the Spark job quarantined, read through the project's
    `Lake` port (what `musicnft status` holds: the settings' S3 client, not pyarrow's). An
    unreadable ledger object is skipped with a warning, as `FileCheck.load` does."""
    bad: dict[str, str] = {}
    for obj in lake.list_objects(LEDGER_PREFIX):
        if not obj.key.endswith(".json"):
            continue
        try:
            doc = json.loads(lake.get(obj.key))
        except (FileNotFoundError, ValueError) as exc:
            log.warning("spark file ledger %s unreadable (%s); not counted", obj.key, exc)
            continue
        if isinstance(doc, dict) and isinstance(doc.get("quarantined"), dict):
            bad.update({str(k): str(v) for k, v in doc["quarantined"].items()})
    return bad
