"""Convert a warehouse of the old layout (Parquet files under `<root>/<table>/`) into DuckLake.

The old layout's rules decide which rows count, exactly as its readers applied them:
- a `compact-*.parquet` file lists the files it supersedes in its Parquet metadata under
  `musicnft.supersedes`; superseded files are ignored (they may still be on disk after a crash);
- in a windowed table, a window's newest `w-<window>~<version>.parquet` file wins over its older
  versions and over that window's rows in a compacted file.
All tables are inserted in one transaction (marked in its commit message), then the old folders
are moved aside to `<root>/legacy-<time>/`. Running it again after a crash between the two
steps only moves the folders: the rows are never inserted twice.

Usage: `python -m musicnft.adapters.ducklake_migrate <warehouse root>`.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from musicnft.adapters.embedded_warehouse import (
    ALIAS,
    WINDOWS_TABLE,
    EmbeddedWarehouse,
    legacy_tables,
)
from musicnft.contract.tables import TABLES, WINDOWED_TABLES

SUPERSEDES_KEY = b"musicnft.supersedes"
MIGRATION_MESSAGE = "migrate legacy warehouse"


def _window_of(name: str) -> datetime:
    """The window of a `w-<YYYY-MM-DD-HHMM>~<version>.parquet` file, from its name."""
    return datetime.strptime(name[2:].split("~", 1)[0], "%Y-%m-%d-%H%M").replace(tzinfo=UTC)


def live_files(folder: Path) -> list[Path]:
    """The files the old reader counted: not superseded, and the newest version per window."""
    names = sorted(
        p.name for p in folder.iterdir() if p.suffix == ".parquet" and not p.name.startswith(".")
    )
    superseded: set[str] = set()
    for name in names:
        if name.startswith("compact-"):
            meta = pq.read_schema(folder / name).metadata or {}
            superseded.update(json.loads(meta.get(SUPERSEDES_KEY, b"[]")))
    live = [n for n in names if n not in superseded]
    newest: dict[str, str] = {}
    for name in live:
        if name.startswith("w-"):
            window = name.split("~", 1)[0]
            newest[window] = max(newest.get(window, name), name)
    keep = set(newest.values())
    return [folder / n for n in live if not n.startswith("w-") or n in keep]


def read_legacy_table(folder: Path, table: str) -> tuple[pa.Table, set[datetime]]:
    """The table's rows as the old reader saw them, and (windowed tables) the windows written."""
    schema = TABLES[table]
    files = live_files(folder)
    parts: list[pa.Table] = []
    windows: set[datetime] = set()
    overridden = {_window_of(p.name) for p in files if p.name.startswith("w-")}
    for path in files:
        part = pq.read_table(path)
        missing = [f for f in schema if f.name not in part.column_names]
        for field in missing:  # files written before a column was added
            part = part.append_column(field.name, pa.nulls(part.num_rows, field.type))
        part = part.select(schema.names).cast(schema)
        if table in WINDOWED_TABLES and path.name.startswith("compact-") and overridden:
            stale = pc.is_in(
                part.column("window_start"),
                pa.array(sorted(overridden), schema.field("window_start").type),
            )
            part = part.filter(pc.invert(stale))
        parts.append(part)
        if table in WINDOWED_TABLES:
            if path.name.startswith("w-"):
                windows.add(_window_of(path.name))
            windows.update(w for w in part.column("window_start").to_pylist() if w is not None)
    data = pa.concat_tables(parts) if parts else schema.empty_table()
    return data, windows


def migrate_legacy(root: Path) -> dict[str, int]:
    """Convert `root`'s old-layout tables into its DuckLake tables; returns rows per table."""
    root = Path(root)
    legacy = legacy_tables(root)
    if not legacy:
        return {}
    loaded = {t: read_legacy_table(root / t, t) for t in legacy}
    wh = EmbeddedWarehouse(root, legacy_ok=True)
    try:
        done = wh._read(
            "look up a migration",
            lambda con: con.execute(
                f"SELECT count(*) FROM ducklake_snapshots('{ALIAS}') WHERE commit_message = ?",
                [MIGRATION_MESSAGE],
            ).fetchone(),
        )
        if not (done and done[0]):

            def body(con: object) -> None:
                for table, (data, windows) in loaded.items():
                    wh._insert(con, table, data)  # type: ignore[arg-type]
                    for window in sorted(windows):
                        wh._exec(
                            con,  # type: ignore[arg-type]
                            f"INSERT INTO {WINDOWS_TABLE} VALUES (?, ?, now())",
                            [table, window],
                        )

            wh._transaction(MIGRATION_MESSAGE, body)
    finally:
        wh.close()
    aside = root / f"legacy-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    aside.mkdir(parents=True, exist_ok=True)
    for table in legacy:
        (root / table).rename(aside / table)
    return {t: data.num_rows for t, (data, _) in loaded.items()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m musicnft.adapters.ducklake_migrate <warehouse root>")
        return 2
    counts = migrate_legacy(Path(args[0]))
    print(json.dumps(counts, sort_keys=True) if counts else "nothing to migrate")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
