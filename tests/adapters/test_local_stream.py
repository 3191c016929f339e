"""The local stream: durable, ordered, one writer and readers in other processes, checkpoints."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from musicnft.adapters.local_stream import LocalStream, shard_for

N_BATCHES = 60
BATCH = 50


def _writer(path: str) -> None:
    stream = LocalStream(Path(path))
    for b in range(N_BATCHES):
        stream.put_records([(f"k{b}-{i}", f"{b * BATCH + i}".encode()) for i in range(BATCH)])
    stream.close()


def _reader(path: str, name: str, out: mp.Queue) -> None:
    """Reads with its own checkpoint until it has everything, committing as it goes."""
    stream = LocalStream(Path(path), readers=(name,))
    seen: list[int] = []
    while len(seen) < N_BATCHES * BATCH:
        records = stream.read(stream.checkpoint(name), 37)
        for r in records:
            seen.append(int(r.data))
        if records:
            stream.commit(name, records[-1].seq)
    out.put((name, seen))
    stream.close()


def test_concurrent_writer_and_readers_in_separate_processes(tmp_path: Path) -> None:
    # GIVEN a stream file shared by one writer process and three reader processes
    path = str(tmp_path / "s.sqlite")
    LocalStream(Path(path), readers=()).close()
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    readers = [ctx.Process(target=_reader, args=(path, f"r{i}", out)) for i in range(3)]
    writer = ctx.Process(target=_writer, args=(path,))
    for p in [*readers, writer]:
        p.start()
    # WHEN they all run at once
    results = dict(out.get(timeout=120) for _ in readers)
    for p in [*readers, writer]:
        p.join(timeout=60)
        assert p.exitcode == 0
    # THEN every reader saw every record exactly once, in arrival order
    expected = list(range(N_BATCHES * BATCH))
    for name, seen in results.items():
        assert seen == expected, name
    stream = LocalStream(Path(path), readers=())
    assert stream.total_appended() == N_BATCHES * BATCH
    assert {stream.checkpoint(f"r{i}") for i in range(3)} == {N_BATCHES * BATCH}


def test_checkpoints_survive_a_restart_and_are_per_reader(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with LocalStream(path) as s:
        seqs = s.put_records([(str(i), b"x%d" % i) for i in range(10)])
        s.commit("delivery", seqs[3])
        s.commit("consumer", seqs[7])
        s.commit("consumer", seqs[1])  # never moves backwards
    with LocalStream(path) as s:
        assert s.checkpoint("delivery") == seqs[3]
        assert s.checkpoint("consumer") == seqs[7]
        assert [r.data for r in s.read(s.checkpoint("delivery"), 100)] == [
            b"x%d" % i for i in range(4, 10)
        ]
        assert s.lag("consumer") == 2
        assert s.checkpoint("unknown-reader") == 0


def test_records_carry_kinesis_like_identity(tmp_path: Path) -> None:
    with LocalStream(tmp_path / "s.sqlite", shards=4) as s:
        s.put_records([("x:1", b"a")])
        (record,) = s.read(0, 1)
    assert record.partition_key == "x:1"
    assert record.sequence_number.isdigit() and len(record.sequence_number) == 21
    assert record.shard == shard_for("x:1", 4)
    assert record.shard_id.startswith("shardId-")
    assert record.arrival > 0


def test_trim_keeps_what_any_registered_reader_has_not_read(tmp_path: Path) -> None:
    with LocalStream(tmp_path / "s.sqlite") as s:
        seqs = s.put_records([(str(i), b"r") for i in range(6)])
        s.commit("delivery", seqs[5])
        s.commit("consumer", seqs[2])
        # Far in the future: everything is past retention, but the consumer has read only 3.
        removed = s.trim(retention_seconds=1, now=10**12)
        assert removed == 3
        assert s.count() == 3
        assert s.total_appended() == 6
        assert [r.seq for r in s.read(s.checkpoint("consumer"), 10)] == seqs[3:]


def _file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def _shrinks_after_a_worked_off_backlog(path: Path) -> tuple[int, int]:
    s = LocalStream(path, shards=2, readers=("delivery", "consumer"))
    payload = b"x" * 2000
    for i in range(0, 6000, 500):
        s.put_records([(f"k{i + j}", payload) for j in range(500)])
    end = s.total_appended()
    for reader in ("delivery", "consumer"):
        s.commit(reader, end)
    s._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    peak = _file_bytes(path)
    # WHEN retention trims what everyone has read
    assert s.trim(0, now=10**10) == 6000
    s._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    after = _file_bytes(path)
    # THEN the stream keeps working
    s.put_records([("again", b"y")])
    assert [r.data for r in s.read(end, 10)] == [b"y"]
    s.close()
    return peak, after


def test_a_trimmed_backlog_gives_the_disk_back(tmp_path: Path) -> None:
    # GIVEN a stream that held a 12 MB backlog, then everyone read it
    peak, after = _shrinks_after_a_worked_off_backlog(tmp_path / "stream.db")
    # THEN the file shrinks to a fraction of its peak instead of staying there for ever
    assert peak > 10_000_000
    assert after < peak / 4


def test_a_stream_file_made_before_auto_vacuum_is_converted_by_its_first_reclaim(
    tmp_path: Path,
) -> None:
    import sqlite3

    def auto_vacuum(path: Path) -> int:
        con = sqlite3.connect(path)
        try:
            return int(con.execute("PRAGMA auto_vacuum").fetchone()[0])
        finally:
            con.close()

    path = tmp_path / "old.db"
    # GIVEN a file created by an older version (no auto_vacuum)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE placeholder(x)")
    con.close()
    assert auto_vacuum(path) == 0
    peak, after = _shrinks_after_a_worked_off_backlog(path)
    assert after < peak / 4
    assert auto_vacuum(path) == 2
