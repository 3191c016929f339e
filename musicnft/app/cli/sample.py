"""`sample`: generate X-v2-shaped sample stream lines (deterministic)."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from musicnft.app.cli.common import Subparsers, log


def cmd_sample(args: argparse.Namespace) -> int:
    from musicnft.devtools.sample import write_sample

    start = datetime.fromisoformat(args.start) if args.start else None
    kwargs: dict[str, Any] = {"lines": args.lines, "seed": args.seed}
    if start is not None:
        kwargs["start"] = start
    if args.posts_per_hour:
        kwargs["posts_per_hour"] = args.posts_per_hour
    stats = write_sample(Path(args.out), **kwargs)
    log.info("wrote %s: %s", args.out, stats)
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("sample", help="generate X-v2-shaped sample stream lines (deterministic)")
    p.add_argument("--out", required=True, metavar="PATH", help="output file (.gz to compress)")
    p.add_argument("--lines", type=int, default=20_000, help="how many lines (default 20000)")
    p.add_argument("--seed", type=int, default=2021, help="random seed (default 2021)")
    p.add_argument("--start", metavar="ISO", help="first post time, e.g. 2021-12-01T00:00:00+00:00")
    p.add_argument(
        "--posts-per-hour", type=float, help="average rate (default 256, the original's)"
    )
    p.set_defaults(func=cmd_sample)
