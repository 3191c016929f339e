"""Logging set-up shared by every process: one line per event, to stderr, UTC timestamps, and no
secret in any record at any level.

Two guards keep secrets out of logs (issue #12 item 15):

- third-party loggers (botocore, boto3, s3transfer, urllib3, requests, google, websockets, ...)
  stay at WARNING or above whatever our own level is: at DEBUG, botocore logs whole response
  bodies, Secrets Manager's answer with the BigQuery private key among them. Only an explicit
  opt-in (`MUSICNFT_THIRD_PARTY_LOG_LEVEL`, `Settings.third_party_log_level`) lowers them;
- every record is redacted when it is created (a log-record factory, so every handler sees the
  redacted text, pytest's and Dagster's included), and our handler's output is redacted once
  more, tracebacks included: bearer tokens, PEM private keys and `"private_key"` fields,
  Secrets Manager's `SecretString`/`SecretBinary`, AWS secret access keys and session tokens,
  and `password`/`client_secret`/`access_token`-style fields. `add_secret(value)` registers an
  exact value (a token read at run time) to redact wherever it appears.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable
from typing import Any

# Loggers of libraries that may log requests, responses or credentials at DEBUG/INFO.
THIRD_PARTY_LOGGERS = (
    "botocore",
    "boto3",
    "s3transfer",
    "aiobotocore",
    "urllib3",
    "requests",
    "httpx",
    "httpcore",
    "google",
    "google.auth",
    "google.cloud",
    "google.api_core",
    "googleapiclient",
    "grpc",
    "websockets",
    "websocket",
    "moto",
    "werkzeug",
    # Dagster's SQLite storage stamps its schema with alembic each time an instance opens it:
    # two INFO lines per storage, dozens at the end of `make demo` (its final windows' runs).
    "alembic",
)

REDACTED = "[REDACTED]"

# (pattern, replacement); group 1, when there is one, is kept (the field name or prefix).
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # PEM private keys, whole or cut off, with real or JSON-escaped newlines
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)",
            re.DOTALL,
        ),
        REDACTED,
    ),
    # JSON/Python-repr fields holding a secret: "SecretString": "...", 'private_key': '...'
    (
        re.compile(
            r"""((?:\\?["'])(?:SecretString|SecretBinary|private_key|private_key_id|"""
            r"""client_secret|password|passwd|access_token|refresh_token|id_token|"""
            r"""SecretAccessKey|aws_secret_access_key|SessionToken|aws_session_token|"""
            r"""bearer_token|api_key|apikey|token)(?:\\?["'])\s*:\s*)"""
            r"""(\\?["'])(?:\\.|(?!\2).)*\2""",
            re.IGNORECASE | re.DOTALL,
        ),
        r"\1\2" + REDACTED + r"\2",
    ),
    # key=value spellings (environment, config files, query strings)
    (
        re.compile(
            r"((?:AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|aws_secret_access_key|"
            r"aws_session_token|X_BEARER_TOKEN|MUSICNFT_X_BEARER_TOKEN|OPENSEA_API_KEY|x-api-key|"
            r"MUSICNFT_BIGQUERY_CREDENTIALS|X-Amz-Security-Token|X-Amz-Signature|"
            r"password|client_secret)\s*[=:]\s*)[^\s&,;'\"]+",
            re.IGNORECASE,
        ),
        r"\1" + REDACTED,
    ),
    # HTTP authorization: Bearer tokens, Basic credentials
    (
        re.compile(r"((?:Bearer|Basic)\s+)[A-Za-z0-9\-._~+/%]+=*", re.IGNORECASE),
        r"\1" + REDACTED,
    ),
]

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def add_secret(value: str | None) -> None:
    """Redact this exact value wherever it appears in a log record from now on (values shorter
    than 8 characters are ignored: too likely to match ordinary text)."""
    if value and len(value) >= 8:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """`text` with every known secret shape and registered secret value replaced."""
    if not text:
        return text
    with _secrets_lock:
        values: Iterable[str] = tuple(_secrets)
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Redacts a record's message (its arguments merged in) and its exception text in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep the record as logging would report it
        return
    clean = redact(message)
    if clean != message or record.args:
        record.msg, record.args = clean, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingFormatter(logging.Formatter):
    """Our one-line UTC format; the whole formatted text is redacted once more."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


_base_factory = logging.getLogRecordFactory()


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    redact_record(record)
    return record


def install_redaction() -> None:
    """Redact every record any logger creates in this process (idempotent)."""
    if logging.getLogRecordFactory() is not _redacting_factory:
        logging.setLogRecordFactory(_redacting_factory)


def quiet_third_party(level: str | None = None) -> None:
    """Keep third-party loggers at WARNING or above, or at `level` when explicitly opted in."""
    target = logging.getLevelName((level or "WARNING").upper())
    if not isinstance(target, int):
        target = logging.WARNING
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(target)


def setup_logging(level: str = "INFO", third_party_level: str | None = None) -> None:
    """Configure the root logger once per process; later calls only change the levels.

    The caller passes the levels from its settings (`Settings.log_level`, from MUSICNFT_LOG_LEVEL,
    and `Settings.third_party_log_level`, from MUSICNFT_THIRD_PARTY_LOG_LEVEL: empty = WARNING);
    this module never reads the environment.
    """
    level = (level or "INFO").upper()
    install_redaction()
    quiet_third_party(third_party_level)
    root = logging.getLogger()
    if getattr(root, "_musicnft_configured", False):
        root.setLevel(level)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)sZ %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level)
    root._musicnft_configured = True  # type: ignore[attr-defined]
