"""bqemulator's server, with each SQL text parsed once (`python -m musicnft.devtools.bq_emulator_server
start ...`, what `bq_emulator.bigquery_emulator` runs).

Why: the emulator parses every statement it receives with SQLGlot again in each of its stages
(classifying it, guarding DDL, syncing its catalog, translating it to DuckDB, shaping the result):
a py-spy profile of the BigQuery tests put SQLGlot's tokenizer and parser at 41% of the emulator's
CPU and the statements' execution in DuckDB at 8%. The emulator is the suite's busiest child
process (about a tenth of `make test`'s CPU), so here a dialect's `parse` keeps the trees of the
texts it parsed and hands each caller its own copy. A copy is what a parse returns (a new tree the
caller may change), so the emulator answers exactly as before; a text that fails to parse is not
kept and fails again the same way. The mypyc-compiled SQLGlot (`sqlglotc`) would be the other way
to speed it up, but bqemulator 1.4.0 reads constraint trees in a way the compiled classes reject.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

KEPT_TEXTS = 4096  # the most recently parsed texts kept (the tests send a few hundred distinct)


def memoize_dialect_parse(dialect_class: Any, kept: int = KEPT_TEXTS) -> Callable[[], None]:
    """Make `dialect_class.parse` (SQLGlot's `Dialect.parse`, which every dialect inherits)
    parse each (dialect, options, text) once; return what undoes it."""
    original = dialect_class.parse
    trees: OrderedDict[tuple[Any, ...], list[Any]] = OrderedDict()

    def parse(self: Any, sql: str, **opts: Any) -> list[Any]:
        try:
            key = (type(self), _state(self), sql, tuple(sorted(opts.items())))
            hash(key)
        except TypeError:  # an option that cannot be a key: parse as SQLGlot does
            return original(self, sql, **opts)
        parsed = trees.get(key)
        if parsed is None:
            parsed = original(self, sql, **opts)
            trees[key] = parsed
            if len(trees) > kept:
                trees.popitem(last=False)
        else:
            trees.move_to_end(key)
        return [tree.copy() if tree is not None else None for tree in parsed]

    dialect_class.parse = parse

    def undo() -> None:
        dialect_class.parse = original

    return undo


def _state(dialect: Any) -> tuple[tuple[str, Any], ...]:
    """A dialect instance's settings (SQLGlot's own equality ignores them; a key must not)."""
    return tuple(sorted((k, repr(v)) for k, v in vars(dialect).items()))


def main(argv: list[str] | None = None) -> int:
    from bqemulator.cli import main as emulator_main
    from sqlglot.dialects.dialect import Dialect

    memoize_dialect_parse(Dialect)
    sys.argv = ["bqemulator", *(sys.argv[1:] if argv is None else argv)]
    result = emulator_main()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
