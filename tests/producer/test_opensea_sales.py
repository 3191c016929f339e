"""The sales collector against a local fake OpenSea (tests/support/fake_opensea.py): every fault
issue 17 lists, and the guarantees: nothing lost, nothing counted twice, the key never shown.

Each test gets a fresh fake, lake, collector state and dead-letter; waits are recorded instead of
slept (the client's `sleep`), so backoff is asserted exactly and the tests stay fast.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from musicnft.adapters.local_lake import LocalLake
from musicnft.contract.lake_layout import SALES_PREFIX, hour_of_key
from musicnft.hotpath.deadletter import DeadLetter, read_entries
from producer.opensea import OpenSeaApi, OpenSeaAuthError, retry_after_seconds
from producer.sales import REWIND, SalesCollector, SalesState
from producer.x_stream import Secret
from tests.support.fake_opensea import KEY, WEI, FakeOpenSea, fake_opensea, sale_event

T0 = datetime(2021, 12, 1, 10, 0, tzinfo=UTC)
SINCE, UNTIL = T0, T0 + timedelta(hours=1)
SLUG = "genesis-tapes"


def ts(minutes: float) -> int:
    return int((T0 + timedelta(minutes=minutes)).timestamp())


@dataclass
class Rig:
    fake: FakeOpenSea
    root: Path
    sleeps: list[float] = field(default_factory=list)
    now: datetime = datetime(2021, 12, 2, tzinfo=UTC)  # the collector's clock

    def api(self, key: str = KEY, attempts: int = 5) -> OpenSeaApi:
        return OpenSeaApi(
            self.fake.url, Secret(key), min_interval=0, max_attempts=attempts,
            sleep=self.sleeps.append,
        )  # fmt: skip

    @property
    def lake(self) -> LocalLake:
        return LocalLake(self.root / "lake")

    def collector(self, key: str = KEY, attempts: int = 5) -> SalesCollector:
        return SalesCollector(
            self.api(key, attempts),
            self.lake,
            SalesState(self.root / "sales" / "opensea.sqlite"),
            DeadLetter(self.root / "dead_letter", "sales"),
            now=lambda: self.now,
        )

    def files(self) -> list[str]:
        return list(self.lake.list(SALES_PREFIX))

    def lake_rows(self) -> list[dict]:
        rows = []
        for key in self.files():
            rows.extend(pq.read_table(io.BytesIO(self.lake.get(key))).to_pylist())
        return rows

    def dead_letters(self) -> list[dict]:
        return read_entries(self.root / "dead_letter" / "sales.jsonl")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with fake_opensea() as fake:
        yield Rig(fake, tmp_path)


def collection(fake: FakeOpenSea, n: int, slug: str = SLUG, start: int = 0) -> list[dict]:
    events = [sale_event(start + i, slug, ts(i * 5 + 1)) for i in range(n)]
    fake.events[slug] = events
    return events


# ---- the happy path and pagination


def test_pagination_follows_next_until_null(rig: Rig) -> None:
    # GIVEN 7 sales answered 3 to a page
    collection(rig.fake, 7)
    rig.fake.page_size = 3
    # WHEN the hour is collected
    report = rig.collector().collect(SLUG, SINCE, UNTIL)
    # THEN three pages were read, each after the first asking for the cursor the last gave
    calls = rig.fake.event_requests()
    assert [("next" in c["params"]) for c in calls] == [False, True, True]
    assert calls[0]["params"]["event_type"] == "sale" and calls[0]["params"]["limit"] == "200"
    assert int(calls[0]["params"]["after"]) < ts(0) and int(calls[0]["params"]["before"]) >= ts(60)
    assert (report.pages, report.events, report.new) == (3, 7, 7)
    # AND the 7 sales are in one Parquet file under sales/YYYY/MM/DD/HH/ of the read's hour
    assert len(rig.files()) == 1 and report.key == rig.files()[0]
    assert hour_of_key(report.key) == rig.now.replace(minute=0)
    rows = rig.lake_rows()
    assert len({r["sale_id"] for r in rows}) == len(rows) == 7
    first = min(rows, key=lambda r: r["event_timestamp"])
    assert first["price"] == Decimal("0.1") and first["price_eth"] == pytest.approx(0.1)
    assert first["collection"] == SLUG and first["source"] == "opensea"
    assert first["event_timestamp"] == T0 + timedelta(minutes=1)


def test_a_collection_with_no_sales_writes_nothing_and_moves_its_cursor(rig: Rig) -> None:
    rig.fake.events[SLUG] = []
    rig.now = UNTIL + timedelta(minutes=1)  # a range that reaches the present
    collector = rig.collector()
    report = collector.collect(SLUG, SINCE, UNTIL)
    assert (report.pages, report.events, report.written, report.key) == (1, 0, 0, None)
    assert rig.files() == []
    assert collector.state.cursor(SLUG) == UNTIL


def test_a_historical_range_sets_no_cursor(rig: Rig) -> None:
    collection(rig.fake, 2)
    collector = rig.collector()
    collector.collect(SLUG, SINCE, UNTIL)  # the clock is a day later
    assert collector.state.cursor(SLUG) is None


def test_an_unknown_collection_fails_alone(rig: Rig) -> None:
    collection(rig.fake, 2)
    reports = rig.collector().run_once(["no-such-thing", SLUG], SINCE, UNTIL)
    assert reports[0].error and "404" in reports[0].error
    assert reports[1].error is None and reports[1].new == 2


# ---- rate limits, server errors, refused keys


def test_429_with_retry_after_waits_as_told(rig: Rig) -> None:
    collection(rig.fake, 3)
    rig.fake.faults = [(429, {"Retry-After": "7"}, b'{"detail": "slow down"}')]
    report = rig.collector().collect(SLUG, SINCE, UNTIL)
    assert rig.sleeps == [7.0]
    assert report.new == 3 and [r["status"] for r in rig.fake.requests] == [429, 200]


def test_429_with_an_http_date_retry_after() -> None:
    when = datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC)
    header = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_after_seconds(header, now=when.timestamp() - 30) == pytest.approx(30)
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_429_without_retry_after_backs_off_exponentially(rig: Rig) -> None:
    collection(rig.fake, 3)
    rig.fake.faults = [(429, {}, b"{}")] * 3
    report = rig.collector().collect(SLUG, SINCE, UNTIL)
    assert rig.sleeps == [2.0, 4.0, 8.0]
    assert report.new == 3


def test_rate_limit_headers_pace_the_next_request(rig: Rig) -> None:
    collection(rig.fake, 4)
    rig.fake.page_size = 2
    rig.fake.faults = [
        (200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3"},
         json.dumps({"asset_events": rig.fake.events[SLUG][:2], "next": "Mg=="}).encode()),
    ]  # fmt: skip
    report = rig.collector().collect(SLUG, SINCE, UNTIL)
    assert report.new == 4
    assert len(rig.sleeps) == 1 and 2.5 < rig.sleeps[0] <= 3.0


def test_500s_back_off_then_succeed(rig: Rig) -> None:
    collection(rig.fake, 3)
    rig.fake.faults = [(500, {}, b"oops"), (503, {}, b"busy"), (200, {}, b"not json")]
    report = rig.collector().collect(SLUG, SINCE, UNTIL)
    assert rig.sleeps == [1.0, 2.0, 4.0]
    assert report.new == 3


def test_persistent_500s_lose_nothing(rig: Rig) -> None:
    # GIVEN a server that fails every request of the first run
    rig.now = UNTIL + timedelta(minutes=5)
    collection(rig.fake, 3)
    rig.fake.faults = [(500, {}, b"down")] * 3
    collector = rig.collector(attempts=3)
    first = collector.run_once([SLUG], SINCE, UNTIL)
    # THEN the run reports the failure, writes nothing and leaves the cursor alone
    assert first[0].error and "HTTP 500 after 3 attempts" in first[0].error
    assert rig.files() == [] and collector.state.cursor(SLUG) is None
    # AND the next run gets everything
    second = collector.run_once([SLUG], SINCE, UNTIL)
    assert second[0].new == 3 and collector.state.cursor(SLUG) == UNTIL


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_fails_at_once_without_the_key(rig: Rig, status: int) -> None:
    collection(rig.fake, 3)
    rig.fake.auth_status = status
    wrong = "wrong-key-also-secret-42"
    collector = rig.collector(key=wrong)
    with pytest.raises(OpenSeaAuthError) as caught:
        collector.run_once([SLUG], SINCE, UNTIL)
    message = str(caught.value)
    assert f"HTTP {status}" in message and "OPENSEA_API_KEY" in message
    assert wrong not in message and wrong not in repr(caught.value)
    assert len(rig.fake.requests) == 1 and rig.sleeps == []  # no retry earns a ban
    assert rig.files() == []


# ---- malformed, repeated and out-of-range events


def test_malformed_events_are_dead_lettered_with_the_reason_once(rig: Rig) -> None:
    good = collection(rig.fake, 3)
    bad_price = sale_event(90, SLUG, ts(20))
    bad_price["payment"]["quantity"] = "1.5 ETH"
    no_tx = sale_event(91, SLUG, ts(21))
    del no_tx["transaction"]
    negative = sale_event(92, SLUG, ts(22))
    negative["payment"]["quantity"] = "-100"
    bad_time = sale_event(93, SLUG, ts(23))
    bad_time["event_timestamp"] = "yesterday"
    not_a_sale = dict(sale_event(94, SLUG, ts(24)), event_type="transfer")
    rig.fake.events[SLUG] = [*good, bad_price, no_tx, negative, bad_time, not_a_sale, 17]
    collector = rig.collector()
    report = collector.collect(SLUG, SINCE, UNTIL)
    assert (report.new, report.rejected, report.skipped) == (3, 5, 1)
    reasons = [e["reason"] for e in rig.dead_letters()]
    assert len(reasons) == 5
    assert any("not a whole number of base units" in r for r in reasons)
    assert any("transaction missing" in r for r in reasons)
    assert any("negative payment quantity" in r for r in reasons)
    assert any("event_timestamp" in r for r in reasons)
    assert any("not an object" in r for r in reasons)
    assert all(e["stage"] == "sales" and e["collection"] == SLUG for e in rig.dead_letters())
    assert json.loads(rig.dead_letters()[0]["raw"])["payment"]["quantity"] == "1.5 ETH"
    # a re-read finds the same bad events: recognized, not dead-lettered again
    again = collector.collect(SLUG, SINCE, UNTIL)
    assert (again.rejected, again.rejected_before) == (0, 5)
    assert len(rig.dead_letters()) == 5


def test_the_same_sale_on_two_pages_is_written_once(rig: Rig) -> None:
    collection(rig.fake, 6)
    rig.fake.page_size = 3
    rig.fake.repeat_across_pages = True
    report = rig.collector().collect(SLUG, SINCE, UNTIL)
    assert report.events > 6 and report.repeated == report.events - 6
    rows = rig.lake_rows()
    assert len(rows) == len({r["sale_id"] for r in rows}) == 6


def test_events_outside_the_range_are_dropped(rig: Rig) -> None:
    inside = collection(rig.fake, 3)
    before = sale_event(50, SLUG, ts(-1))
    at_end = sale_event(51, SLUG, ts(60))  # [since, until): the end is out
    rig.fake.events[SLUG] = [before, *inside, at_end]
    rig.fake.ignore_range = True  # the server answers more than was asked
    report = rig.collector().collect(SLUG, SINCE, UNTIL)
    assert (report.new, report.outside) == (3, 2)
    stamps = sorted(r["event_timestamp"] for r in rig.lake_rows())
    assert stamps[0] >= SINCE and stamps[-1] < UNTIL


# ---- reruns, changed events, cursors


def test_a_rerun_adds_nothing(rig: Rig) -> None:
    collection(rig.fake, 5)
    rig.fake.page_size = 2
    first = rig.collector().collect(SLUG, SINCE, UNTIL)
    files = rig.files()
    # a new process, the same state on disk
    second = rig.collector().collect(SLUG, SINCE, UNTIL)
    assert first.new == 5
    assert (second.new, second.changed, second.unchanged, second.key) == (0, 0, 5, None)
    assert rig.files() == files


def test_a_changed_event_is_written_again(rig: Rig) -> None:
    events = collection(rig.fake, 3)
    collector = rig.collector()
    collector.collect(SLUG, SINCE, UNTIL)
    events[1]["payment"]["quantity"] = str(2 * WEI)  # corrected after a reorg
    rig.now += timedelta(minutes=1)
    report = collector.collect(SLUG, SINCE, UNTIL)
    assert (report.new, report.changed, report.unchanged) == (0, 1, 2)
    rows = [r for r in rig.lake_rows() if r["nft_identifier"] == "1"]
    assert sorted(r["price_eth"] for r in rows) == [0.1, 2.0]  # the window keeps the latest


def test_polls_resume_from_the_cursor_and_re_read_the_last_15_minutes(rig: Rig) -> None:
    collection(rig.fake, 3)
    rig.now = T0 + timedelta(minutes=30)
    collector = rig.collector()
    collector.run_once([SLUG], None, rig.now)  # first poll: the last 15 minutes
    assert collector.state.cursor(SLUG) == rig.now
    rig.now = T0 + timedelta(minutes=31)
    collector.run_once([SLUG], None, rig.now)
    afters = [int(r["params"]["after"]) for r in rig.fake.event_requests()]
    assert afters[0] == ts(15) - 1
    assert afters[1] == int((T0 + timedelta(minutes=30) - REWIND).timestamp()) - 1
    assert collector.state.cursor(SLUG) == T0 + timedelta(minutes=31)


def test_the_poll_loop_stops_on_request(rig: Rig) -> None:
    import threading

    collection(rig.fake, 2)
    stop = threading.Event()
    collector = rig.collector()
    calls: list[datetime] = []

    def clock() -> datetime:
        calls.append(rig.now)
        if len(calls) >= 2:
            stop.set()
        return T0 + timedelta(minutes=20)

    collector.now = clock
    polls = collector.poll([SLUG], stop, interval=0.01, since=SINCE)
    assert polls >= 1
    assert int(rig.fake.event_requests()[0]["params"]["after"]) == ts(0) - 1


# ---- the key


def test_the_key_is_in_no_log_record_error_or_file(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    collection(rig.fake, 3)
    rig.fake.faults = [(429, {}, KEY.encode()), (500, {}, json.dumps({"echo": KEY}).encode())]
    collector = rig.collector()
    collector.collect(SLUG, SINCE, UNTIL)
    rig.fake.faults = [(418, {}, f"teapot {KEY}".encode())]
    failed = collector.run_once([SLUG], SINCE, UNTIL)
    assert failed[0].error and "418" in failed[0].error
    assert KEY not in failed[0].error
    with pytest.raises(OpenSeaAuthError) as caught:
        rig.collector(key=KEY + "-wrong").collect(SLUG, SINCE, UNTIL)
    assert KEY not in str(caught.value)
    assert KEY not in caplog.text
    assert rig.fake.keys_seen[0] == KEY  # it was sent, as a header
    for path in rig.root.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in repr(rig.api())
