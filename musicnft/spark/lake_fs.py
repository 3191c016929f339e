"""The lake root as Spark and pyarrow see it: a local directory or an `s3://bucket/prefix` URI.

The job runs on a laptop and on EMR Serverless, where the project's `Lake` adapters (boto3, the
settings) are not wanted: pyarrow's filesystems read both kinds of root with what PySpark's pandas
functions already need.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow.fs as pafs


@dataclass(frozen=True)
class LakeRoot:
    """`root`: a local path (relative paths are made absolute) or `s3://bucket[/prefix]`."""

    root: str

    @classmethod
    def of(cls, root: str) -> LakeRoot:
        if not root:
            raise ValueError("the lake root is empty")
        if "://" in root:
            scheme = root.split("://", 1)[0]
            if scheme not in ("s3", "s3a", "file"):
                raise ValueError(f"lake root must be a local path or s3:// URI, got {root!r}")
            if scheme == "file":
                return cls(os.path.abspath(root.split("://", 1)[1]))
            return cls(root.rstrip("/"))
        return cls(os.path.abspath(root))

    @property
    def is_local(self) -> bool:
        return "://" not in self.root

    def uri(self, key: str = "") -> str:
        """What Spark is given for `key` (a path relative to the root)."""
        return f"{self.root}/{key}" if key else self.root

    @cached_property
    def _fs(self) -> tuple[pafs.FileSystem, str]:
        import pyarrow.fs as pafs

        if self.is_local:
            return pafs.LocalFileSystem(), self.root
        uri = "s3://" + self.root.split("://", 1)[1]  # s3a:// is Hadoop's name for the same
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, path

    @property
    def fs(self) -> pafs.FileSystem:
        return self._fs[0]

    def path(self, key: str) -> str:
        """The filesystem path of `key` for pyarrow."""
        base = self._fs[1].rstrip("/")
        return f"{base}/{key}" if key else base

    def get(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError when absent (the `Lake.get` contract)."""
        import pyarrow.fs as pafs

        info = self.fs.get_file_info(self.path(key))
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(key)
        with self.fs.open_input_file(self.path(key)) as fh:  # no codec guessing (.gz)
            return bytes(fh.read())

    def put(self, key: str, data: bytes) -> None:
        """Write an object whole (local: a temp file, flushed to disk, then a rename and the
        folder's flush: never half seen, and still there after a power cut)."""
        path = self.path(key)
        if self.is_local:
            folder = os.path.dirname(path)
            os.makedirs(folder, exist_ok=True)
            tmp = f"{path}.tmp-{os.getpid()}"
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            return
        with self.fs.open_output_stream(path, compression=None) as out:
            out.write(data)

    def delete(self, key: str) -> None:
        """Remove an object (absent: nothing to do)."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self.path(key))

    def exists(self, key: str) -> bool:
        import pyarrow.fs as pafs

        return bool(self.fs.get_file_info(self.path(key)).type == pafs.FileType.File)

    def move(self, src: str, dst: str) -> None:
        """Move an object into place: a rename on a local lake (atomic, same filesystem); on S3 a
        copy (the new object appears whole) then the source's deletion."""
        if self.is_local:
            os.makedirs(os.path.dirname(self.path(dst)), exist_ok=True)
        self.fs.move(self.path(src), self.path(dst))

    def delete_dir(self, key: str) -> None:
        """Remove a folder and everything under it (absent: nothing to do)."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_dir(self.path(key).rstrip("/"))

    def list(self, prefix: str, suffix: str = "") -> list[tuple[str, int, float]]:
        """(key, size, mtime epoch s) of the files under `prefix`, recursively, sorted by key."""
        import pyarrow.fs as pafs

        base = self.path("").rstrip("/")
        selector = pafs.FileSelector(
            self.path(prefix).rstrip("/"), recursive=True, allow_not_found=True
        )
        out = []
        for info in self.fs.get_file_info(selector):
            if info.type != pafs.FileType.File or not info.path.endswith(suffix):
                continue
            key = info.path[len(base) + 1 :]
            mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
            out.append((key, info.size or 0, mtime))
        return sorted(out)
