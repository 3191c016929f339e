"""The lake as a local directory: the embedded profile's adapter for the `Lake` port."""

from __future__ import annotations

import builtins
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from musicnft.ports import LakeObject


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

    def list_objects(
        self, prefix: str, from_hour: datetime | None = None
    ) -> builtins.list[LakeObject]:
        """Walks `prefix/YYYY/MM/DD/HH/` folders, pruning whole years/months/days before
        `from_hour`, so a tick over a long-lived lake lists only the recent folders."""
        base = self.root / prefix
        if not base.is_dir():
            return []
        cut = from_hour.astimezone(UTC).strftime("%Y/%m/%d/%H") if from_hour else ""
        out: builtins.list[LakeObject] = []

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
