"""The X filtered-stream source against a local server speaking X's protocol, faults included."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from producer.x_stream import (
    Backoff,
    SingleConnectionGuard,
    XApi,
    XError,
    XStreamSource,
    desired_rules,
    sync_rules,
)
from tests.support.fake_x import TOKEN, FakeX, line, tweet

KEEPALIVE = ("chunk", b"\r\n")


@pytest.fixture
def fake() -> FakeX:
    server = FakeX()
    yield server
    server.close()


def collect(source: XStreamSource, want: int, timeout: float = 20) -> list[bytes]:
    """Run the source in a thread until it has yielded `want` lines (or the timeout)."""
    got: list[bytes] = []
    done = threading.Event()

    def run() -> None:
        for _, raw in source:
            got.append(raw)
            if len(got) >= want:
                break
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    done.wait(timeout)
    source.stop.set()
    thread.join(10)
    return got


def make_source(fake: FakeX, tmp_path: Path, token: str = TOKEN, **kw: object) -> XStreamSource:
    stop = threading.Event()
    return XStreamSource(
        XApi(fake.url, _secret(token)), tmp_path / "x", stop, stall_seconds=kw.pop("stall", 1.0),  # type: ignore[arg-type]
        sleep=lambda s: None, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _secret(value: str):
    from producer.x_stream import Secret

    return Secret(value)


def ids(lines: list[bytes]) -> list[str]:
    return [json.loads(x)["data"]["id"][-2:] for x in lines]


def test_normal_flow_keepalives_split_chunks_duplicates_and_out_of_order(
    fake: FakeX, tmp_path: Path
) -> None:
    # GIVEN a stream with keep-alives, a message split across chunks, a duplicate and a late post
    m1, m2, m0 = line(tweet(1)), line(tweet(2)), line(tweet(0))
    fake.scripts = [
        [
            KEEPALIVE,
            ("chunk", m1[:25]),
            ("chunk", m1[25:]),
            KEEPALIVE,
            ("chunk", m2 + m2),
            ("chunk", m0),
        ]
    ]
    got = collect(make_source(fake, tmp_path), want=4)
    # THEN every message arrives whole, in stream order, keep-alives swallowed
    assert ids(got) == ["01", "02", "02", "00"]
    # AND downstream dedup by post id leaves each post once
    assert sorted(set(ids(got))) == ["00", "01", "02"]


def test_stall_reconnects_at_once(fake: FakeX, tmp_path: Path) -> None:
    fake.scripts = [[("chunk", line(tweet(1))), ("sleep", 3)], [("chunk", line(tweet(2)))]]
    source = make_source(fake, tmp_path, stall=0.5)
    got = collect(source, want=2)
    assert ids(got) == ["01", "02"]
    assert source.delays[0] == 0.0  # the first reconnect is immediate
    gaps = (tmp_path / "x" / "x_gaps.jsonl").read_text().splitlines()
    assert len(gaps) == 1 and "stall" in json.loads(gaps[0])["cause"]


def test_dropped_connection_mid_message_loses_nothing(fake: FakeX, tmp_path: Path) -> None:
    m = line(tweet(3))
    fake.scripts = [[("chunk", line(tweet(1))), ("chunk", m[:30]), ("drop",)], [("chunk", m)]]
    got = collect(make_source(fake, tmp_path), want=2)
    assert ids(got) == ["01", "03"]  # the half message was discarded, then arrived whole


def test_429_then_success_waits_a_minute_first(fake: FakeX, tmp_path: Path) -> None:
    fake.scripts = [[("status", 429)], [("chunk", line(tweet(1)))]]
    source = make_source(fake, tmp_path)
    assert ids(collect(source, want=1)) == ["01"]
    assert source.delays == [60.0]


def test_invalid_credentials_back_off_exponentially_and_never_earn_a_429(
    fake: FakeX, tmp_path: Path
) -> None:
    source = make_source(fake, tmp_path, token="wrong-token")
    collect(source, want=1, timeout=3)
    assert source.delays[:7] == [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0]
    assert all(d == 320.0 for d in source.delays[7:])
    assert 429 not in fake.statuses
    # X allows 50 connects per 15 minutes: this schedule stays far below it.
    elapsed, connects = 0.0, 0
    for d in source.delays:
        elapsed += d
        if elapsed > 15 * 60:
            break
        connects += 1
    assert connects < 15


def test_503_repeatedly_uses_the_http_schedule(fake: FakeX, tmp_path: Path) -> None:
    fake.scripts = [[("status", 503)]] * 3 + [[("chunk", line(tweet(1)))]]
    source = make_source(fake, tmp_path)
    assert ids(collect(source, want=1)) == ["01"]
    assert source.delays == [5.0, 10.0, 20.0]


def test_operational_disconnect_reconnects(fake: FakeX, tmp_path: Path) -> None:
    error = line(
        {
            "errors": [
                {
                    "title": "operational-disconnect",
                    "disconnect_type": "UpstreamOperationalDisconnect",
                }
            ]
        }
    )
    fake.scripts = [[("chunk", line(tweet(1))), ("chunk", error)], [("chunk", line(tweet(2)))]]
    source = make_source(fake, tmp_path)
    assert ids(collect(source, want=2)) == ["01", "02"]
    assert fake.connects == 2


def test_network_backoff_grows_by_250ms_to_16s() -> None:
    b = Backoff()
    delays = [b.next_delay("network") for _ in range(70)]
    assert delays[:5] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert max(delays) == 16.0
    b.reset()
    assert b.next_delay("network") == 0.0


def test_gap_is_recorded_and_filled_by_recent_search(fake: FakeX, tmp_path: Path) -> None:
    fake.scripts = [[("chunk", line(tweet(10))), ("drop",)], [("chunk", line(tweet(20)))]]
    fake.recent = [tweet(15), tweet(9)]
    source = make_source(fake, tmp_path, catch_up_query="music OR nft")
    got = collect(source, want=3)
    assert ids(got) == ["10", "15", "20"]  # 9 is older than the last id seen: not re-fetched
    assert json.loads(got[1])["matching_rules"] == [{"tag": "catch-up"}]
    assert len((tmp_path / "x" / "x_gaps.jsonl").read_text().splitlines()) == 1


def test_token_never_appears_in_logs_or_errors(
    fake: FakeX, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.scripts = [
        [("status", 503)],
        [("chunk", line(tweet(1))), ("drop",)],
        [("chunk", line(tweet(2)))],
    ]
    source = make_source(fake, tmp_path)
    collect(source, want=2)
    bad = make_source(fake, tmp_path, token=TOKEN)
    bad.api.base = "http://127.0.0.1:9"  # nothing listens: a connection error
    collect(bad, want=1, timeout=1)
    with pytest.raises(XError) as err:
        XApi("http://127.0.0.1:9", _secret(TOKEN)).get_rules()
    assert TOKEN not in caplog.text
    assert TOKEN not in str(err.value) and TOKEN not in repr(source.api.__dict__)


def test_rules_sync_adds_removes_and_is_idempotent(fake: FakeX) -> None:
    api = XApi(fake.url, _secret(TOKEN))
    fake.rules = [
        {"id": "900", "value": "old OR #old", "tag": "musicnft:old"},
        {"id": "901", "value": "somebody else's rule", "tag": "other-team"},
    ]
    diff = sync_rules(api, ["music", "NFT"], dry_run=True)
    assert [r["tag"] for r in diff.add] == ["musicnft:music", "musicnft:nft"]
    assert [r["id"] for r in diff.delete] == ["900"]
    assert len(fake.rules) == 2  # a dry run changes nothing
    sync_rules(api, ["music", "NFT"])
    tags = sorted(r["tag"] for r in fake.rules)
    assert tags == ["musicnft:music", "musicnft:nft", "other-team"]
    again = sync_rules(api, ["music", "NFT"])
    assert again.add == [] and again.delete == []
    assert desired_rules(["NFT"]) == [{"value": "NFT OR #NFT", "tag": "musicnft:nft"}]


def test_only_one_producer_holds_the_connection(tmp_path: Path) -> None:
    first = SingleConnectionGuard(tmp_path / "x.lock")
    with pytest.raises(XError, match="another producer"):
        SingleConnectionGuard(tmp_path / "x.lock")
    first.release()
    SingleConnectionGuard(tmp_path / "x.lock").release()
