"""The gate in front of `musicnft sql`: one plain read, checked by DuckDB's own parser.

`check_read_only(sql)` raises `ReadOnlyQueryError` (one line saying why) unless `sql` is exactly one
statement that only reads. It never executes anything: it parses on a private in-memory DuckDB with
external access off, so nothing reaches the warehouse, the network or the file system.

What passes:

- one `SELECT` statement as DuckDB's parser classifies it (`StatementType.SELECT`), which
  `json_serialize_sql` also accepts: plain `SELECT`, `WITH … SELECT`, `FROM t`, `VALUES`,
  `DESCRIBE`, `SHOW`, `SUMMARIZE`; `json_serialize_sql` refuses every other statement type;
- `EXPLAIN [ANALYZE] <that>`: the explained statement must pass the same checks (`EXPLAIN ANALYZE`
  runs it, so `EXPLAIN ANALYZE COPY … TO 'file'` writes a file: refused).

What is refused, and why:

- more than one statement (`SELECT 1; DROP …`): one query per call, nothing smuggled after it;
- every other statement type (COPY, INSERT, UPDATE, DELETE, MERGE, CREATE, DROP, ALTER, ATTACH,
  DETACH, INSTALL, LOAD, SET/RESET, PRAGMA, CALL, CHECKPOINT, VACUUM, EXPORT/IMPORT, TRANSACTION,
  PREPARE/EXECUTE, …): they write, change settings or load code;
- inside a SELECT, calls of functions that maintain, modify or reach outside the tables:
  any `ducklake_*` function that is not one of the catalog readers (`ducklake_snapshots`,
  `ducklake_table_info`, `ducklake_list_files`, `ducklake_table_changes`,
  `ducklake_table_insertions`, `ducklake_table_deletions`, `ducklake_current_snapshot`,
  `ducklake_last_committed_snapshot`, `ducklake_options`, `ducklake_settings`) — e.g.
  `ducklake_expire_snapshots`, `ducklake_cleanup_old_files`, `ducklake_merge_adjacent_files`,
  `ducklake_rewrite_data_files`, `ducklake_flush_inlined_data`, `ducklake_set_option`,
  `ducklake_add_data_files`; any function whose name contains `cleanup`, `expire`, `vacuum`,
  `checkpoint`, `compact`, `flush`, `set_option`, `commit` or `add_data_files` (maintenance of
  other catalogs and DuckDB's own: `force_checkpoint`, ...), `attach`/`detach`
  (`sqlite_attach`), `write` (`write_log`), `truncate` (`truncate_duckdb_logs`), `install`,
  `import_database` or `export_database`; `query` and `query_table` (SQL text run at execution time,
  which this parse cannot see); `duckdb_secrets`, `which_secret`, `getenv` (credentials and the
  environment); `set_config` (a setting changed from inside a query).

The warehouse adds its own guards behind this one (a read-only attachment, external access off);
this is the first line, and it does not depend on string matching: the statement type and every
function name come from DuckDB's parse tree. BigQuery SQL that DuckDB cannot parse (backquoted
names, BigQuery-only syntax) is passed on to the BigQuery adapter's own single-SELECT check and
BigQuery's, which has no DML inside a query.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import duckdb

from musicnft.ports import ReadOnlyQueryError

# Table and scalar functions that read the DuckLake catalog without changing it.
DUCKLAKE_READERS = frozenset(
    {
        "ducklake_snapshots",
        "ducklake_table_info",
        "ducklake_list_files",
        "ducklake_table_changes",
        "ducklake_table_insertions",
        "ducklake_table_deletions",
        "ducklake_current_snapshot",
        "ducklake_last_committed_snapshot",
        "ducklake_options",
        "ducklake_settings",
    }
)
# Substrings of function names that maintain or modify a catalog (any catalog, not only ours).
MAINTENANCE_WORDS = (
    "cleanup",
    "expire",
    "vacuum",
    "checkpoint",
    "compact",
    "flush",
    "set_option",
    "commit",
    "add_data_files",
    "attach",  # sqlite_attach() and the like attach a database from inside a query
    "detach",
    "write",  # write_log() and writers of any extension
    "truncate",  # truncate_duckdb_logs()
    "install",
    "import_database",
    "export_database",
)
# Functions refused by name: dynamic SQL the parse cannot see, credentials, the environment.
REFUSED_FUNCTIONS = frozenset(
    {"query", "query_table", "duckdb_secrets", "which_secret", "getenv", "set_config"}
)

# `EXPLAIN`, `EXPLAIN ANALYZE` and `EXPLAIN (options)`; what follows is checked by the parser.
_EXPLAIN = re.compile(
    r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*EXPLAIN\b\s*(?:\([^)]*\)|ANALY[SZ]E\b)?",
    re.IGNORECASE | re.DOTALL,
)

_local = threading.local()


def _parser() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB used only to parse (one per thread; never sees the data)."""
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect(
            ":memory:",
            config={
                "enable_external_access": False,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
            },
        )
        _local.con = con
    return con


def _refuse(reason: str) -> ReadOnlyQueryError:
    return ReadOnlyQueryError(
        f"refused: {reason}; only a single SELECT (a plain read) is allowed here"
    )


def _statements(sql: str) -> list[Any]:
    try:
        return list(_parser().extract_statements(sql))
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _refuse(f"DuckDB cannot parse it ({first})") from None


def _type_name(statement: Any) -> str:
    return str(getattr(statement.type, "name", statement.type)).upper()


def _function_names(node: Any) -> list[str]:
    """Every function a serialized parse tree calls (scalar, aggregate, window and table)."""
    found: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            name = item.get("function_name")
            if isinstance(name, str):
                found.append(name.lower())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def refused_function(name: str) -> str | None:
    """Why a function may not appear in a query, or None when it may."""
    name = name.lower()
    if name in REFUSED_FUNCTIONS:
        return f"function {name}() runs SQL text or reads secrets or the environment"
    if name.startswith("ducklake_") and name not in DUCKLAKE_READERS:
        return f"function {name}() maintains or modifies the DuckLake catalog"
    if any(word in name for word in MAINTENANCE_WORDS):
        return f"function {name}() maintains or modifies a catalog"
    return None


def _check_select(sql: str) -> None:
    statements = _statements(sql)
    if len(statements) != 1:
        raise _refuse(f"{len(statements)} statements")
    kind = _type_name(statements[0])
    if kind != "SELECT":
        raise _refuse(f"{kind} is not a plain read")
    raw = _parser().execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    tree: dict[str, Any] = json.loads(raw[0]) if raw and raw[0] else {"error": True}
    if tree.get("error"):
        raise _refuse(str(tree.get("error_message") or "not a plain SELECT"))
    if len(tree.get("statements") or []) != 1:
        raise _refuse("not exactly one SELECT")
    for name in _function_names(tree["statements"]):
        reason = refused_function(name)
        if reason:
            raise _refuse(reason)


def check_read_only(sql: str) -> None:
    """Raise `ReadOnlyQueryError` unless `sql` is one plain read (see the module docstring)."""
    if not sql or not sql.strip():
        raise _refuse("empty query")
    statements = _statements(sql)
    if len(statements) != 1:
        raise _refuse(f"{len(statements)} statements")
    if _type_name(statements[0]) == "EXPLAIN":
        match = _EXPLAIN.match(sql)
        if match is None:
            raise _refuse("an EXPLAIN this guard cannot read")
        _check_select(sql[match.end() :])
        return
    _check_select(sql)


def check_read_only_bigquery(sql: str) -> None:
    """For BigQuery: DuckDB's checks when DuckDB can parse the query; otherwise (BigQuery-only
    syntax) the BigQuery adapter's single-SELECT check and BigQuery itself decide."""
    try:
        statements = list(_parser().extract_statements(sql))
    except duckdb.Error:
        from musicnft.adapters.bigquery.warehouse import check_read_only as bigquery_check

        bigquery_check(sql)
        return
    if len(statements) != 1:
        raise _refuse(f"{len(statements)} statements")
    check_read_only(sql)
