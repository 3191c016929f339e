"""The hostile-input corpus (tests/support/hostile.py) through the producer and the whole pipeline.

Rule: no input line can stop a source. Each line is accepted with a sane value or dead-lettered with
a reason naming it, and the line after it is still read.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb
import pytest

from musicnft.adapters.local_stream import LocalStream, LocalStreamSink
from musicnft.contract.keywords import KeywordMatcher
from musicnft.hotpath.deadletter import DeadLetter, read_entries
from musicnft.settings import DEFAULT_KEYWORDS
from producer.replay import Pacer, iter_lines
from producer.runner import Producer
from tests.support import hostile
from tests.support.expectations import expected_from
from tests.support.paths import cli


def test_the_committed_corpus_is_what_the_builder_makes() -> None:
    for name, data in hostile.files().items():
        assert (hostile.CORPUS / name).read_bytes() == data, (
            f"tests/fixtures/hostile/{name} is stale: run `python -m tests.support.hostile`"
        )


@pytest.mark.parametrize("kind", sorted(hostile.KINDS))
def test_each_hostile_line_is_accepted_or_dead_lettered_and_the_source_goes_on(
    kind: str, tmp_path: Path
) -> None:
    # GIVEN one kind's file, every line either a post to keep or one to set aside
    path = hostile.CORPUS / f"{kind}.jsonl.gz"
    expect = (hostile.CORPUS / f"{kind}.expect").read_text().split()
    stream = LocalStream(tmp_path / "s.sqlite")
    dead = DeadLetter(tmp_path / "dl", "producer")
    producer = Producer(LocalStreamSink(stream), KeywordMatcher(DEFAULT_KEYWORDS), dead)
    # WHEN the producer reads it
    stats = producer.run(iter_lines(path), Pacer(None))
    # THEN every line is accounted for, rejected ones with a reason naming them
    refs = [ref for ref, _ in iter_lines(path)]
    assert len(refs) == len(expect)
    reasons = {e["ref"]: e["reason"] for e in read_entries(dead.path)}
    for ref, expectation in zip(refs, expect, strict=True):
        if expectation == hostile.REJECT:
            assert ref in reasons, f"{ref} should have been dead-lettered"
            assert reasons[ref] and not reasons[ref].startswith("unexpected"), reasons[ref]
        else:
            assert ref not in reasons, f"{ref} was dead-lettered: {reasons.get(ref)}"
    assert stats.produced == expect.count(hostile.ACCEPT)
    # AND the sentinel after them all made it onto the stream
    records = stream.read(0, 10_000)
    texts = [json.loads(r.data)["text"] for r in records]
    assert texts[-1] == f"sentinel {kind} #NFT music"


@pytest.mark.slow
def test_the_mixed_corpus_runs_end_to_end_with_nothing_lost(
    tmp_path: Path, cli_env: dict[str, str], data_dir: Path
) -> None:
    # GIVEN sample posts with every hostile line mixed in
    path = hostile.CORPUS / "mixed.jsonl.gz"
    expected = expected_from(path)
    # WHEN the whole embedded pipeline replays it
    result = subprocess.run(
        cli("run", "--fresh", "--file", str(path), "--speed", "max", "--exit-when-done"),
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # THEN the lake and posts_hot hold exactly the valid unique posts
    con = duckdb.connect()
    lake = con.execute(
        "SELECT count(DISTINCT post_id) FROM read_parquet(?)",
        [str(data_dir / "lake" / "raw" / "**" / "*.parquet")],
    ).fetchone()
    assert lake is not None and lake[0] == expected.unique
    hot = subprocess.run(
        cli(
            "sql", "SELECT count(DISTINCT post_id) AS n, count(*) AS rows FROM posts_hot", "--json"
        ),
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert hot.returncode == 0, hot.stderr[-2000:]
    (row,) = json.loads(hot.stdout)
    assert row["n"] == expected.unique
    assert row["rows"] == expected.unique
    # AND every rejected line is in the producer's dead-letter with its reason
    dead = {e["ref"] for e in read_entries(data_dir / "dead_letter" / "producer.jsonl")}
    assert dead == set(expected.rejected)
