"""`musicnft sql` runs one plain read and nothing else (issue #12 item 1), and `--json` serializes
every type a query can return (item 2)."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import pytest

from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.sql_guard import check_read_only
from musicnft.app.cli import main
from musicnft.app.json_values import iso_duration, json_value
from musicnft.ports import ReadOnlyQueryError


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture
def warehouse_dir(data_dir: Path) -> Path:
    """A data dir whose warehouse exists (catalog and empty tables)."""
    wh = EmbeddedWarehouse(data_dir / "warehouse")
    wh.query("SELECT count(*) FROM posts_hot")
    wh.close()
    return data_dir


def _sql(data_dir: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["sql", "--data-dir", str(data_dir), *args])
    out, err = capsys.readouterr()
    return code, out, err


REFUSED = {
    "explain analyze copy": "EXPLAIN ANALYZE COPY (SELECT 'x:evil' AS post_id) TO "
    "'{wh}/posts_hot/part-zzz.parquet'",
    "explain copy": "EXPLAIN COPY (SELECT 1) TO '{wh}/x.parquet'",
    "copy": "COPY (SELECT 'x:evil' AS post_id) TO '{wh}/posts_hot/part-zzz.parquet'",
    "copy table": "COPY posts_hot TO '{wh}/dump.csv'",
    "insert": "INSERT INTO posts_hot (post_id) VALUES ('x:evil')",
    "update": "UPDATE posts_hot SET text = 'evil'",
    "delete": "DELETE FROM posts_hot",
    "create": "CREATE TABLE evil AS SELECT 1 AS a",
    "create view": "CREATE VIEW v AS SELECT 1",
    "drop": "DROP TABLE posts_hot",
    "attach": "ATTACH '{wh}/evil.duckdb' AS evil",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "set": "SET enable_external_access = true",
    "pragma": "PRAGMA enable_profiling",
    "call": "CALL ducklake_expire_snapshots('musicnft', older_than => now())",
    "checkpoint": "CHECKPOINT",
    "two statements": "SELECT 1; DROP TABLE posts_hot",
    "two selects": "SELECT 1; SELECT 2",
    "with insert": "WITH x AS (SELECT 1 AS a) INSERT INTO posts_hot (post_id) SELECT 'x' FROM x",
    "maintenance function": "SELECT * FROM ducklake_cleanup_old_files('musicnft')",
    "merge function": "SELECT * FROM ducklake_merge_adjacent_files('musicnft')",
    "dynamic sql": "SELECT * FROM query('SELECT 1')",
    "secrets": "SELECT * FROM duckdb_secrets()",
    "export": "EXPORT DATABASE '{wh}/export'",
    "checkpoint function": "SELECT * FROM force_checkpoint()",
    "sqlite attach function": "SELECT * FROM sqlite_attach('{wh}/evil.db')",
    "nested in a subquery": "SELECT * FROM posts_hot WHERE post_id IN "
    "(SELECT * FROM ducklake_expire_snapshots('musicnft'))",
    "explain analyze of a refused function": "EXPLAIN ANALYZE SELECT * FROM "
    "ducklake_cleanup_old_files('musicnft')",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_the_guard_refuses_every_statement_that_is_not_a_plain_read(name: str) -> None:
    with pytest.raises(ReadOnlyQueryError, match="refused: "):
        check_read_only(REFUSED[name].format(wh="/tmp/wh"))


def test_sql_refuses_writes_with_exit_2_and_no_file_appears(
    warehouse_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a data dir with a warehouse, and every file in it
    before = _files(warehouse_dir)
    wh = warehouse_dir / "warehouse"
    # WHEN each refused statement is given to `musicnft sql`
    for name, sql in REFUSED.items():
        code, out, err = _sql(warehouse_dir, capsys, sql.format(wh=wh))
        # THEN it exits 2 with one line saying why, and prints no result
        assert code == 2, name
        assert out == "", name
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "refused:" in lines[0], (name, err)
        assert "Traceback" not in err
    # AND no file appeared or changed anywhere under the data dir
    assert _files(warehouse_dir) == before
    assert not (wh / "posts_hot" / "part-zzz.parquet").exists()


def test_plain_reads_still_work(warehouse_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for sql in (
        "SELECT count(*) AS n FROM posts_hot",
        "WITH t AS (SELECT post_id FROM posts_hot) SELECT count(*) AS n FROM t",
        "SELECT 1 AS n",
    ):
        code, out, _ = _sql(warehouse_dir, capsys, sql, "--json")
        assert code == 0, sql
        assert json.loads(out)[0]["n"] in (0, 1)
    for sql in ("EXPLAIN SELECT count(*) FROM posts_hot", "EXPLAIN ANALYZE SELECT 1"):
        code, out, err = _sql(warehouse_dir, capsys, sql)
        assert code == 0, (sql, err)
        assert out.strip()
    # a catalog reader is not refused
    check_read_only("SELECT snapshot_id FROM ducklake_snapshots('musicnft')")
    # a query DuckDB rejects is one line and exit 1, not a traceback
    code, out, err = _sql(warehouse_dir, capsys, "SELECT nope FROM posts_hot")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1


TYPES = """
SELECT
  sum(x) AS sum_int,
  12.50::DECIMAL(10, 2) AS dec,
  123456789012345678.123456789::DECIMAL(38, 9) AS dec_wide,
  170141183460469231731687303715884105727::HUGEINT AS huge,
  18446744073709551615::UBIGINT AS ubig,
  DATE '2021-12-01' AS d,
  TIME '12:34:56.789' AS t,
  INTERVAL '1 year 2 months 3 days 4 hours 5 minutes 6.5 seconds' AS iv,
  -INTERVAL '1 day' AS neg_iv,
  '\\xAA\\x00b'::BLOB AS b,
  '1c2b0a32-5a2c-4b8e-9a3d-2f0b2f0e8a11'::UUID AS u,
  [1, 2, NULL] AS l,
  {'a': 1, 'b': [1.5]} AS s,
  MAP {'k': 1, 'j': 2} AS m,
  MAP {1: 'x'} AS m_int,
  TIMESTAMPTZ '2021-12-01 01:00:00+01' AS tz,
  TIMESTAMP '2021-12-01 01:02:03' AS ts,
  'nan'::DOUBLE AS nan,
  'inf'::FLOAT AS inf,
  '-inf'::DOUBLE AS ninf,
  0.1::DOUBLE AS f,
  [1, 2]::INT[2] AS arr,
  'a'::ENUM('a', 'b') AS e,
  TRUE AS yes,
  NULL AS nothing
FROM (SELECT 1::INT AS x UNION ALL SELECT 2)
"""


def test_sql_json_serializes_every_type(
    warehouse_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _sql(warehouse_dir, capsys, TYPES, "--json")
    assert code == 0, err
    assert "NaN" not in out and "Infinity" not in out  # strict JSON
    [row] = json.loads(out)
    assert row == {
        "sum_int": 3,
        "dec": "12.50",
        "dec_wide": "123456789012345678.123456789",
        "huge": 170141183460469231731687303715884105727,
        "ubig": 18446744073709551615,
        "d": "2021-12-01",
        "t": "12:34:56.789000",
        "iv": "P1Y2M3DT4H5M6.5S",
        "neg_iv": "P-1D",
        "b": base64.b64encode(b"\xaa\x00b").decode(),
        "u": "1c2b0a32-5a2c-4b8e-9a3d-2f0b2f0e8a11",
        "l": [1, 2, None],
        "s": {"a": 1, "b": ["1.5"]},
        "m": {"k": 1, "j": 2},
        "m_int": {"1": "x"},
        "tz": "2021-12-01T00:00:00Z",
        "ts": "2021-12-01T01:02:03",
        "nan": None,
        "inf": None,
        "ninf": None,
        "f": 0.1,
        "arr": [1, 2],
        "e": "a",
        "yes": True,
        "nothing": None,
    }
    # The table output goes through the same conversion (no crash, one line per row)
    code, out, _ = _sql(warehouse_dir, capsys, TYPES)
    assert code == 0 and len(out.strip().splitlines()) == 2


def test_json_values_without_arrow_types() -> None:
    # What the BigQuery adapter's rows can hold as Python values
    import datetime as dt
    import uuid
    from decimal import Decimal

    assert json_value(Decimal("1.10")) == "1.10"
    assert json_value(Decimal("12345678901234567890")) == 12345678901234567890
    assert json_value(float("nan")) is None and json_value(-math.inf) is None
    assert json_value(dt.timedelta(days=1, seconds=1.5)) == "P1DT1.5S"
    assert json_value(dt.timedelta(seconds=-90)) == "PT-1M-30S"
    assert json_value(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert json_value(b"\x00") == "AA=="
    when = dt.datetime(2021, 12, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert json_value(when) == "2021-12-01T00:00:00Z"
    assert iso_duration(0, 0, 0) == "PT0S"
    assert iso_duration(-14, 0, 1) == "P-1Y-2MT0.000000001S"


@pytest.mark.parametrize(
    ("sql", "ok"),
    [
        ("SELECT count(*) FROM `project.musicnft.posts_hot`", True),  # BigQuery-only syntax
        ("SELECT 1", True),
        ("DELETE FROM `project.musicnft.posts_hot` WHERE TRUE", False),
        ("EXPORT DATA OPTIONS (uri = 'gs://b/*', format = 'CSV') AS SELECT 1", False),
        ("SELECT 1; SELECT 2", False),
        ("EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.parquet'", False),
    ],
)
def test_the_bigquery_guard(sql: str, ok: bool) -> None:
    from musicnft.adapters.sql_guard import check_read_only_bigquery

    if ok:
        check_read_only_bigquery(sql)
    else:
        with pytest.raises(ReadOnlyQueryError):
            check_read_only_bigquery(sql)
