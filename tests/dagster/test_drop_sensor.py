"""The drop sensor as a cursor state machine: the pure selection logic, then the real sensor.

Every sensor test builds a real lake directory (Firehose key layout, Parquet files written with the
post contract) and a real embedded warehouse, calls `lake_drop_sensor` the way Dagster does, and
feeds the cursor it returns into the next tick, so each scenario is a sequence of ticks.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

import musicnft_dagster.sensors.drops as sensor_module
from musicnft.adapters.embedded_warehouse import EmbeddedWarehouse
from musicnft.adapters.local_lake import LocalLake
from musicnft.batch.drops import (
    OVERLAP,
    SWEEP_EVERY,
    DropCursor,
    plan_runs,
    run_key,
    select_new_files,
)
from musicnft.batch.lake_index import FileStats, LakeIndex
from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.lake_layout import error_key, raw_key
from musicnft.contract.schema import POST_SCHEMA, format_timestamp, to_table
from musicnft.contract.windows import KEY_FORMAT, WINDOW, parse_window_key, window_key, window_start
from musicnft.hotpath.normalize_x import normalize_x_message
from musicnft.ports import LakeObject
from musicnft.settings import DEFAULT_KEYWORDS
from musicnft_dagster.jobs import WINDOWS_TAG
from musicnft_dagster.partitions import DAYS, WINDOWS, day_key, windows_from
from musicnft_dagster.resources import EmbeddedWarehouseResource, LocalLakeResource
from musicnft_dagster.sensors.drops import by_day, day_run_key, lake_drop_sensor
from tests.support.records import x_message

MATCHER = KeywordMatcher(DEFAULT_KEYWORDS)
STREAM = "musicnft-posts"
# A quiet hour of the original captures: well inside the partitions, far from "now".
T0 = datetime(2021, 12, 1, 0, 0, tzinfo=UTC)
PARTITIONS_START = parse_window_key("2021-11-01-00:00")
_ids = itertools.count(1)


# ---------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------


def make_post(created: datetime) -> dict:
    """A normalized post (the delivery's row) created at `created`, with a fresh post id."""
    msg = x_message(next(_ids), created=format_timestamp(created))
    return normalize_x_message(msg, MATCHER, created + timedelta(seconds=2))


def parquet_bytes(rows: list[dict]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(to_table(rows, POST_SCHEMA), buf)
    return buf.getvalue()


def wk(minutes: int, base: datetime = T0) -> str:
    """The window key of `base + minutes`."""
    return window_key(base + timedelta(minutes=minutes))


@dataclass
class Env:
    lake_root: Path
    wh_root: Path

    @property
    def lake(self) -> LocalLake:
        return LocalLake(self.lake_root)

    def resources(self) -> dict[str, object]:
        return {
            "lake": LocalLakeResource(root=str(self.lake_root)),
            "warehouse": EmbeddedWarehouseResource(root=str(self.wh_root)),
        }

    def put(self, key: str, data: bytes, modified: datetime) -> str:
        self.lake.put(key, data)
        t = modified.timestamp()
        os.utime(self.lake_root / key, (t, t))
        return key

    def drop(
        self,
        created: Iterable[datetime],
        arrival: datetime,
        modified: datetime | None = None,
        folder_hour: datetime | None = None,
    ) -> str:
        """A Parquet drop of posts created at `created`, keyed under the hour of `folder_hour`
        (default: `arrival`), last modified at `modified` (default: arrival + 30 s)."""
        rows = [make_post(c) for c in created]
        key = raw_key(STREAM, folder_hour or arrival)
        return self.put(key, parquet_bytes(rows), modified or arrival + timedelta(seconds=30))

    def indexed_keys(self, distinct: bool = False) -> list[str]:
        """Keys in `lake_files`, one per row (readers use DISTINCT, so a repeat is harmless)."""
        wh = EmbeddedWarehouse(self.wh_root)
        sql = "SELECT DISTINCT key FROM lake_files" if distinct else "SELECT key FROM lake_files"
        return sorted(wh.query(sql).column(0).to_pylist())


@pytest.fixture
def env(tmp_path: Path) -> Env:
    (tmp_path / "lake").mkdir()
    return Env(tmp_path / "lake", tmp_path / "warehouse")


@dataclass
class Tick:
    result: dg.SensorResult | dg.SkipReason
    cursor: str | None  # what Dagster stores after this tick (a SkipReason keeps the old one)

    @property
    def requests(self) -> list[dg.RunRequest]:
        if isinstance(self.result, dg.SensorResult):
            return list(self.result.run_requests or [])
        return []

    @property
    def partitions(self) -> list[str]:
        """The 15-minute windows requested (each run names its day's windows in a tag)."""
        return sorted(w for r in self.requests for w in r.tags[WINDOWS_TAG].split(","))

    @property
    def days(self) -> list[str]:
        return sorted(str(r.partition_key) for r in self.requests)

    @property
    def run_keys(self) -> dict[str, str]:
        return {str(r.partition_key): str(r.run_key) for r in self.requests}

    @property
    def skipped(self) -> bool:
        if isinstance(self.result, dg.SkipReason):
            return True
        return not self.requests and self.result.skip_reason is not None

    @property
    def skip_message(self) -> str:
        if isinstance(self.result, dg.SkipReason):
            return self.result.skip_message or ""
        assert self.result.skip_reason is not None
        return self.result.skip_reason.skip_message or ""

    @property
    def state(self) -> DropCursor:
        return DropCursor.from_json(self.cursor)


def day_keys(windows: dict[str, list[str]]) -> dict[str, str]:
    """The run keys of the day runs for these windows (window key → its new files)."""
    return {day: day_run_key(day, ws) for day, ws in by_day(windows).items()}


def tick(env: Env, cursor: str | None, instance: dg.DagsterInstance | None = None) -> Tick:
    """One sensor evaluation with a fresh context, as a daemon tick (or a restart) makes it."""
    context = dg.build_sensor_context(
        cursor=cursor,
        resources=env.resources(),
        instance=instance or dg.DagsterInstance.ephemeral(),
    )
    result = lake_drop_sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason), result
    new_cursor = cursor
    if isinstance(result, dg.SensorResult) and result.cursor is not None:
        new_cursor = result.cursor
    return Tick(result, new_cursor)


def mtime(env: Env, key: str) -> datetime:
    return datetime.fromtimestamp((env.lake_root / key).stat().st_mtime, UTC)


# ---------------------------------------------------------------------------------------------
# (a) Pure logic: cursor (de)serialization, file selection, run planning, run keys
# ---------------------------------------------------------------------------------------------


def test_cursor_round_trips_through_json() -> None:
    # GIVEN a cursor with every part filled, including microseconds in the watermark
    cursor = DropCursor(
        watermark=datetime(2021, 12, 1, 0, 7, 30, 123457, tzinfo=UTC),
        recent={"raw/2021/12/01/00/a.parquet": 1638317250.123457, "raw/b.parquet": 1638317000.0},
        pending={"2099-01-01-00:00": ["raw/2021/12/01/00/a.parquet"]},
    )
    # WHEN it is saved and read back
    raw = cursor.to_json()
    back = DropCursor.from_json(raw)
    # THEN nothing is lost, and saving again gives the same string (stable cursor)
    assert back == cursor
    assert back.to_json() == raw
    assert back.watermark is not None and back.watermark.tzinfo is not None


@pytest.mark.parametrize("raw", [None, ""])
def test_no_cursor_is_the_empty_cursor(raw: str | None) -> None:
    cursor = DropCursor.from_json(raw)
    assert cursor == DropCursor()
    assert cursor.list_from_hour() is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("not json", id="not-json"),
        pytest.param("[]", id="a-list"),
        pytest.param("42", id="a-number"),
        pytest.param("null", id="null"),
        pytest.param('"cursor"', id="a-string"),
        pytest.param('{"watermark": null, "recent": {}, "pending": {}}', id="no-version"),
        pytest.param('{"v": 2, "watermark": null, "recent": {}, "pending": {}}', id="version-2"),
        pytest.param('{"v": 1}', id="missing-fields"),
        pytest.param(
            '{"v": 1, "watermark": "yesterday", "recent": {}, "pending": {}}', id="wm-str"
        ),
        pytest.param('{"v": 1, "watermark": NaN, "recent": {}, "pending": {}}', id="wm-nan"),
        pytest.param('{"v": 1, "watermark": 1e20, "recent": {}, "pending": {}}', id="wm-huge"),
        pytest.param('{"v": 1, "watermark": null, "recent": [], "pending": {}}', id="recent-list"),
        pytest.param(
            '{"v": 1, "watermark": null, "recent": {"k": "soon"}, "pending": {}}', id="recent-str"
        ),
        pytest.param(
            '{"v": 1, "watermark": null, "recent": {}, "pending": {"w": 5}}', id="pending-int"
        ),
        pytest.param(
            '{"v": 1, "watermark": null, "recent": {}, "pending": {"w": "raw/x.parquet"}}',
            id="pending-str",
        ),
    ],
)
def test_garbage_cursors_are_rejected_with_value_error(raw: str) -> None:
    # GIVEN a cursor this sensor never wrote; WHEN parsed; THEN ValueError, never a guess
    with pytest.raises(ValueError, match="drop-sensor cursor"):
        DropCursor.from_json(raw)


def obj(key: str, at: datetime, size: int = 100) -> LakeObject:
    return LakeObject(key, size, at)


def test_select_takes_new_parquet_files_oldest_first_bounded() -> None:
    # GIVEN a first listing in no particular order, with a non-Parquet object
    listing = [
        obj("raw/c.parquet", T0 + timedelta(minutes=3)),
        obj("raw/a.parquet", T0 + timedelta(minutes=1)),
        obj("raw/notes.txt", T0),
        obj("raw/b2.parquet", T0 + timedelta(minutes=2)),
        obj("raw/b1.parquet", T0 + timedelta(minutes=2)),
    ]
    # WHEN at most 3 are taken
    take, cursor, more = select_new_files(DropCursor(), listing, max_files=3)
    # THEN oldest first, ties by key; the rest waits; the watermark is the newest taken
    assert [o.key for o in take] == ["raw/a.parquet", "raw/b1.parquet", "raw/b2.parquet"]
    assert more is True
    assert cursor.watermark == T0 + timedelta(minutes=2)
    assert set(cursor.recent) == {"raw/a.parquet", "raw/b1.parquet", "raw/b2.parquet"}
    # WHEN the next tick sees the same listing
    take2, cursor2, more2 = select_new_files(cursor, listing, max_files=3)
    # THEN exactly the remaining file, and nothing more is waiting
    assert [o.key for o in take2] == ["raw/c.parquet"]
    assert more2 is False
    assert cursor2.watermark == T0 + timedelta(minutes=3)
    # AND a third tick has nothing and returns the cursor unchanged
    take3, cursor3, more3 = select_new_files(cursor2, listing, max_files=3)
    assert (take3, more3) == ([], False)
    assert cursor3 == cursor2


def test_select_takes_a_late_upload_within_overlap_once_and_prunes_old_keys() -> None:
    wm = T0 + timedelta(hours=1)
    cursor = DropCursor(wm, {"raw/seen.parquet": wm.timestamp()})
    listing = [
        obj("raw/seen.parquet", wm),
        obj("raw/late.parquet", wm - OVERLAP + timedelta(seconds=1)),  # just within the overlap
        obj("raw/older.parquet", wm - OVERLAP - timedelta(seconds=1)),  # before the floor
    ]
    take, after, _ = select_new_files(cursor, listing, 10)
    # THEN the unseen file within the overlap is taken; the watermark never moves back
    assert [o.key for o in take] == ["raw/late.parquet"]
    assert after.watermark == wm
    assert set(after.recent) == {"raw/seen.parquet", "raw/late.parquet"}
    assert select_new_files(after, listing, 10)[0] == []
    # WHEN a much newer file arrives, THEN keys older than the new overlap are forgotten
    # (they are below the floor, so they cannot be taken again)
    newer = [*listing, obj("raw/new.parquet", wm + timedelta(minutes=30))]
    take2, after2, _ = select_new_files(after, newer, 10)
    assert [o.key for o in take2] == ["raw/new.parquet"]
    assert after2.watermark == wm + timedelta(minutes=30)
    assert set(after2.recent) == {"raw/new.parquet"}
    assert select_new_files(after2, newer, 10)[0] == []


def test_select_keeps_pending_windows_in_the_cursor() -> None:
    cursor = DropCursor(T0, {}, {"2099-01-01-00:00": ["raw/f.parquet"]})
    _, after, _ = select_new_files(cursor, [obj("raw/g.parquet", T0 + WINDOW)], 10)
    assert after.pending == {"2099-01-01-00:00": ["raw/f.parquet"]}


def stats(key: str, lo: datetime | None, hi: datetime | None, rows: int = 1) -> FileStats:
    return FileStats(key, lo, hi, rows, 100, T0)


def test_plan_runs_groups_files_by_touched_windows() -> None:
    last = T0 + timedelta(hours=1)
    plan = plan_runs(
        [
            stats("a", T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)),
            stats("b", T0 + timedelta(minutes=14, seconds=59), T0 + timedelta(minutes=15)),
            stats("c", T0 + timedelta(minutes=5), T0 + timedelta(minutes=35)),  # range: 3 windows
            stats("empty", None, None, rows=0),
            stats(
                "old", PARTITIONS_START - timedelta(days=2), PARTITIONS_START - timedelta(days=1)
            ),
            stats("across", PARTITIONS_START - timedelta(minutes=5), PARTITIONS_START),
            stats("future", last + WINDOW, last + 2 * WINDOW),
            stats("edge", last, last + timedelta(minutes=14)),  # the last partition itself
        ],
        first_window=PARTITIONS_START,
        last_window=last,
        pending={wk(0): ["p"], window_key(last + 5 * WINDOW): ["q"]},
    )
    assert plan.runs == {
        window_key(PARTITIONS_START): ["across"],
        wk(0): ["a", "b", "c", "p"],
        wk(15): ["b", "c"],
        wk(30): ["c"],
        window_key(last): ["edge"],
    }
    assert plan.before_start == 2  # "old" wholly, "across" partly
    assert plan.future == {
        window_key(last + WINDOW): ["future"],
        window_key(last + 2 * WINDOW): ["future"],
        window_key(last + 5 * WINDOW): ["q"],
    }


def test_run_key_is_deterministic_and_specific() -> None:
    key = run_key("2021-12-01-00:15", ["raw/b.parquet", "raw/a.parquet"])
    assert key == run_key("2021-12-01-00:15", ["raw/a.parquet", "raw/b.parquet"])
    assert key.startswith("drops:2021-12-01-00:15:")
    assert key != run_key("2021-12-01-00:30", ["raw/a.parquet", "raw/b.parquet"])
    assert key != run_key("2021-12-01-00:15", ["raw/a.parquet"])
    assert key != run_key("2021-12-01-00:15", ["raw/a.parquet", "raw/b.parquet", "raw/c.parquet"])


# ---------------------------------------------------------------------------------------------
# (b) The real sensor, tick after tick
# ---------------------------------------------------------------------------------------------


def test_empty_lake_skips_and_says_why(env: Env) -> None:
    # GIVEN a lake with no raw/ folder at all
    first = tick(env, None)
    assert isinstance(first.result, dg.SkipReason)
    assert "no new Parquet drops" in first.skip_message
    assert first.cursor is None
    # GIVEN an empty raw/ folder and only an errors/ object
    (env.lake_root / "raw").mkdir()
    env.put(error_key(STREAM, T0), b'{"rawData": "..."}', T0)
    second = tick(env, None)
    assert isinstance(second.result, dg.SkipReason)
    assert "no new Parquet drops under raw/" in second.skip_message
    assert not env.wh_root.joinpath("lake_files").exists() or env.indexed_keys() == []


def test_new_files_request_one_run_per_touched_window(env: Env) -> None:
    # GIVEN three drops: two touch 00:00, one touches 00:15 (00:30 is touched by none)
    a = env.drop([T0 + timedelta(minutes=1), T0 + timedelta(minutes=4)], T0 + timedelta(minutes=5))
    b = env.drop([T0 + timedelta(minutes=9)], T0 + timedelta(minutes=10))
    c = env.drop([T0 + timedelta(minutes=16)], T0 + timedelta(minutes=17))
    # WHEN the sensor ticks for the first time
    t = tick(env, None)
    # THEN one run for their day, naming the touched windows, keyed by windows + new files
    assert t.partitions == [wk(0), wk(15)]
    assert t.run_keys == day_keys({wk(0): [a, b], wk(15): [c]})
    [request] = t.requests
    assert request.partition_key == "2021-12-01"
    assert request.tags[WINDOWS_TAG] == f"{wk(0)},{wk(15)}"
    assert request.tags["musicnft/trigger"] == "drop"
    assert request.tags["musicnft/new_files"] == "3"
    # (the key still tells the windows' files apart)
    assert t.run_keys != day_keys({wk(0): [a], wk(15): [b, c]})
    # AND the cursor's watermark is the newest file's time; it remembers the files within
    # OVERLAP of it (older ones are below the floor and cannot be taken again)
    state = t.state
    assert state.watermark == mtime(env, c)
    assert set(state.recent) == {k for k in (a, b, c) if mtime(env, k) >= state.watermark - OVERLAP}
    assert set(state.recent) == {b, c}
    assert state.pending == {}
    assert tick(env, t.cursor).skipped


def test_a_file_spanning_two_windows_requests_both(env: Env) -> None:
    key = env.drop(
        [T0 + timedelta(minutes=14, seconds=59), T0 + timedelta(minutes=15)],
        T0 + timedelta(minutes=16),
    )
    t = tick(env, None)
    assert t.partitions == [wk(0), wk(15)]
    assert t.run_keys == day_keys({wk(0): [key], wk(15): [key]})
    assert t.run_keys != day_keys({wk(0): [key]})


def test_repeated_tick_without_new_files_skips_and_keeps_the_cursor(env: Env) -> None:
    env.drop([T0 + timedelta(minutes=1)], T0 + timedelta(minutes=2))
    first = tick(env, None)
    assert first.partitions == [wk(0)]
    # WHEN the sensor ticks again (and again) with nothing new
    for _ in range(2):
        again = tick(env, first.cursor)
        # THEN it skips, says why, and leaves the cursor as it was
        assert isinstance(again.result, dg.SkipReason)
        assert "no new Parquet drops" in again.skip_message
        assert again.cursor == first.cursor
    assert env.indexed_keys() == sorted(DropCursor.from_json(first.cursor).recent)


def test_restart_from_the_saved_cursor_does_not_request_old_files(env: Env) -> None:
    old = env.drop([T0 + timedelta(minutes=1)], T0 + timedelta(minutes=2))
    first = tick(env, None)
    saved = first.cursor
    assert saved is not None
    # GIVEN a restart (new context, the cursor string read back) and one new drop meanwhile
    new = env.drop([T0 + timedelta(minutes=20)], T0 + timedelta(minutes=21))
    after_restart = tick(env, str(saved))
    # THEN only the new file's window is requested
    assert after_restart.partitions == [wk(15)]
    assert after_restart.run_keys == day_keys({wk(15): [new]})
    # AND a tick lost before its cursor was saved repeats with the same run keys (Dagster
    # dedupes them), so a crash between evaluating and saving never runs work twice
    assert tick(env, str(saved)).run_keys == after_restart.run_keys
    # AND the lake index knows both files (the repeated tick may record `new` again)
    assert env.indexed_keys(distinct=True) == sorted([old, new])
    assert env.indexed_keys().count(old) == 1


def test_late_file_in_an_old_hour_folder_is_picked_up(env: Env) -> None:
    # GIVEN a tick that has seen drops up to 05:00
    env.drop([T0 + timedelta(hours=5)], T0 + timedelta(hours=5, minutes=1))
    first = tick(env, None)
    wm = first.state.watermark
    assert wm is not None
    # WHEN a Firehose retry lands hours late in the 01:00 folder (posts from 01:20)
    late = env.drop(
        [T0 + timedelta(hours=1, minutes=20)],
        arrival=T0 + timedelta(hours=1, minutes=21),
        modified=wm + timedelta(minutes=3),
    )
    assert late.startswith("raw/2021/12/01/01/")
    second = tick(env, first.cursor)
    # THEN its window is requested and the watermark moves to its last_modified
    assert second.partitions == [wk(80)]
    assert second.run_keys == day_keys({wk(80): [late]})
    assert second.state.watermark == mtime(env, late)
    assert tick(env, second.cursor).skipped


def test_file_slightly_older_than_the_watermark_is_picked_up_once(env: Env) -> None:
    first_key = env.drop([T0 + timedelta(minutes=1)], T0 + timedelta(minutes=2))
    first = tick(env, None)
    wm = first.state.watermark
    assert wm == mtime(env, first_key)
    # GIVEN an upload that finished out of order: modified 5 minutes before the watermark
    slow = env.drop(
        [T0 + timedelta(minutes=31)], T0 + timedelta(minutes=32), modified=wm - OVERLAP / 2
    )
    # WHEN the sensor ticks
    second = tick(env, first.cursor)
    # THEN it is picked up, the watermark does not go back, and both keys are remembered
    assert second.partitions == [wk(30)]
    assert second.run_keys == day_keys({wk(30): [slow]})
    assert second.state.watermark == wm
    assert {first_key, slow} <= set(second.state.recent)
    # AND never again: not on the next tick, nor after the watermark moves far ahead
    assert tick(env, second.cursor).skipped
    newer = env.drop([T0 + timedelta(minutes=50)], T0 + timedelta(hours=2))
    third = tick(env, second.cursor)
    assert third.partitions == [wk(45)]
    assert third.run_keys == day_keys({wk(45): [newer]})
    assert slow not in third.state.recent  # forgotten, and below the floor
    assert tick(env, third.cursor).skipped


def test_backlog_beyond_the_per_tick_bound_is_worked_off_without_loss(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sensor_module, "MAX_FILES_PER_TICK", 3)
    # GIVEN 8 drops, each for its own window; drops 2-4 share one last_modified (a tie that
    # the first tick's bound cuts through), and the groups lie further apart than OVERLAP
    minutes = [60, 61, 180, 180, 180, 245, 246, 247]
    keys: dict[str, str] = {}
    for i, m in enumerate(minutes):
        created = T0 + timedelta(minutes=15 * i + 1)
        modified = T0 + timedelta(minutes=m)
        keys[window_key(created)] = env.drop([created], T0 + timedelta(hours=1), modified)
    # WHEN the sensor ticks until it has nothing left
    cursor: str | None = None
    seen: list[str] = []
    per_tick: list[int] = []
    for _ in range(10):
        t = tick(env, cursor)
        if t.skipped:
            break
        per_tick.append(len(t.partitions))
        seen += t.partitions
        assert t.run_keys == day_keys({w: [keys[w]] for w in t.partitions})
        cursor = t.cursor
    # THEN three ticks of at most 3 files, every window once, none lost or repeated
    assert per_tick == [3, 3, 2]
    assert sorted(seen) == sorted(keys)
    assert len(seen) == len(set(seen))
    assert env.indexed_keys() == sorted(keys.values())


def windows_until(end: str | None, end_offset: int = 0) -> dg.TimeWindowPartitionsDefinition:
    """The production partitions, but ending at `end` (a fixed "now" for the sensor) or
    reaching `end_offset` windows past now (a clock that has moved on)."""
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="*/15 * * * *",
        start=WINDOWS.start.strftime(KEY_FORMAT),
        end=end,
        fmt=KEY_FORMAT,
        timezone="UTC",
        end_offset=end_offset,
    )


def test_future_posts_wait_in_pending_until_their_window_exists(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    last = parse_window_key(str(WINDOWS.get_last_partition_key()))
    now = datetime.now(UTC)
    assert last <= now < last + 2 * WINDOW  # end_offset=1: the window in progress is the last
    future = last + 8 * WINDOW  # two hours past the window in progress (clock skew)
    # GIVEN a drop whose posts are stamped two hours ahead
    key = env.drop([future + timedelta(minutes=1), future + timedelta(minutes=2)], now, now)
    # WHEN the sensor ticks (with the real partitions)
    first = tick(env, None)
    # THEN nothing is requested (and nothing crashes): the window waits in the cursor
    assert first.requests == []
    assert "future: 1" in first.skip_message
    assert first.state.pending == {window_key(future): [key]}
    assert first.state.watermark == mtime(env, key)
    # AND a tick with nothing new keeps waiting, with a reason, the cursor intact
    second = tick(env, first.cursor)
    assert second.requests == []
    assert "future: 1" in second.skip_message
    assert second.state == first.state
    # WHEN time passes (the partitions now reach past the future window)
    monkeypatch.setattr(sensor_module, "WINDOWS", windows_until(None, end_offset=12))
    third = tick(env, second.cursor)
    # THEN the waiting window is requested, keyed by its file, and leaves pending
    assert third.partitions == [window_key(future)]
    assert third.run_keys == day_keys({window_key(future): [key]})
    assert third.state.pending == {}
    assert tick(env, third.cursor).skipped


def test_a_drop_reaching_past_the_last_partition_runs_the_present_and_waits_for_the_rest(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN partitions that end at 02:00 (the last one is 01:45) and a drop with posts at
    # 01:50 and 02:20 (a producer whose clock runs 20 minutes ahead)
    monkeypatch.setattr(sensor_module, "WINDOWS", windows_until("2021-12-01-02:00"))
    skewed = env.drop(
        [T0 + timedelta(hours=1, minutes=50), T0 + timedelta(hours=2, minutes=20)],
        T0 + timedelta(hours=1, minutes=51),
    )
    first = tick(env, None)
    assert first.run_keys == day_keys({wk(105): [skewed]})
    assert first.state.pending == {wk(120): [skewed], wk(135): [skewed]}
    # WHEN the clock reaches 02:30 and another drop touching 02:00 lands
    monkeypatch.setattr(sensor_module, "WINDOWS", windows_until("2021-12-01-02:30"))
    other = env.drop([T0 + timedelta(hours=2, minutes=5)], T0 + timedelta(hours=2, minutes=6))
    second = tick(env, first.cursor)
    # THEN 02:00 runs with both files and 02:15 with the waiting one; nothing waits any more
    assert second.run_keys == day_keys(
        {
            wk(120): [skewed, other],
            wk(135): [skewed],
        }
    )
    assert second.state.pending == {}
    assert tick(env, second.cursor).skipped


def test_partitions_starting_in_the_future_fail_the_tick_with_a_reason(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN partitions that start in the future (MUSICNFT_PARTITIONS_START ahead of the clock):
    # not one window exists, so there is no last window to plan runs against
    monkeypatch.setattr(sensor_module, "WINDOWS", windows_from("2999-01-01-00:00"))
    env.drop([T0], T0)
    # WHEN the sensor ticks, THEN it fails saying why (not with a TypeError from deep inside)
    with pytest.raises(ValueError, match="no window partition exists yet"):
        tick(env, None)


def test_posts_before_the_partitions_start_are_counted_not_requested(env: Env) -> None:
    before = PARTITIONS_START - timedelta(days=1)
    # GIVEN a drop holding only posts from before the partitions start
    old = env.drop([before, before + timedelta(minutes=3)], T0)
    first = tick(env, None)
    # THEN no run, the reason says how many, and the file is not read again
    assert first.requests == []
    assert "before start: 1" in first.skip_message
    assert old in first.state.recent
    assert tick(env, first.cursor).skipped and tick(env, first.cursor).requests == []
    # GIVEN a drop straddling the start: only the first partition is requested
    across = env.drop(
        [PARTITIONS_START - timedelta(minutes=5), PARTITIONS_START + timedelta(minutes=5)],
        T0 + timedelta(minutes=5),
    )
    second = tick(env, first.cursor)
    assert second.partitions == [window_key(PARTITIONS_START)]
    assert second.run_keys == day_keys({window_key(PARTITIONS_START): [across]})


def test_files_under_errors_produce_no_runs(env: Env) -> None:
    # GIVEN a conversion-failure object (even one that looks like a Parquet drop) and a raw drop
    env.put(error_key(STREAM, T0), b"not a post", T0 + timedelta(minutes=1))
    errors_parquet = "errors/format-conversion-failed/2021/12/01/00/x.parquet"
    env.put(errors_parquet, parquet_bytes([make_post(T0 + timedelta(minutes=40))]), T0)
    good = env.drop([T0 + timedelta(minutes=3)], T0 + timedelta(minutes=4))
    t = tick(env, None)
    # THEN only the raw drop's window runs, and only it is indexed or remembered
    assert t.partitions == [wk(0)]
    assert t.run_keys == day_keys({wk(0): [good]})
    assert set(t.state.recent) == {good}
    assert env.indexed_keys() == [good]


def test_new_files_are_recorded_in_the_lake_index(env: Env) -> None:
    a = env.drop(
        [T0 + timedelta(minutes=1), T0 + timedelta(minutes=20)], T0 + timedelta(minutes=21)
    )
    b = env.drop([T0 + timedelta(minutes=31)], T0 + timedelta(minutes=32))
    t = tick(env, None)
    assert t.partitions == [wk(0), wk(15), wk(30)]
    # THEN each window finds exactly the files touching it
    index = LakeIndex(EmbeddedWarehouse(env.wh_root))
    assert index.files_for_window(T0) == [a]
    assert index.files_for_window(T0 + WINDOW) == [a]
    assert index.files_for_window(T0 + 2 * WINDOW) == [b]
    assert index.files_for_window(T0 + 3 * WINDOW) == []
    # AND the recorded footer stats are the files' true created_at range and row count
    rows = {
        r["key"]: r
        for r in EmbeddedWarehouse(env.wh_root).query("SELECT * FROM lake_files").to_pylist()
    }
    assert rows[a]["min_created_at"] == T0 + timedelta(minutes=1)
    assert rows[a]["max_created_at"] == T0 + timedelta(minutes=20)
    assert rows[a]["row_count"] == 2
    assert rows[b]["row_count"] == 1
    assert rows[a]["size_bytes"] == (env.lake_root / a).stat().st_size
    assert rows[a]["last_modified"] == mtime(env, a)
    # AND a repeated tick records nothing twice
    tick(env, t.cursor)
    assert env.indexed_keys() == sorted([a, b])


def test_a_corrupt_parquet_file_is_skipped_and_the_others_processed(env: Env) -> None:
    good1 = env.drop([T0 + timedelta(minutes=1)], T0 + timedelta(minutes=2))
    whole = parquet_bytes([make_post(T0 + timedelta(minutes=20))])
    env.put(
        raw_key(STREAM, T0 + timedelta(minutes=3)),
        whole[: len(whole) // 2],
        T0 + timedelta(minutes=3),
    )
    env.put(raw_key(STREAM, T0 + timedelta(minutes=4)), b"\x00" * 64, T0 + timedelta(minutes=4))
    good2 = env.drop([T0 + timedelta(minutes=35)], T0 + timedelta(minutes=36))
    # WHEN the sensor ticks
    t = tick(env, None)
    # THEN the readable drops' windows run, the broken ones are neither indexed nor retried
    assert t.partitions == [wk(0), wk(30)]
    assert t.run_keys == day_keys({wk(0): [good1], wk(30): [good2]})
    assert env.indexed_keys() == sorted([good1, good2])
    assert tick(env, t.cursor).skipped
    # AND a broken drop that is the newest file does not block later ones either
    last_bad = env.put(
        raw_key(STREAM, T0 + timedelta(hours=1)), b"PAR1 truncated", T0 + timedelta(hours=1)
    )
    t2 = tick(env, t.cursor)
    assert t2.requests == [] and last_bad in t2.state.recent
    good3 = env.drop([T0 + timedelta(minutes=50)], T0 + timedelta(hours=1, minutes=1))
    t3 = tick(env, t2.cursor)
    assert t3.run_keys == day_keys({wk(45): [good3]})
    assert tick(env, t3.cursor).skipped


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param('{"v": 99}', id="other-version"),
        pytest.param("garbage", id="not-json"),
        pytest.param('{"v": 1, "watermark": 1e20, "recent": {}, "pending": {}}', id="wm-huge"),
    ],
)
def test_an_unreadable_cursor_rescans_the_lake(env: Env, stored: str) -> None:
    a = env.drop([T0 + timedelta(minutes=1)], T0 + timedelta(minutes=2))
    first = tick(env, None)
    # WHEN the stored cursor is not ours, THEN the sensor starts over (same run keys: deduped)
    # instead of failing every tick
    again = tick(env, stored)
    assert again.run_keys == first.run_keys == day_keys({wk(0): [a]})
    assert replace(again.state, swept_at=None) == replace(first.state, swept_at=None)


def test_requested_partition_keys_are_real_partitions(env: Env) -> None:
    env.drop([T0 + timedelta(minutes=m) for m in (0, 15, 29, 59)], T0 + timedelta(hours=1))
    t = tick(env, None)
    assert t.partitions == [wk(0), wk(15), wk(30), wk(45)]
    assert t.days == [day_key(T0)]
    for day in t.days:
        assert DAYS.has_partition_key(day)
    for key in t.partitions:
        assert WINDOWS.has_partition_key(key)
        assert parse_window_key(key) == window_start(parse_window_key(key))


def test_a_file_mixing_old_and_far_future_posts_requests_only_their_windows(env: Env) -> None:
    # GIVEN one drop holding a replayed 2021 post, a post from now, and one stamped a year ahead
    now = window_start(datetime.now(UTC))
    far = now + timedelta(days=365)
    key = env.drop(
        [T0 + timedelta(minutes=2), now + timedelta(minutes=1), far], T0 + timedelta(minutes=5)
    )
    # WHEN the sensor ticks
    t = tick(env, None)
    # THEN it requests just the windows that hold posts (not the ~175,000 between min and max)
    assert t.partitions == [wk(0), window_key(now)]
    # AND the far-future post waits as one pending window, not a year of them
    assert t.state.pending == {window_key(far): [key]}


def test_windows_a_backfill_rebuilt_with_their_files_are_not_run_again(env: Env) -> None:
    from musicnft.batch.backfill import index_lake
    from musicnft_dagster.assets.windows import WINDOW_ASSETS
    from musicnft_dagster.jobs import RANGE_TAG
    from musicnft_dagster.resources import PipelineResource
    from musicnft_dagster.windows import range_tag

    instance = dg.DagsterInstance.ephemeral()
    # GIVEN drops for 00:00 and 00:30 that a backfill indexed, then a run (a backfill's,
    # narrowed to [00:00, 00:30)) that rebuilt 00:00 and 00:15 after that
    env.drop([T0 + timedelta(minutes=1)], T0 + timedelta(minutes=2))
    b = env.drop([T0 + timedelta(minutes=31)], T0 + timedelta(minutes=32))
    assert index_lake(env.lake, EmbeddedWarehouse(env.wh_root)) == 2
    run = dg.materialize(
        WINDOW_ASSETS,
        partition_key=day_key(T0),
        tags={RANGE_TAG: range_tag(T0, T0 + timedelta(minutes=30))},
        instance=instance,
        resources={**env.resources(), "pipeline": PipelineResource()},
    )
    assert run.success
    # WHEN the sensor first sees those files (a new instance's sensor, or a cursor left behind)
    t = tick(env, None, instance)
    # THEN it runs only the window no run rebuilt with its files
    assert t.partitions == [wk(30)]
    assert t.run_keys == day_keys({wk(30): [b]})
    assert t.state.watermark == mtime(env, b)
    # AND a file landing later for a rebuilt window is run as usual
    c = env.drop([T0 + timedelta(minutes=3)], T0 + timedelta(hours=1))
    later = tick(env, t.cursor, instance)
    assert later.run_keys == day_keys({wk(0): [c]})


# ---------------------------------------------------------------------------------------------
# (d) Files the hour listing cannot see: the periodic full sweep, future stamps, bad footers
# ---------------------------------------------------------------------------------------------


def _sweep_due(cursor: str | None) -> str:
    """The same cursor, its last full sweep more than SWEEP_EVERY ago."""
    state = DropCursor.from_json(cursor)
    state.swept_at = datetime.now(UTC) - SWEEP_EVERY - timedelta(seconds=1)
    return state.to_json()


def test_a_file_delivered_beyond_the_lookback_is_found_by_the_full_sweep(env: Env) -> None:
    # GIVEN a sensor whose watermark is 3 days past T0
    now_ish = T0 + timedelta(days=3)
    env.drop([now_ish], now_ish + timedelta(minutes=1))
    first = tick(env, None)
    # WHEN a backlog lands in T0's hour folder with an old last_modified (restored from a
    # backup, a Firehose retry beyond 48 h): the hour listing never looks there again
    late = env.drop([T0 + timedelta(minutes=5)], T0 + timedelta(minutes=6))
    assert tick(env, first.cursor).skipped
    # THEN the next full sweep takes it, once
    swept = tick(env, _sweep_due(first.cursor))
    assert swept.run_keys == day_keys({wk(0): [late]})
    assert late in env.indexed_keys()
    assert swept.state.swept_at is not None and not swept.state.sweep_due(datetime.now(UTC))
    assert tick(env, _sweep_due(swept.cursor)).skipped


def test_a_file_stamped_in_the_future_does_not_hide_the_files_after_it(env: Env) -> None:
    # GIVEN a file whose last_modified is a year ahead (a skewed clock)
    now = datetime.now(UTC)
    future = env.drop([T0 + timedelta(minutes=1)], T0, modified=now + timedelta(days=365))
    first = tick(env, None)
    assert first.run_keys == day_keys({wk(0): [future]})
    # THEN the watermark stays at the present
    assert first.state.watermark is not None and first.state.watermark <= datetime.now(UTC)
    # AND a drop landing now is taken by the next tick; the future file is not taken again
    later = env.drop([T0 + timedelta(minutes=20)], datetime.now(UTC), modified=datetime.now(UTC))
    second = tick(env, first.cursor)
    assert second.run_keys == day_keys({wk(15): [later]})
    assert tick(env, second.cursor).skipped


def test_unreadable_footers_are_quarantined_and_passing_failures_retried_by_the_sweep(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a broken drop and a good one whose first footer read fails for a passing reason
    bad = env.put(
        raw_key(STREAM, T0 + timedelta(minutes=3)), b"\x00" * 64, T0 + timedelta(minutes=3)
    )
    flaky = env.drop([T0 + timedelta(minutes=20)], T0 + timedelta(minutes=21))
    real_read = sensor_module.read_file_stats
    failures = iter([ConnectionError("connection reset by peer")])

    def read_once_failing(lake: object, obj: LakeObject) -> FileStats:
        if obj.key == flaky:
            err = next(failures, None)
            if err is not None:
                raise err
        return real_read(lake, obj)  # type: ignore[arg-type]

    monkeypatch.setattr(sensor_module, "read_file_stats", read_once_failing)
    first = tick(env, None)
    # THEN the broken file is quarantined with its reason, never indexed
    quarantined = LakeIndex(EmbeddedWarehouse(env.wh_root)).quarantined()
    assert list(quarantined) == [bad] and quarantined[bad]
    assert first.requests == [] and env.indexed_keys() == []
    # AND the file whose read failed in passing is taken by the next full sweep, once
    swept = tick(env, _sweep_due(first.cursor))
    assert swept.run_keys == day_keys({wk(15): [flaky]})
    assert env.indexed_keys() == [flaky]
    assert tick(env, _sweep_due(swept.cursor)).skipped
