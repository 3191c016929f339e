"""The same warehouse with its DuckLake catalog in PostgreSQL (a server the test starts on
127.0.0.1 in a temp dir, from Debian's `postgresql`, which `make test` installs): writes, window
replacement, concurrent writers, maintenance and time travel behave as with the SQLite catalog."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.contract.schema import ENRICHED_FIELDS, conform
from musicnft.contract.tables import WINDOW_METRICS_SCHEMA
from musicnft.contract.windows import window_key
from musicnft.hotpath.enrich import enrich

pytestmark = pytest.mark.slow

T0 = datetime(2021, 12, 1, tzinfo=UTC)


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not versions:
        raise RuntimeError(f"{name} not found: install Debian's postgresql (make postgres)")
    return str(versions[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pg_catalog() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 for this module; yields a DuckLake catalog string."""
    # Its own folder under /tmp: the postgres user cannot enter pytest's (root-only) temp dirs.
    folder = Path(tempfile.mkdtemp(prefix="musicnft-pg-"))
    data = folder / "data"
    port = _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        shutil.chown(folder, "postgres")
        os.chmod(folder, 0o700)
        as_user = ["runuser", "-u", "postgres", "--"]
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(
        [*as_user, _pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], **run
    )  # type: ignore[call-overload]
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *as_user,
            _pg_bin("pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "log"),
            "-w",
            "start",
        ],
        **run,  # type: ignore[arg-type]
    )
    try:
        subprocess.run(
            [
                *as_user,
                _pg_bin("createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "musicnft",
            ],
            **run,  # type: ignore[arg-type]
        )
        yield f"postgres:dbname=musicnft host=127.0.0.1 port={port} user=postgres"
    finally:
        subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "stop"], **run)  # type: ignore[call-overload]
        shutil.rmtree(folder, ignore_errors=True)


def _rows(ids: range) -> list[dict]:
    out = []
    for i in ids:
        post = {
            "post_id": f"x:{i}",
            "platform": "x",
            "created_at": "2021-12-01T00:00:00Z",
            "ingested_at": "2021-12-01T00:00:01Z",
            "text": f"post {i} #NFT",
            "schema_version": 1,
        }
        out.append(conform(enrich(conform(post)), ENRICHED_FIELDS))
    return out


def _insert(wh: EmbeddedWarehouse, ids: range) -> int:
    rows = _rows(ids)
    return wh.insert_rows("posts_hot", rows, [r["post_id"] for r in rows]).inserted


def _metrics(posts: int) -> pa.Table:
    row = dict.fromkeys(WINDOW_METRICS_SCHEMA.names)
    row.update(window_start=T0, keyword="all", post_count=posts)
    return pa.Table.from_pylist([row], schema=WINDOW_METRICS_SCHEMA)


def _writer(root: str, catalog: str, worker: int) -> None:
    wh = EmbeddedWarehouse(Path(root), catalog=catalog)
    for b in range(10):
        start = (worker * 10 + b) * 10
        _insert(wh, range(start, start + 10))


def test_a_postgres_catalog_holds_the_same_tables(tmp_path: Path, pg_catalog: str) -> None:
    root = tmp_path / "wh"
    wh = EmbeddedWarehouse(root, catalog=pg_catalog)
    # writes: inserts (ids skipped when seen), a window replaced twice, duplicates removed
    assert _insert(wh, range(20)) == 20
    assert _insert(wh, range(10, 25)) == 5
    before = datetime.now(UTC)
    wh.replace_partition("window_metrics_15m", window_key(T0), _metrics(1))
    wh.replace_partition("window_metrics_15m", window_key(T0), _metrics(2))
    wh.append(
        "posts_hot",
        pa.Table.from_pylist(
            _rows(range(3)), schema=wh.query("SELECT * FROM posts_hot LIMIT 0").schema
        ),
    )
    assert wh.remove_duplicates("posts_hot", "post_id", ["x:0", "x:1", "x:2"]) == 3
    assert wh.count("posts_hot") == wh.count("posts_hot", distinct="post_id") == 25
    assert wh.query("SELECT post_count FROM window_metrics_15m").to_pylist() == [{"post_count": 2}]
    assert wh.partition_schema("window_metrics_15m", window_key(T0)) is not None
    # no SQLite catalog: the catalog is in PostgreSQL, the data files under the root
    assert not (root / "catalog.sqlite").exists()
    assert all(p.is_relative_to(root / "data") for p in wh.files("posts_hot"))
    # time travel and stats
    assert wh.query("SELECT count(*) AS n FROM window_metrics_15m", at=before).to_pylist() == [
        {"n": 0}
    ]
    assert wh.table_stats()["posts_hot"]["rows"] == 25
    # maintenance merges and deletes the old files
    result = wh.maintain(retention=timedelta(0))
    assert result["files_merged"] > 0 and result["files_deleted"] > 0
    assert len(wh.files("posts_hot")) == 1
    assert wh.count("posts_hot") == 25
    # a reader in another process sees the same rows
    reader = EmbeddedWarehouse(root, read_only=True, catalog=pg_catalog)
    assert reader.count("posts_hot") == 25


def test_concurrent_writers_on_a_postgres_catalog_land_every_batch_once(
    tmp_path: Path, pg_catalog: str
) -> None:
    catalog = pg_catalog.replace("dbname=musicnft", "dbname=postgres")
    root = tmp_path / "wh"
    EmbeddedWarehouse(root, catalog=catalog).count("posts_hot")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(root), catalog, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    wh = EmbeddedWarehouse(root, catalog=catalog)
    assert wh.count("posts_hot") == wh.count("posts_hot", distinct="post_id") == 300
