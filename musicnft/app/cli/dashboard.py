"""`dashboard`: serve the live dashboard (this process becomes Streamlit)."""

from __future__ import annotations

import argparse
import os
import sys

from musicnft.app.cli.common import Subparsers, data_dir_option, settings_from
from musicnft.app.processes import dashboard_command, dashboard_env


def cmd_dashboard(args: argparse.Namespace) -> int:
    env = dashboard_env(settings_from(args))
    print(f"musicnft dashboard: http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    cmd = dashboard_command(args.host, args.port)
    os.execvpe(cmd[0], cmd, env)  # Streamlit takes over this process (and its signals)
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "dashboard", parents=[data_dir_option()], help="serve the live dashboard (Streamlit)"
    )
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.set_defaults(func=cmd_dashboard)
