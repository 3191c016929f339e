"""The lake: Firehose's key layout and the lake port with its local-directory adapter.

Key layout (Firehose's default, DESIGN.md): `raw/YYYY/MM/DD/HH/<stream>-<n>-YYYY-MM-DD-HH-MM-SS-
<uuid>.parquet`, where the folder hour is the UTC arrival of the oldest record in the file, not the
posts' `created_at`. Records that could not be converted go under `errors/`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

RAW_PREFIX = "raw/"
ERRORS_PREFIX = "errors/"
CONVERSION_FAILED = "format-conversion-failed"
DELIVERY_STREAM_VERSION = 1


def object_name(stream: str, oldest_arrival: datetime, unique: str, version: int = 1) -> str:
    t = oldest_arrival.astimezone(UTC)
    return f"{stream}-{version}-{t:%Y-%m-%d-%H-%M-%S}-{unique}"


def hour_prefix(oldest_arrival: datetime) -> str:
    return f"{oldest_arrival.astimezone(UTC):%Y/%m/%d/%H}/"


def raw_key(stream: str, oldest_arrival: datetime, unique: str | None = None) -> str:
    unique = unique or str(uuid.uuid4())
    return (
        f"{RAW_PREFIX}{hour_prefix(oldest_arrival)}"
        f"{object_name(stream, oldest_arrival, unique, DELIVERY_STREAM_VERSION)}.parquet"
    )


def error_key(
    stream: str, oldest_arrival: datetime, kind: str = CONVERSION_FAILED, unique: str | None = None
) -> str:
    unique = unique or str(uuid.uuid4())
    return (
        f"{ERRORS_PREFIX}{kind}/{hour_prefix(oldest_arrival)}"
        f"{object_name(stream, oldest_arrival, unique, DELIVERY_STREAM_VERSION)}"
    )


@dataclass(frozen=True)
class LakeObject:
    key: str
    size: int
    last_modified: datetime


def hour_of_key(key: str) -> datetime | None:
    """The folder hour of `raw/YYYY/MM/DD/HH/...` (None for keys outside that layout)."""
    parts = key.split("/")
    if len(parts) < 6:
        return None
    try:
        return datetime(int(parts[1]), int(parts[2]), int(parts[3]), int(parts[4]), tzinfo=UTC)
    except ValueError:
        return None


class Lake(Protocol):
    """Object storage with keys, as both a directory and an S3 bucket can provide."""

    def put(self, key: str, data: bytes) -> None: ...

    def list_objects(self, prefix: str, from_hour: datetime | None = None) -> list[LakeObject]:
        """Objects under `prefix` (`raw/` or `errors/...`) with size and last-modified time;
        with `from_hour`, only hour folders at or after it are listed."""
        ...

    def get(self, key: str) -> bytes: ...

    def list(self, prefix: str = "") -> Iterator[str]: ...

    def local_path(self, key: str) -> Path | None: ...


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a hidden temp file, fsync, rename into place, fsync the folder.

    Readers never see a half-written file, and once this returns the file survives a crash, which
    is what lets a caller advance its checkpoint right after.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


class LocalLake:
    """The lake as a directory (`$MUSICNFT_DATA_DIR/lake`): keys are relative paths."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in Path(key).parts:
            raise ValueError(f"invalid lake key {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        write_atomic(self._path(key), data)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under `prefix`, sorted; temp files of writers in progress are never listed."""
        base = self.root / prefix if prefix.endswith("/") or not prefix else self.root
        if not base.exists():
            return iter(())
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith("."):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def list_objects(self, prefix: str, from_hour: datetime | None = None) -> list[LakeObject]:
        """Walks `prefix/YYYY/MM/DD/HH/` folders, pruning whole years/months/days before
        `from_hour`, so a tick over a long-lived lake lists only the recent folders."""
        base = self.root / prefix
        if not base.is_dir():
            return []
        cut = from_hour.astimezone(UTC).strftime("%Y/%m/%d/%H") if from_hour else ""
        out: list[LakeObject] = []

        def walk(folder: Path, depth: int, rel: str) -> None:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except FileNotFoundError:
                return
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                sub = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir():
                    if depth < 4 and cut and sub < cut[: len(sub)]:
                        continue  # the whole folder is older than from_hour
                    walk(Path(entry.path), depth + 1, sub)
                elif entry.is_file():
                    st = entry.stat()
                    out.append(
                        LakeObject(
                            f"{prefix.rstrip('/')}/{sub}",
                            st.st_size,
                            datetime.fromtimestamp(st.st_mtime, UTC),
                        )
                    )

        walk(base, 0, "")
        return out
