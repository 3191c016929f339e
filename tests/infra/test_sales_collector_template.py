"""The NFT sales collector on the producer host (issue 17), in infra/template.yaml: a systemd unit
running `musicnft sales --source opensea` (polling), the OpenSea key from a Secrets Manager secret
read at start and never printed, and IAM that lets the host write the lake's sales/ prefix only.

Structure on the template as cfn-lint parses it; then the unit's own start script is run as
systemd would run it (its Environment= lines, a stand-in `aws` CLI answering the secret) against
a local fake OpenSea and moto server's S3: the sales land under sales/, the key reaches OpenSea
and no output, and a refused key ends the collector with the exit code the unit does not restart.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from musicnft.settings import Settings, parse_collections
from tests.support.aws import AWS_ENV, client, moto_server
from tests.support.fake_opensea import KEY, fake_opensea, sale_event
from tests.support.paths import ROOT

TEMPLATE = ROOT / "infra" / "template.yaml"
DEPLOY_SH = ROOT / "infra" / "deploy.sh"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:musicnft/opensea-api-key-AbCdEf"
VENV_MUSICNFT = str(Path(sys.executable).parent / "musicnft")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode import decode

    parsed, matches = decode(str(TEMPLATE))
    assert not matches, [str(m) for m in matches]
    return json.loads(json.dumps(parsed))


def user_data(template: dict[str, Any]) -> str:
    props = template["Resources"]["ProducerInstance"]["Properties"]
    return props["UserData"]["Fn::Base64"]["Fn::Sub"]


def heredoc(script: str, target: str) -> str:
    return script.split(f"{target} <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]


def unit_lines(template: dict[str, Any]) -> list[str]:
    return heredoc(user_data(template), "/etc/systemd/system/musicnft-sales.service").splitlines()


def directives(lines: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in lines:
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    props = template["Resources"][role]["Properties"]
    return [s for p in props["Policies"] for s in p["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------------------- structure


def test_cfn_lint_is_clean() -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_key_is_a_secret_with_a_generated_placeholder(template) -> None:
    secret = template["Resources"]["OpenSeaApiKeySecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    props = secret["Properties"]
    assert props["Name"] == {"Fn::Sub": "${AWS::StackName}/opensea-api-key"}
    assert "SecretString" not in props and "SecretStringTemplate" not in props.get(
        "GenerateSecretString", {}
    )
    # never a parameter: a key in a parameter shows in the console and the stack's events
    assert not [p for p in template["Parameters"] if re.search(r"opensea|api_?key", p, re.I)]


def test_the_host_writes_the_lakes_sales_prefix_only(template) -> None:
    lake_grants = []
    for statement in statements(template, "ProducerRole"):
        assert statement["Effect"] == "Allow"
        for resource in as_list(statement["Resource"]):
            if "LakeBucket" in json.dumps(resource):
                lake_grants.append((as_list(statement["Action"]), resource))
    assert lake_grants == [
        (["s3:PutObject"], {"Fn::Sub": "arn:${AWS::Partition}:s3:::${LakeBucket}/sales/*"})
    ]
    secrets = [
        s["Resource"]
        for s in statements(template, "ProducerRole")
        if "secretsmanager:GetSecretValue" in as_list(s["Action"])
    ]
    assert {"Ref": "OpenSeaApiKeySecret"} in secrets
    # nothing else in the stack attaches to the host's role
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            roles = resource["Properties"].get("Roles", [])
            if {"Ref": "ProducerRole"} in roles:
                assert logical_id == "ProducerSessionManagerPolicy", logical_id


def test_the_collections_parameter_accepts_slugs_only(template) -> None:
    param = template["Parameters"]["NftCollections"]
    assert param["Type"] == "String" and param["Default"] == ""
    pattern = re.compile(param["AllowedPattern"])
    for good in ("", "genesis-tapes", "genesis-tapes,lofi_apes,a1"):
        assert pattern.fullmatch(good), good
        assert parse_collections(good) == tuple(s for s in good.split(",") if s)
    for bad in ("a b", ",a", "a,", "a;b", "a,,b", "$(reboot)"):
        assert not pattern.fullmatch(bad), bad
    # deploy.sh passes it from NFT_COLLECTIONS
    assert re.search(r"^\s+NFT_COLLECTIONS:NftCollections$", DEPLOY_SH.read_text(), re.MULTILINE)


def test_the_unit_polls_with_the_cloud_profile_and_stops_on_a_refused_key(template) -> None:
    unit = directives(unit_lines(template))
    env = dict(v.split("=", 1) for v in unit["Environment"])
    assert env == {
        "MUSICNFT_PROFILE": "cloud",
        "MUSICNFT_S3_BUCKET": "${LakeBucket}",
        "MUSICNFT_NFT_COLLECTIONS": "${NftCollections}",
        "MUSICNFT_OPENSEA_API_KEY_SECRET_ARN": "${OpenSeaApiKeySecret}",
        "AWS_REGION": "${AWS::Region}",
        "AWS_DEFAULT_REGION": "${AWS::Region}",
        "MUSICNFT_DATA_DIR": "/var/lib/musicnft",
    }
    # the key itself is in no Environment= line, nor anywhere in the user data
    assert "OPENSEA_API_KEY=" not in "\n".join(unit_lines(template))
    assert unit["ExecStart"] == ["/opt/musicnft/bin/start-sales"]
    assert unit["User"] == ["musicnft"]
    assert unit["Restart"] == ["on-failure"]
    # `musicnft sales` exits 2 on bad configuration or a refused key (401/403): not restarted
    assert unit["RestartPreventExitStatus"] == ["2"]
    assert unit["KillSignal"] == ["SIGTERM"]
    assert unit["RequiresMountsFor"] == ["/var/lib/musicnft"]  # its cursors are on that volume
    assert int(unit["StartLimitIntervalSec"][0]) >= 900
    script = user_data(template)
    lines = script.splitlines()
    enable = lines.index("  systemctl enable --now musicnft-sales.service")
    assert lines[enable - 1] == 'if [ -n "${NftCollections}" ]; then'
    assert lines.index("mount /var/lib/musicnft") < enable
    assert lines.index("systemctl daemon-reload") < enable


def test_the_start_script_reads_the_secret_and_execs_the_poll(template) -> None:
    start = heredoc(user_data(template), "/opt/musicnft/bin/start-sales")
    assert start.startswith("#!/bin/bash\n") and "set -euo pipefail" in start
    (assignment,) = [line for line in start.splitlines() if line.startswith("OPENSEA_API_KEY=")]
    assert '="$(aws secretsmanager get-secret-value --secret-id ' in assignment
    assert '"$MUSICNFT_OPENSEA_API_KEY_SECRET_ARN"' in assignment
    assert start.rstrip().endswith("exec /opt/musicnft/venv/bin/musicnft sales --source opensea")
    # polling (no --once), and the key never on a command line or echoed
    assert "--once" not in start and "--api-key" not in start
    assert not re.search(r"\b(echo|printf)\b.*OPENSEA_API_KEY", start)


def test_user_data_with_the_collector_is_valid_bash(template) -> None:
    rendered = re.sub(r"\$\{([^!}][^}]*)\}", "x", user_data(template)).replace("${!", "${")
    proc = subprocess.run(["bash", "-n"], input=rendered, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------- behaviour


def fake_aws(bin_dir: Path, log: Path) -> None:
    """An `aws` CLI that answers only `secretsmanager get-secret-value` for SECRET_ARN."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    aws = bin_dir / "aws"
    aws.write_text(
        "#!/bin/bash\n"
        f'echo "$*" >> {log}\n'
        'if [ "$1 $2 $3" = "secretsmanager get-secret-value --secret-id" ] '
        f'&& [ "$4" = "{SECRET_ARN}" ] '
        '&& [ "$5 $6 $7 $8" = "--query SecretString --output text" ]; then\n'
        f"  echo '{KEY}'\n"
        "  exit 0\n"
        "fi\n"
        "echo 'An error occurred (ResourceNotFoundException)' >&2\n"
        "exit 254\n"
    )
    aws.chmod(0o755)


def unit_environment(template: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """The unit's Environment= lines with CloudFormation's substitutions made."""
    env = {}
    for value in directives(unit_lines(template))["Environment"]:
        key, raw = value.split("=", 1)
        env[key] = re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], raw)
    return env


def start_script(template: dict[str, Any], tmp_path: Path) -> Path:
    text = heredoc(user_data(template), "/opt/musicnft/bin/start-sales")
    path = tmp_path / "start-sales"
    path.write_text(text.replace("/opt/musicnft/venv/bin/musicnft", VENV_MUSICNFT))
    path.chmod(0o755)
    return path


@pytest.mark.slow
def test_the_unit_collects_sales_into_s3_with_the_key_from_the_secret(
    template, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    with moto_server() as endpoint, fake_opensea() as fake:
        client("s3", endpoint).create_bucket(Bucket="lake")
        fake.events["genesis-tapes"] = [
            sale_event(i, "genesis-tapes", int((now - timedelta(minutes=5 - i)).timestamp()))
            for i in range(3)
        ]
        fake_aws(tmp_path / "bin", tmp_path / "aws.log")
        env = unit_environment(
            template,
            {
                "LakeBucket": "lake",
                "NftCollections": "genesis-tapes",
                "OpenSeaApiKeySecret": SECRET_ARN,
                "AWS::Region": "us-east-1",
            },
        )
        data_dir = tmp_path / "var-lib-musicnft"
        env.update(
            AWS_ENV,
            PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}",
            HOME=str(tmp_path),
            MUSICNFT_DATA_DIR=str(data_dir),  # /var/lib/musicnft on the host
            # test-only: where moto and the fake OpenSea listen, and a quick pace
            MUSICNFT_AWS_ENDPOINT_URL=endpoint,
            MUSICNFT_OPENSEA_API_BASE=fake.url,
            MUSICNFT_OPENSEA_REQUEST_INTERVAL="0",
            MUSICNFT_SALES_POLL_SECONDS="0.5",
        )
        assert "OPENSEA_API_KEY" not in env
        # the host's settings are valid as the unit sets them
        settings = Settings.from_env(env)
        assert settings.nft_collections == ("genesis-tapes",)
        proc = subprocess.Popen(
            [str(start_script(template, tmp_path))],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        s3 = client("s3", endpoint)
        deadline = time.monotonic() + 90
        keys: list[str] = []
        while time.monotonic() < deadline and proc.poll() is None:
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake").get("Contents", [])]
            if keys and len(fake.event_requests()) >= 2:
                break
            time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    # THEN the sales are under sales/ (nothing else of the lake written), polled more than once
    assert keys and all(k.startswith("sales/") and k.endswith(".parquet") for k in keys), keys
    assert len(fake.event_requests()) >= 2
    # the key reached OpenSea from the secret, and no output, no state file
    assert fake.keys_seen and set(fake.keys_seen) == {KEY}
    assert KEY not in out + err
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert SECRET_ARN in (tmp_path / "aws.log").read_text()
    # the cursor is persisted where `musicnft status` reads it (sales_cursors)
    db = sqlite3.connect(data_dir / "sales" / "opensea.sqlite")
    (collection,) = [r[0] for r in db.execute("SELECT collection FROM cursors")]
    db.close()
    assert collection == "genesis-tapes"


@pytest.mark.slow
def test_a_refused_key_exits_2_which_the_unit_does_not_restart(template, tmp_path: Path) -> None:
    with fake_opensea() as fake:
        fake.events["genesis-tapes"] = []
        # the secret still holds CloudFormation's placeholder: OpenSea refuses it
        (tmp_path / "bin").mkdir()
        (tmp_path / "bin" / "aws").write_text(
            "#!/bin/bash\necho 'Placeholder0123456789abcdefABCDEF'\n"
        )
        (tmp_path / "bin" / "aws").chmod(0o755)
        env = unit_environment(
            template,
            {
                "LakeBucket": "lake",
                "NftCollections": "genesis-tapes",
                "OpenSeaApiKeySecret": SECRET_ARN,
                "AWS::Region": "us-east-1",
            },
        )
        env.update(
            AWS_ENV,
            PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}",
            HOME=str(tmp_path),
            MUSICNFT_DATA_DIR=str(tmp_path / "data"),
            MUSICNFT_AWS_ENDPOINT_URL="http://127.0.0.1:9",  # never reached
            MUSICNFT_OPENSEA_API_BASE=fake.url,
            MUSICNFT_OPENSEA_REQUEST_INTERVAL="0",
        )
        fake.auth_status = 401
        proc = subprocess.run(
            [str(start_script(template, tmp_path))],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert directives(unit_lines(template))["RestartPreventExitStatus"] == ["2"]
    assert "Placeholder0123456789abcdefABCDEF" not in proc.stdout + proc.stderr
