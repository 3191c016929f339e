"""Modules kept out of a process (issue #14 item 9): every `musicnft` command but the dashboard,
the Spark job and the model runs without pandas.

Every check runs in a fresh interpreter: keeping pandas out is for the life of a process, and
would leak into the rest of the test session here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import cli
from tests.support.records import x_line


def _python(code: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_a_kept_out_package_cannot_be_imported_and_arrow_and_duckdb_still_work(
    cli_env: dict[str, str],
) -> None:
    # GIVEN a process that keeps pandas out; WHEN it imports pandas, builds Arrow tables from
    # Python rows and inserts them through DuckDB (what the consumer's warehouse insert does)
    code = """
import json, sys
from musicnft.local.lean_imports import keep_out
kept = keep_out("pandas")
errors = []
for name in ("pandas", "pandas.core.frame"):
    try:
        __import__(name)
    except ModuleNotFoundError as exc:
        errors.append(exc.name)
import duckdb, pyarrow as pa
table = pa.Table.from_pylist([{"a": 1, "b": "x"}, {"a": 2, "b": None}])
con = duckdb.connect()
con.execute("CREATE TABLE t (a BIGINT, b VARCHAR)")
con.register("batch", table)
con.execute("INSERT INTO t SELECT * FROM batch")
rows = con.execute("SELECT a, b FROM t ORDER BY a").fetchall()
print(json.dumps([kept, errors, rows, "pandas" in sys.modules]))
"""
    kept, errors, rows, loaded = json.loads(_python(code, cli_env))

    # THEN pandas and its submodules are refused, and the rows land all the same
    assert kept == ["pandas"]
    assert errors == ["pandas", "pandas"]  # a submodule fails on its package
    assert rows == [[1, "x"], [2, None]]
    assert loaded is False


def test_an_already_imported_package_is_left_alone(cli_env: dict[str, str]) -> None:
    code = """
import json
import pandas
from musicnft.local.lean_imports import keep_out
kept = keep_out("pandas")
import pandas.core.frame
print(json.dumps([kept, pandas.DataFrame({"a": [1]}).shape[0]]))
"""
    assert json.loads(_python(code, cli_env)) == [[], 1]


def test_musicnft_consume_run_as_a_program_never_imports_pandas(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # GIVEN posts in the stream
    path = tmp_path / "few.jsonl"
    path.write_bytes(b"\n".join([x_line(1), x_line(2), x_line(3)]) + b"\n")
    subprocess.run(cli("produce", "--file", str(path)), env=cli_env, check=True, timeout=120)

    # WHEN `python -m musicnft consume --once` runs (its own command line, as the supervisor and
    # the bench start it), THEN the posts reach posts_hot and pandas was never imported
    code = """
import json, runpy, sys
sys.argv = ["musicnft", "consume", "--once"]
try:
    runpy.run_module("musicnft", run_name="__main__")
except SystemExit as exc:
    print(json.dumps([exc.code, "pandas" in sys.modules, "pyarrow" in sys.modules]))
"""
    assert json.loads(_python(code, cli_env)) == [0, False, True]
    proc = subprocess.run(
        cli("sql", "SELECT count(*) AS n FROM posts_hot", "--json"),
        env=cli_env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(proc.stdout)[0]["n"] == 3


def test_only_the_commands_that_make_dataframes_keep_pandas() -> None:
    # A new command is kept lean unless it is named here: pandas costs ~0.3 s of CPU per start
    from musicnft.app.cli import WITHOUT_PANDAS, build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) - WITHOUT_PANDAS == {"dashboard", "spark", "model"}
    assert set(sub.choices) >= WITHOUT_PANDAS


@pytest.mark.parametrize(
    "argv",
    [
        ["deliver", "--once"],
        ["status", "--json"],
        ["sql", "SELECT count(*) AS n FROM posts_hot WHERE post_id <> 'x'", "--json"],
        ["backfill", "--no-dagster"],
    ],
    ids=["deliver", "status", "sql", "backfill"],
)
def test_commands_run_as_programs_never_import_pandas(
    argv: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    # GIVEN posts in the stream
    path = tmp_path / "few.jsonl"
    path.write_bytes(b"\n".join([x_line(1), x_line(2), x_line(3)]) + b"\n")
    subprocess.run(cli("produce", "--file", str(path)), env=cli_env, check=True, timeout=120)
    # WHEN the command runs as its own program, THEN it succeeds without importing pandas
    code = f"""
import json, runpy, sys
sys.argv = ["musicnft", *{argv!r}]
try:
    runpy.run_module("musicnft", run_name="__main__")
except SystemExit as exc:
    print(json.dumps([exc.code, "pandas" in sys.modules, "pyarrow" in sys.modules]), file=sys.stderr)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], env=cli_env, capture_output=True, text=True, timeout=120
    )
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == [0, False, True], proc.stderr
    if argv[0] == "deliver":  # and the posts are in the lake
        assert len(list((Path(cli_env["MUSICNFT_DATA_DIR"]) / "lake" / "raw").rglob("*.parquet")))
    elif argv[0] == "sql":  # and it answered (a query with a literal: DuckDB's own parser)
        assert json.loads(proc.stdout) == [{"n": 0}]
    elif argv[0] == "status":  # and it printed its counts
        assert json.loads(proc.stdout)


def test_the_cli_called_as_a_function_keeps_pandas_available(cli_env: dict[str, str]) -> None:
    # A caller that passes its own argv (tests, other programs) is not a consume process: nothing
    # is kept out of it.
    code = """
import json, sys
from musicnft.app.cli import main
main(["consume", "--once"])
import pandas
print(json.dumps(["pandas" in sys.modules]))
"""
    assert json.loads(_python(code, cli_env)) == [True]
