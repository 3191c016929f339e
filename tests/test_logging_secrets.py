"""No secret in any log line at any level (issue #12 item 15): at MUSICNFT_LOG_LEVEL=DEBUG,
botocore would log Secrets Manager's answer whole; third-party loggers stay at WARNING, and every
record is redacted by secret shape."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from musicnft.logs import REDACTED, add_secret, redact, setup_logging
from tests.support.aws import AWS_ENV, client, moto_server
from tests.support.paths import ROOT

PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" + "Zm9vYmFy" * 20
PRIVATE_KEY = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n"
KEY_ID = "3f2b9c0d1e4a5b6c7d8e9f00112233445566778899"
SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "musicnft-test",
    "private_key_id": KEY_ID,
    "private_key": PRIVATE_KEY,
    "client_email": "loader@musicnft-test.iam.gserviceaccount.com",
}
SECRET_STRING = base64.b64encode(json.dumps(SERVICE_ACCOUNT).encode()).decode()

# What each process below does: the CLI's own logging set-up from the environment, then the real
# code path that reads the BigQuery key from Secrets Manager, then logs what a careless caller
# might (the value itself, the key's JSON, the response dict, a bearer token, AWS keys).
SCRIPT = textwrap.dedent(
    """
    import json, logging, sys
    from musicnft.app.cli import _log_level, _third_party_log_level
    from musicnft.logs import setup_logging
    from musicnft.settings import Settings
    from musicnft import wiring

    settings = Settings.from_env()
    setup_logging(_log_level(), _third_party_log_level())  # what `musicnft COMMAND` does
    log = logging.getLogger("musicnft.test")
    log.debug("reading the BigQuery key from %s", settings.bigquery_credentials_secret_arn)
    value = wiring.bigquery_credentials(settings)
    assert value, "no secret read"
    import boto3, base64
    sm = boto3.client("secretsmanager", endpoint_url=settings.aws_endpoint_url)
    answer = sm.get_secret_value(SecretId=settings.bigquery_credentials_secret_arn)
    log.debug("answer: %s", answer)
    key = json.loads(base64.b64decode(value))
    log.debug("the key: %s", json.dumps(key))
    log.info("headers %s", {"Authorization": "Bearer AAAAAAAAAAAAAAAAAAAAAxTOKENxTOKENxTOKEN123"})
    log.info("env AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY and more")
    try:
        raise RuntimeError("bad key: " + key["private_key"])
    except RuntimeError:
        log.exception("failed")
    print("done", file=sys.stderr)
    """
)


def _run(endpoint: str, arn: str, **extra: str) -> str:
    env = dict(os.environ, **AWS_ENV)
    env.update(
        PYTHONPATH=str(ROOT),
        MUSICNFT_LOG_LEVEL="DEBUG",
        MUSICNFT_AWS_ENDPOINT_URL=endpoint,
        MUSICNFT_BIGQUERY_CREDENTIALS_SECRET_ARN=arn,
        **extra,
    )
    env.pop("MUSICNFT_BIGQUERY_CREDENTIALS", None)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "done" in proc.stderr
    return proc.stderr + proc.stdout


def _assert_no_secret(text: str) -> None:
    for needle in (
        SECRET_STRING,
        SECRET_STRING[:40],
        PEM_BODY[:40],
        "BEGIN PRIVATE KEY",
        KEY_ID,
        "xTOKENxTOKEN",
        "wJalrXUtnFEMI",
    ):
        assert needle not in text, f"secret {needle[:12]}… in the log"


@pytest.fixture(scope="module")
def secret() -> tuple[str, str]:
    with moto_server() as endpoint:
        sm = client("secretsmanager", endpoint)
        arn = sm.create_secret(Name="musicnft/bigquery", SecretString=SECRET_STRING)["ARN"]
        yield endpoint, arn


def test_debug_logging_while_reading_a_secret_logs_no_secret(secret: tuple[str, str]) -> None:
    endpoint, arn = secret
    # WHEN a process logs at DEBUG while botocore reads the secret from Secrets Manager
    text = _run(endpoint, arn)
    # THEN our DEBUG lines are there, botocore's are not (kept at WARNING), and no secret is
    assert "reading the BigQuery key" in text
    assert "botocore" not in text
    assert REDACTED in text
    _assert_no_secret(text)


def test_even_opted_in_third_party_debug_logs_no_secret(secret: tuple[str, str]) -> None:
    endpoint, arn = secret
    # WHEN botocore's DEBUG output is explicitly asked for
    text = _run(endpoint, arn, MUSICNFT_THIRD_PARTY_LOG_LEVEL="DEBUG")
    # THEN botocore logs (the response body among them), redacted
    assert "botocore" in text and "Response body" in text
    _assert_no_secret(text)


def test_redaction_reaches_every_handler(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN the process's logging set up (the factory redacts records as they are created)
    setup_logging("DEBUG")
    add_secret("a-token-read-at-run-time-1234")
    # WHEN a record carries secrets, and pytest's own handler captures it
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("musicnft.x").info(
            "token %s and %s", "a-token-read-at-run-time-1234", {"SecretString": "s3cr3t-v4lue"}
        )
        logging.getLogger("botocore.endpoint").debug("Response body: %s", SECRET_STRING)
    # THEN what every handler sees is redacted, and botocore's DEBUG never got through
    text = caplog.text
    assert "a-token-read-at-run-time-1234" not in text and "s3cr3t-v4lue" not in text
    assert SECRET_STRING not in text
    assert logging.getLogger("botocore").getEffectiveLevel() >= logging.WARNING


@pytest.mark.parametrize(
    "line",
    [
        '{"SecretString": "{\\"private_key\\": \\"-----BEGIN RSA PRIVATE KEY-----\\\\nMIIE"}',
        'b\'{"ARN":"arn","SecretString":"eyJ0eXBlIjoic2VydmljZV9hY2NvdW50In0="}\'',
        "{'SecretString': 'plain-secret-value', 'Name': 'x'}",
        "Authorization: Bearer AAAAAAAAAAAAAAAAAAAAAxTOKENxTOKEN%3Dabc",
        '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIB\\n-----END PRIVATE KEY-----\\n"',
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
    ],
)
def test_secret_shapes_are_redacted(line: str) -> None:
    out = redact(line)
    assert REDACTED in out
    for needle in ("MIIE", "eyJ0eXBl", "plain-secret-value", "xTOKEN", "wJalrXUtnFEMI"):
        assert needle not in out, out
