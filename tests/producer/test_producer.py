"""The producer: pacing, batching, dead-letters, oversize posts and a graceful stop."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from musicnft.adapters.local_stream import LocalStream, LocalStreamSink
from musicnft.contract.keywords import KeywordMatcher
from musicnft.hotpath.deadletter import DeadLetter, read_entries
from musicnft.settings import DEFAULT_KEYWORDS
from producer.replay import MAX_GAP, Pacer, iter_lines, parse_speed
from producer.runner import Producer
from tests.support.paths import cli
from tests.support.records import x_line


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_parse_speed() -> None:
    assert parse_speed("max") is None
    assert parse_speed("60") == 60.0
    for bad in ("0", "-1", "fast"):
        with pytest.raises(ValueError, match="speed"):
            parse_speed(bad)


def test_pacer_maps_post_time_to_wall_time_and_restamps() -> None:
    clock = FakeClock()
    pacer = Pacer(speed=60, restamp=True, clock=clock)
    t0 = datetime(2021, 12, 1, tzinfo=UTC)
    assert pacer.due_in(t0) == 0
    # One hour of posts (ten minutes apart) at 60x takes one minute.
    for minutes in range(10, 60, 10):
        pacer.due_in(t0 + timedelta(minutes=minutes))
    assert pacer.due_in(t0 + timedelta(hours=1)) == pytest.approx(60)
    clock.now += 60
    assert pacer.due_in(t0 + timedelta(hours=1)) == 0
    stamped = pacer.stamp(t0 + timedelta(hours=1), "x:1")
    assert stamped == datetime.fromtimestamp(clock.now, UTC)
    # A post the source sends again later keeps its first stamp.
    clock.now += 30
    assert pacer.stamp(t0 + timedelta(hours=1), "x:1") == stamped
    assert pacer.stamp(t0 + timedelta(hours=1), "x:2") == datetime.fromtimestamp(clock.now, UTC)
    assert Pacer(speed=None).due_in(t0 + timedelta(days=3)) == 0
    assert Pacer(speed=None).stamp(t0, "x:1") == t0


def test_pacer_never_sleeps_for_an_outlier() -> None:
    # GIVEN a paced replay at 60x whose posts include one stamped 800 years ahead, a first post
    # from 1970, and a jump back in time
    clock = FakeClock()
    t0 = datetime(2021, 12, 1, tzinfo=UTC)
    pacer = Pacer(speed=60, clock=clock)
    assert pacer.due_in(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    # THEN the decades to the next post cost one clamped gap (15 minutes of post time = 15 s)
    assert pacer.due_in(t0) == pytest.approx(MAX_GAP.total_seconds() / 60)
    clock.now += 15
    assert pacer.due_in(t0 + timedelta(minutes=1)) == pytest.approx(1)
    clock.now += 1
    # AND a post from the year 2821 costs at most one clamped gap too
    assert pacer.due_in(t0 + timedelta(days=365 * 800)) <= MAX_GAP.total_seconds() / 60
    clock.now += 15
    # AND the posts after it are paced by their own gaps again (the jump back rebases)
    assert pacer.due_in(t0 + timedelta(minutes=2)) == 0
    assert pacer.due_in(t0 + timedelta(minutes=3)) == pytest.approx(1)
    # AND slightly out-of-order posts go at once
    assert pacer.due_in(t0 + timedelta(minutes=2, seconds=30)) <= 1


def test_iter_lines_reads_plain_and_gzip_and_strips_crlf(tmp_path: Path) -> None:
    import gzip

    (tmp_path / "a.jsonl").write_bytes(b'{"a":1}\r\n\r\n{"b":2}\n')
    with gzip.open(tmp_path / "b.data", "wb") as fh:
        fh.write(b'{"a":1}\n')
    assert list(iter_lines(tmp_path / "a.jsonl")) == [
        ("a.jsonl:1", b'{"a":1}'),
        ("a.jsonl:2", b""),
        ("a.jsonl:3", b'{"b":2}'),
    ]
    assert list(iter_lines(tmp_path / "b.data")) == [("b.data:1", b'{"a":1}')]


def test_batches_dead_letters_and_oversize(tmp_path: Path) -> None:
    stream = LocalStream(tmp_path / "s.sqlite")
    dl = DeadLetter(tmp_path / "dl", "producer")
    producer = Producer(
        LocalStreamSink(stream),
        KeywordMatcher(DEFAULT_KEYWORDS),
        dl,
        batch_records=3,
        max_record_bytes=5000,
    )
    lines = [
        ("f:1", x_line(1)),
        ("f:2", b""),
        ("f:3", b"{broken"),
        ("f:4", x_line(4, text="x" * 6000)),
    ]
    lines += [(f"f:{i}", x_line(i)) for i in range(5, 12)]
    stats = producer.run(iter(lines), Pacer(None))
    assert (stats.produced, stats.dead_letter, stats.keep_alives) == (8, 2, 1)
    assert stats.batches == 3  # 3 + 3 + the final 2
    assert stream.total_appended() == 8
    reasons = {e["ref"]: e["reason"] for e in read_entries(dl.path)}
    assert reasons["f:3"].startswith("invalid JSON")
    assert reasons["f:4"].startswith("record too large")
    (first,) = stream.read(0, 1)
    assert json.loads(first.data)["post_id"] == "x:1466000000000000001"
    assert first.partition_key == "x:1466000000000000001"


def test_stop_flushes_the_open_batch(tmp_path: Path) -> None:
    stream = LocalStream(tmp_path / "s.sqlite")
    stop = threading.Event()
    producer = Producer(
        LocalStreamSink(stream),
        KeywordMatcher(DEFAULT_KEYWORDS),
        DeadLetter(tmp_path / "dl", "producer"),
        batch_records=500,
        linger_seconds=3600,
        stop=stop,
    )

    def lines():
        for i in range(10):
            yield f"f:{i}", x_line(i)
        stop.set()
        yield "f:late", x_line(99)

    stats = producer.run(lines(), Pacer(None))
    assert stats.produced == 10 and stream.total_appended() == 10


class RecordingSink:
    """A sink that records each put, and what the source had been told was durable by then."""

    def __init__(self, acks: list[int]) -> None:
        self.acks = acks
        self.puts: list[tuple[list[str], int]] = []

    def put_records(self, entries: list[tuple[str, bytes]]) -> None:
        self.puts.append(([key for key, _ in entries], self.acks[-1] if self.acks else 0))

    def close(self) -> None:
        return None


def test_on_durable_counts_only_lines_whose_posts_are_put(tmp_path: Path) -> None:
    # GIVEN a producer that tells its source which lines are durable, in batches of 2
    acks: list[int] = []
    dead: list[str] = []
    sink = RecordingSink(acks)
    producer = Producer(
        sink,
        KeywordMatcher(DEFAULT_KEYWORDS),
        DeadLetter(tmp_path / "dl", "producer"),
        batch_records=2,
        linger_seconds=3600,
        on_durable=acks.append,
        on_dead_letter=lambda ref, line: dead.append(ref),
    )
    seen: list[int] = []

    def lines():
        for i, line in enumerate(
            [x_line(1), b"", b"{broken", x_line(4), x_line(5), b"{broken again", x_line(7)], 1
        ):
            seen.append(acks[-1] if acks else 0)
            yield f"f:{i}", line

    # WHEN it runs to the end
    producer.run(lines(), Pacer(None))
    # THEN a line is acknowledged only once it and every line before it is durable: the keep-
    # alive and the broken line after post 1 wait for post 1's batch (put with post 4), the
    # broken line after post 5 for post 5's
    assert seen == [0, 0, 0, 0, 4, 4, 4]
    assert sink.puts == [(["x:1466000000000000001", "x:1466000000000000004"], 0), (
        ["x:1466000000000000005", "x:1466000000000000007"], 4
    )]  # fmt: skip
    assert acks == [3, 4, 6, 7]
    assert dead == ["f:3", "f:6"]


def test_a_linger_flush_during_normalizing_does_not_acknowledge_that_line(
    tmp_path: Path,
) -> None:
    # GIVEN a producer whose batch is flushed (as the linger ticker does) while the next line
    # is still being normalized
    from musicnft.hotpath.normalize_x import normalize_x_line

    acks: list[int] = []
    producer = Producer(
        RecordingSink(acks),
        KeywordMatcher(DEFAULT_KEYWORDS),
        DeadLetter(tmp_path / "dl", "producer"),
        linger_seconds=3600,
        on_durable=acks.append,
    )
    during: list[int] = []

    def normalize(line: bytes, matcher: KeywordMatcher, now: datetime) -> dict:
        post = normalize_x_line(line, matcher, now)
        if post["post_id"].endswith("2"):
            producer.flush()  # post 1 goes out while post 2 is not in the batch yet
            during.append(acks[-1])
        return post

    producer.run(iter([("f:1", x_line(1)), ("f:2", x_line(2))]), Pacer(None), normalize)
    # THEN that flush makes line 1 durable, not line 2 (a kill -9 now would lose it)
    assert during == [1]
    assert acks == [1, 2]


def test_a_post_that_cannot_be_encoded_is_dead_lettered_and_the_source_goes_on(
    tmp_path: Path,
) -> None:
    # GIVEN a normalizer that lets through a post the encoder cannot handle (a bug, say)
    from musicnft.hotpath.normalize_x import normalize_x_line

    def normalize(line: bytes, matcher: KeywordMatcher, now: datetime) -> dict:
        post = normalize_x_line(line, matcher, now)
        if post["post_id"].endswith("1"):
            post["text"] = object()  # not JSON-serializable
        return post

    stream = LocalStream(tmp_path / "s.sqlite")
    dl = DeadLetter(tmp_path / "dl", "producer")
    producer = Producer(LocalStreamSink(stream), KeywordMatcher(DEFAULT_KEYWORDS), dl)
    # WHEN it runs
    stats = producer.run(iter([("f:1", x_line(1)), ("f:2", x_line(2))]), Pacer(None), normalize)
    # THEN that line is dead-lettered with a reason and the next one is produced
    assert (stats.produced, stats.dead_letter) == (1, 1)
    (entry,) = read_entries(dl.path)
    assert entry["ref"] == "f:1" and entry["reason"].startswith("unexpected")


@pytest.mark.slow
def test_sigterm_stops_a_paced_replay_cleanly(tmp_path: Path, cli_env: dict[str, str]) -> None:
    # GIVEN a real-time replay whose posts are an hour apart (it would run for days)
    path = tmp_path / "slow.jsonl"
    path.write_bytes(
        x_line(1, created="2021-12-01T00:00:00Z")
        + b"\n"
        + x_line(2, created="2021-12-01T01:00:00Z")
        + b"\n"
    )
    proc = subprocess.Popen(
        cli("produce", "--file", str(path), "--speed", "1"),
        env=cli_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.5)
    # WHEN it gets SIGTERM
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    # THEN it exits 0 at once (not an hour later), having put on the stream both the post it sent
    # and the one it was holding back for pacing: a post read is never dropped
    assert proc.returncode == 0, err
    assert "SIGTERM received" in err
    with LocalStream(Path(cli_env["MUSICNFT_DATA_DIR"]) / "stream" / "musicnft-posts.sqlite") as s:
        assert s.total_appended() == 2


class SteppingClock:
    """Every reading is `step` seconds after the last: pacing waits end without real sleeps."""

    def __init__(self, step: float) -> None:
        self.now = datetime(2026, 11, 30, tzinfo=UTC).timestamp()
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_paced_post_is_stamped_ingested_when_it_is_due_not_before_its_wait(
    tmp_path: Path,
) -> None:
    # GIVEN a replay at its own pace of three posts one second apart (X's times are whole seconds)
    stream = LocalStream(tmp_path / "s.sqlite")
    clock = SteppingClock(0.01)
    producer = Producer(
        LocalStreamSink(stream),
        KeywordMatcher(DEFAULT_KEYWORDS),
        DeadLetter(tmp_path / "dl", "producer"),
        linger_seconds=0.0,
        clock=clock,
    )
    created = ["2021-12-01T00:00:00.000Z", "2021-12-01T00:00:01.000Z", "2021-12-01T00:00:02.000Z"]
    lines = [(f"f:{i}", x_line(i, created=c)) for i, c in enumerate(created)]
    # WHEN it runs
    stats = producer.run(iter(lines), Pacer(speed=1, clock=clock))
    assert stats.produced == 3, stats
    # THEN each post's ingested_at is when it was emitted, a second after the one before: the
    # pacing wait is not counted as time the post spent in the pipeline
    stamps = [datetime.fromisoformat(json.loads(r.data)["ingested_at"]) for r in stream.read(0, 10)]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    # (within the clock's 0.01 s step, either side: a reading lands on or just past the due time,
    # and microsecond stamps of floats near 1.8e9 can round 0.99 down to 0.989999)
    assert len(stamps) == 3 and all(0.98 <= g < 1.2 for g in gaps), gaps
