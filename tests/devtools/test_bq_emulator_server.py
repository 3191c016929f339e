"""The emulator's server parses each SQL text once and still gives every caller a tree of its own
(musicnft/devtools/bq_emulator_server.py)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from musicnft.devtools.bq_emulator import _server_command
from musicnft.devtools.bq_emulator_server import memoize_dialect_parse


class CountingDialect:
    """Stands in for SQLGlot's Dialect: BigQuery's parser, counting the parses."""

    parses = 0

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    def parse(self, sql: str, **opts: Any) -> list[exp.Expr | None]:
        type(self).parses += 1
        return sqlglot.parse(sql, read="bigquery", **opts)


@pytest.fixture
def dialect() -> Any:
    class Fresh(CountingDialect):
        parses = 0

    undo = memoize_dialect_parse(Fresh, kept=2)
    yield Fresh
    undo()


def test_a_text_is_parsed_once_and_each_caller_gets_its_own_tree(dialect: Any) -> None:
    sql = "SELECT post_id FROM `p.d.posts_hot` WHERE likes > 1"
    first = dialect().parse(sql)[0]
    # WHEN a caller changes its tree (the emulator's rewriters do)
    first.set("where", None)
    second = dialect().parse(sql)[0]
    # THEN the text was parsed once, and the next caller's tree is the text's, not the changed one
    assert dialect.parses == 1
    assert second is not first
    assert second.sql("bigquery") == sqlglot.parse_one(sql, read="bigquery").sql("bigquery")
    assert "WHERE" in second.sql("bigquery") and "WHERE" not in first.sql("bigquery")


def test_settings_and_options_are_part_of_what_is_kept(dialect: Any) -> None:
    sql = "SELECT 1"
    dialect().parse(sql)
    dialect(version="2").parse(sql)
    dialect().parse(sql, error_level=sqlglot.ErrorLevel.RAISE)
    assert dialect.parses == 3


def test_a_text_that_fails_to_parse_fails_every_time_and_is_not_kept(dialect: Any) -> None:
    for _ in range(2):
        with pytest.raises(ParseError):
            dialect().parse("SELECT FROM WHERE (")
    assert dialect.parses == 2


def test_only_the_most_recent_texts_are_kept(dialect: Any) -> None:
    for sql in ("SELECT 1", "SELECT 2", "SELECT 3", "SELECT 1"):  # kept=2: SELECT 1 was dropped
        dialect().parse(sql)
    assert dialect.parses == 4
    dialect().parse("SELECT 3")
    assert dialect.parses == 4


def test_undo_restores_the_dialects_own_parse() -> None:
    class Plain(CountingDialect):
        parses = 0

    original = Plain.parse
    undo = memoize_dialect_parse(Plain)
    assert Plain.parse is not original
    undo()
    assert Plain.parse is original


def test_the_emulator_is_started_through_this_server() -> None:
    assert _server_command()[-2:] == ["-m", "musicnft.devtools.bq_emulator_server"]
