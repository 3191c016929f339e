"""`schema`: the post schema v1 as Glue table columns."""

from __future__ import annotations

import argparse
import json

from musicnft.app.cli.common import Subparsers


def cmd_schema(args: argparse.Namespace) -> int:
    from musicnft.contract.schema import ENRICHED_FIELDS, POST_FIELDS, glue_columns

    fields = ENRICHED_FIELDS if args.enriched else POST_FIELDS
    print(json.dumps(glue_columns(fields), indent=2))
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("schema", help="print the post schema v1 as Glue table columns (JSON)")
    p.add_argument(
        "--enriched", action="store_true", help="include the enrichment columns (posts_hot)"
    )
    p.set_defaults(func=cmd_schema)
