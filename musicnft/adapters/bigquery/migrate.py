"""`musicnft bigquery migrate`: create or bring up to date the dataset, tables and views.

Idempotent by construction: the dataset and tables are created only when missing, a column the
contract gained is added (NULLABLE, as BigQuery requires), views are replaced. What cannot be
migrated without losing data (a column whose type changed, a REQUIRED column that is missing) is
reported and left alone: the command exits non-zero and names it, and never drops anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from musicnft.adapters.bigquery.ddl import LAYOUTS, add_column_ddl, schema_field_type, table_ddl
from musicnft.contract.tables import TABLES

log = logging.getLogger("musicnft.bigquery")


class MigrationError(RuntimeError):
    """A live table differs from the contract in a way no additive migration can fix."""


@dataclass
class MigrationReport:
    dataset_created: bool = False
    tables_created: list[str] = field(default_factory=list)
    columns_added: list[str] = field(default_factory=list)
    tables_current: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"dataset: {'created' if self.dataset_created else 'exists'}"]
        out += [f"table {t}: created" for t in self.tables_created]
        out += [f"column {c}: added" for c in self.columns_added]
        out += [f"table {t}: up to date" for t in self.tables_current]
        out += [f"column {c}: not in the contract, kept" for c in self.extra_columns]
        out += [f"view {v}: created or replaced" for v in self.views]
        return out


def table_differences(table: str, live_schema: list[Any]) -> tuple[list[Any], list[str], list[str]]:
    """(contract fields missing live, incompatible differences, live columns not in contract)."""
    live = {f.name: f for f in live_schema}
    missing, incompatible = [], []
    for want in TABLES[table]:
        have = live.get(want.name)
        want_type, want_mode = schema_field_type(want.type)
        if have is None:
            if not want.nullable and want_mode != "REPEATED":
                incompatible.append(f"{table}.{want.name}: REQUIRED column is missing")
            else:
                missing.append(want)
            continue
        have_type = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}.get(
            have.field_type, have.field_type
        )
        have_mode = "REPEATED" if have.mode == "REPEATED" else "NULLABLE"
        if (have_type, have_mode) != (want_type, want_mode):
            incompatible.append(
                f"{table}.{want.name}: is {have.mode} {have.field_type}, "
                f"the contract says {want_mode} {want_type}"
            )
    names = set(TABLES[table].names)
    extra = [f"{table}.{f.name}" for f in live_schema if f.name not in names]
    return missing, incompatible, extra


def _schema_field(f: Any) -> Any:
    from google.cloud import bigquery

    field_type, mode = schema_field_type(f.type)
    return bigquery.SchemaField(f.name, field_type, mode=mode)


def _execute(client: Any, sql: str, report: MigrationReport, dry_run: bool) -> None:
    report.statements.append(sql)
    if not dry_run:
        client.query(sql).result()


def migrate(
    client: Any, dataset: str, location: str | None = None, dry_run: bool = False
) -> MigrationReport:
    """Create or migrate `dataset` in the client's project. Raises MigrationError (after doing
    every safe step) when a table needs a change that would lose data."""
    from google.api_core.exceptions import NotFound
    from google.cloud import bigquery

    from musicnft.adapters.bigquery.looker_views import VIEWS, view_ddl

    report = MigrationReport()
    dataset_id = f"{client.project}.{dataset}"
    try:
        client.get_dataset(dataset_id)
    except NotFound:
        report.dataset_created = True
        if not dry_run:
            spec = bigquery.Dataset(dataset_id)
            if location:
                spec.location = location
            client.create_dataset(spec, exists_ok=True)
    problems: list[str] = []
    for table in LAYOUTS:
        try:
            live = list(client.get_table(f"{dataset_id}.{table}").schema)
        except NotFound:
            _execute(client, table_ddl(table, dataset), report, dry_run)
            report.tables_created.append(table)
            continue
        missing, incompatible, extra = table_differences(table, live)
        if missing:
            # Through the API (tables.patch with the longer schema): the documented way to add
            # columns, equivalent to the printed ALTER TABLE ... ADD COLUMN.
            for f in missing:
                report.statements.append(add_column_ddl(table, f, dataset))
                report.columns_added.append(f"{table}.{f.name}")
            if not dry_run:
                live_table = client.get_table(f"{dataset_id}.{table}")
                live_table.schema = [*live_table.schema, *(_schema_field(f) for f in missing)]
                client.update_table(live_table, ["schema"])
                # Then the same columns by DDL, IF NOT EXISTS: a no-op on BigQuery, where the
                # patch added them; the emulator's patch changes only the table's metadata, and
                # without this its queries (views, MERGE) would not see the new columns.
                for f in missing:
                    client.query(add_column_ddl(table, f, dataset)).result()
        problems += incompatible
        report.extra_columns += extra
        if not missing and not incompatible:
            report.tables_current.append(table)
    if problems:
        # Views are left as they were: they may not compile over the unmigrated tables.
        raise MigrationError(
            "these need a manual migration (nothing was dropped): " + "; ".join(problems)
        )
    for name in VIEWS:
        _execute(client, view_ddl(name, dataset), report, dry_run)
        report.views.append(name)
    return report
