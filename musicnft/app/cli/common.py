"""What every command group shares: the `--data-dir` option, settings from the environment and
flags, clean stops on signals, and the X bearer token."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from musicnft.settings import ConfigError, Settings
from musicnft.stop_event import StopEvent

if TYPE_CHECKING:
    from producer.x_stream import Secret

log = logging.getLogger("musicnft.cli")

# What `add_subparsers` returns: each command group's `register` adds its commands to it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def data_dir_option() -> argparse.ArgumentParser:
    """The parent parser of every command that reads the data directory."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the embedded profile keeps everything (default: $MUSICNFT_DATA_DIR or ./data)",
    )
    return common


def settings_from(args: argparse.Namespace) -> Settings:
    """The environment's settings (`Settings.from_env`), then the command's flags over them."""
    settings = Settings.from_env()
    if getattr(args, "data_dir", None):
        settings = settings.with_data_dir(Path(args.data_dir))
    # Flags win over the environment for the live sources' endpoints.
    if getattr(args, "x_api_base", None):
        if not args.x_api_base.startswith(("http://", "https://")):
            raise ConfigError(f"--x-api-base must be an http(s) URL, got {args.x_api_base!r}")
        settings = dataclasses.replace(settings, x_api_base=args.x_api_base)
    if getattr(args, "jetstream_url", None):
        if not args.jetstream_url.startswith(("ws://", "wss://")):
            raise ConfigError(f"--jetstream-url must be a ws(s) URL, got {args.jetstream_url!r}")
        settings = dataclasses.replace(settings, jetstream_url=args.jetstream_url)
    return settings


def stop_on_signals() -> threading.Event:
    """First SIGINT/SIGTERM asks for a clean stop; a second one exits at once. (A `StopEvent`:
    a `threading.Event` set from the handler could deadlock the waiting main thread.)"""
    stop = StopEvent()

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            raise SystemExit(130)
        log.info(
            "%s received: finishing up (send again to exit at once)", signal.Signals(signum).name
        )
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def x_token(settings: Settings, token_file: str | None = None) -> Secret:
    """The bearer token from --bearer-token-file or the settings (X_BEARER_TOKEN; the EC2 unit
    fills it from Secrets Manager). Never a flag value: command lines are visible to every user of
    the host."""
    from producer.x_stream import Secret

    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"--bearer-token-file {token_file}: {exc.strerror}") from None
    else:
        token = settings.x_bearer_token
    if not token:
        raise ConfigError("X_BEARER_TOKEN is not set (the X API bearer token; never printed)")
    return Secret(token.strip())
