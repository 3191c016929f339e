"""DuckLake plumbing for the embedded warehouse: extensions, ATTACH strings, retries.

The extensions come from the `duckdb-extension-ducklake` and `duckdb-extension-sqlite-scanner`
wheels pinned in requirements.lock and are LOADed straight from the installed package, so nothing
is downloaded or written to `~/.duckdb` (autoinstall and autoload are off). They are loaded with
`allow_unsigned_extensions`: DuckDB's signature check re-hashes 70 MB on every new connection
(~0.5 s each here), and it verifies nothing beyond what pip's hash-checked install of the same
venv (which also holds DuckDB itself) already did. User SQL never runs on a connection that could
LOAD anything: readers accept one SELECT and have external access disabled.
"""

from __future__ import annotations

import importlib.util
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import duckdb

log = logging.getLogger(__name__)

ALIAS = "wh"
CATALOG_FILE = "catalog.sqlite"
DATA_DIR = "data"
META_SCHEMA = "musicnft_meta"

T = TypeVar("T")

_EXTENSIONS = {
    "ducklake": "duckdb_extension_ducklake",
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "httpfs": "duckdb_extension_httpfs",
}


def extension_path(name: str) -> Path:
    """The `.duckdb_extension` file shipped by the pinned wheel for this DuckDB version."""
    spec = importlib.util.find_spec(_EXTENSIONS[name])
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {_EXTENSIONS[name]} package is not installed (make install)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.exists():
        found = sorted(folder.glob(f"extensions/*/{name}.duckdb_extension"))
        raise RuntimeError(
            f"{name} extension for DuckDB {duckdb.__version__} not found in {folder} "
            f"(found: {[str(p) for p in found]}); the lock pins both to the same version"
        )
    return path


def new_connection(
    private_dir: Path, extensions: tuple[str, ...] = ("ducklake", "sqlite_scanner")
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the DuckLake extensions loaded from the venv; its extension
    directory is a private folder that stays empty (nothing is installed, nothing autoloads)."""
    con = duckdb.connect(
        config={
            "threads": 2,
            "allow_unsigned_extensions": True,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "extension_directory": str(private_dir / "duckdb-extensions"),
        }
    )
    for name in extensions:
        con.execute(f"LOAD '{extension_path(name)}'")
    return con


def extensions_for(catalog: str | None, data_path: str | None = None) -> tuple[str, ...]:
    """The extensions a catalog needs (SQLite's scanner by default, PostgreSQL's for
    `postgres:`), and httpfs when the data lives on S3."""
    scanner = (
        "postgres_scanner" if catalog and catalog.startswith("postgres:") else "sqlite_scanner"
    )
    s3 = ("httpfs",) if data_path and data_path.startswith("s3://") else ()
    return ("ducklake", scanner, *s3)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def create_s3_secret(con: duckdb.DuckDBPyConnection, endpoint_url: str | None = None) -> None:
    """An S3 secret for the warehouse's data path, from the credentials boto3 resolves (the
    environment, a profile, the instance role) and, for a local S3 (moto), its endpoint.

    Temporary credentials are read when the connection opens: a process that outlives them
    (an instance role's rotate every few hours) reconnects. The secret never reaches a log:
    a failure is reported without the statement."""
    import boto3

    session = boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise RuntimeError(
            "the warehouse's data path is on S3 but no AWS credentials were found "
            "(environment, profile or instance role)"
        )
    frozen = credentials.get_frozen_credentials()
    options = {
        "TYPE": "s3",
        "KEY_ID": _literal(frozen.access_key),
        "SECRET": _literal(frozen.secret_key),
        "REGION": _literal(session.region_name or "us-east-1"),
    }
    if frozen.token:
        options["SESSION_TOKEN"] = _literal(frozen.token)
    if endpoint_url:
        from urllib.parse import urlparse

        url = urlparse(endpoint_url)
        options.update(
            ENDPOINT=_literal(url.netloc),
            URL_STYLE=_literal("path"),
            USE_SSL="true" if url.scheme == "https" else "false",
        )
    sql = (
        "CREATE OR REPLACE SECRET musicnft_s3 ("
        + ", ".join(f"{k} {v}" for k, v in options.items())
        + ")"
    )
    try:
        con.execute(sql)
    except duckdb.Error as exc:
        raise RuntimeError(
            f"could not configure S3 access for the warehouse: {type(exc).__name__}"
        ) from None


def attach_sql(
    root: Path,
    catalog: str | None = None,
    data_path: str | None = None,
    alias: str = ALIAS,
    read_only: bool = False,
    snapshot_time: datetime | None = None,
) -> str:
    """The ATTACH of the warehouse's DuckLake.

    By default the catalog is `<root>/catalog.sqlite` in WAL mode (readers never block the
    writer, nor it them) and the data `<root>/data/`. `catalog="postgres:<libpq string>"` puts
    the catalog in PostgreSQL (`data_path` may then be another folder or an `s3://` URL).
    """
    data = data_path or f"{(root / DATA_DIR).as_posix()}/"
    # The data path follows the root (the catalog stores file paths relative to it), so a
    # warehouse folder can be moved or copied whole.
    options = [f"DATA_PATH '{data}'", "OVERRIDE_DATA_PATH TRUE"]
    if catalog is None:
        target = f"sqlite:{(root / CATALOG_FILE).as_posix()}"
        options.append("META_JOURNAL_MODE 'WAL'")
    elif catalog.startswith("postgres:"):
        target = catalog
    else:
        raise ValueError(f"unsupported DuckLake catalog {catalog!r} (sqlite by default, postgres:)")
    if read_only:
        options.append("READ_ONLY")
    if snapshot_time is not None:
        options.append(f"SNAPSHOT_TIME '{snapshot_time.isoformat()}'")
    for text in (target, data, alias):
        if "'" in text:
            raise ValueError(f"quote in a catalog string, data path or alias: {text!r}")
    return f"ATTACH 'ducklake:{target}' AS {alias} ({', '.join(options)})"


def sqlite_attach_sql(
    root: Path, alias: str = ALIAS, read_only: bool = False, snapshot_time: datetime | None = None
) -> str:
    return attach_sql(root, None, None, alias, read_only, snapshot_time)


# ---- retries -----------------------------------------------------------------------------------

# What a concurrent writer or maintenance run makes a statement fail with, for a moment: SQLite's
# lock on the catalog, DuckLake's commit conflicts, a data file removed under a long reader.
_TRANSIENT = (
    "database is locked",
    "database is busy",
    "sqlite_busy",
    "conflict",
    "failed to commit",
    "could not serialize",
    "failed to query most recent snapshot",
    "no such file",
    "cannot open file",
    "failed to open",
    "deadlock detected",
    "could not obtain lock",
    "duplicate key value",
    "database has been invalidated",  # two commits took the same snapshot id (PostgreSQL catalog)
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, duckdb.TransactionException | duckdb.IOException):
        return True
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and any(marker in text for marker in _TRANSIENT)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base·2ⁿ))."""

    attempts: int = (
        25  # ~30 s of backoff: three writers on a loaded 2-core machine needed more than 12
    )
    base_seconds: float = 0.02
    cap_seconds: float = 2.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))

    def run(self, what: str, fn: Callable[[], T]) -> T:
        """Run `fn` until it succeeds, retrying transient errors; the last one is raised."""
        for attempt in range(self.attempts):
            try:
                return fn()
            except duckdb.Error as exc:
                if not is_transient(exc) or attempt == self.attempts - 1:
                    raise
                log.debug("%s: transient error, retrying (%d): %s", what, attempt + 1, exc)
                time.sleep(self.delay(attempt))
        raise AssertionError("unreachable")
