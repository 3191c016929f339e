"""The `musicnft` command line: help everywhere, clear errors, sql and status output."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from musicnft.app.cli import build_parser
from tests.support.paths import cli
from tests.support.records import x_line

COMMANDS = ["produce", "deliver", "consume", "run", "status", "sql", "schema", "sample"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, cli_env: dict[str, str]) -> None:
    proc = subprocess.run(cli(command, "--help"), env=cli_env, capture_output=True, text=True)
    assert proc.returncode == 0
    assert "usage: musicnft " + command in proc.stdout
    assert len(proc.stdout.splitlines()) > 3


def test_top_level_help_lists_every_command() -> None:
    text = build_parser().format_help()
    for command in COMMANDS:
        assert command in text


def test_bad_configuration_is_a_clear_error(cli_env: dict[str, str]) -> None:
    env = dict(cli_env, MUSICNFT_STREAM_SHARDS="many")
    proc = subprocess.run(cli("deliver", "--once"), env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "MUSICNFT_STREAM_SHARDS must be an integer, got 'many'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_replay_file_is_a_clear_error(cli_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run(
        cli("produce", "--file", str(tmp_path / "nope.jsonl")),
        env=cli_env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_sql_and_status_on_a_small_run(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "few.jsonl"
    path.write_bytes(b"\n".join([x_line(1), x_line(2), b"{oops", x_line(1)]) + b"\n")
    for args in (("produce", "--file", str(path)), ("deliver", "--once"), ("consume", "--once")):
        subprocess.run(cli(*args), env=cli_env, check=True, capture_output=True)
    proc = subprocess.run(
        cli("sql", "SELECT post_id, sentiment_label FROM posts_hot ORDER BY post_id", "--json"),
        env=cli_env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(proc.stdout)
    assert [r["post_id"] for r in rows] == ["x:1466000000000000001", "x:1466000000000000002"]
    status = json.loads(
        subprocess.run(
            cli("status", "--json"), env=cli_env, capture_output=True, text=True, check=True
        ).stdout
    )
    assert {k: status[k] for k in ("produced", "dead_letter", "stream", "lake", "lake_unique")} == {
        "produced": 3,
        "dead_letter": 1,
        "stream": 3,
        "lake": 3,
        "lake_unique": 2,
    }
    assert (status["posts_hot"], status["posts_hot_unique"]) == (2, 2)
    text = subprocess.run(
        cli("status"), env=cli_env, capture_output=True, text=True, check=True
    ).stdout
    assert "posts_hot rows" in text
    bad = subprocess.run(
        cli("sql", "DROP TABLE posts_hot"), env=cli_env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "only a single SELECT" in bad.stderr


def test_data_dir_flag_reaches_the_consumers_handler(
    cli_env: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    # GIVEN the environment naming one data directory and the flag another
    path = tmp_path / "few.jsonl"
    path.write_bytes(b"\n".join([x_line(1), x_line(2)]) + b"\n")
    other = tmp_path / "other"
    flag = ("--data-dir", str(other))
    # WHEN the stages run with the flag
    for args in (("produce", "--file", str(path)), ("consume", "--once")):
        subprocess.run(cli(*args, *flag), env=cli_env, check=True, capture_output=True)
    # THEN the Lambda handler wrote posts_hot where the flag says, and nothing went elsewhere
    status = json.loads(
        subprocess.run(
            cli("status", "--json", *flag), env=cli_env, capture_output=True, text=True, check=True
        ).stdout
    )
    assert (status["posts_hot"], status["posts_hot_unique"]) == (2, 2)
    assert not data_dir.exists()


def test_bad_log_level_is_a_clear_error(cli_env: dict[str, str]) -> None:
    env = dict(cli_env, MUSICNFT_LOG_LEVEL="chatty")
    proc = subprocess.run(cli("status"), env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "MUSICNFT_LOG_LEVEL must be" in proc.stderr and "Traceback" not in proc.stderr


def test_a_reader_that_stops_early_ends_the_command_quietly_with_141(
    cli_env: dict[str, str],
) -> None:
    # GIVEN a command whose output (1.4 MB) cannot all wait in a pipe (64 KB): `... | head -1`
    proc = subprocess.Popen(
        cli("sql", "SELECT range AS n FROM range(200000)"),
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    # WHEN the reader takes one line and closes the pipe
    assert proc.stdout.readline().strip() == b"n"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    # THEN the command stops as a shell tool killed by SIGPIPE would: status 141, no traceback
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
