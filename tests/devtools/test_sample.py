"""Tests for the seeded X-stream sample generator.

The generator stands in for the live X stream in every other test, demo and benchmark, so these
tests re-derive everything from the raw bytes (independently of the generator's own bookkeeping)
and check the properties downstream code relies on: exact line counts, byte-for-byte
determinism, correct entity offsets, the documented mix of broken lines, and realistic shape.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from musicnft.devtools.sample import (
    DEFAULT_SEED,
    DEFAULT_START,
    SAMPLE_LINES,
    SAMPLE_PATH,
    SampleGenerator,
    SampleStats,
    generate_lines,
    write_sample,
)

MIB = 1 << 20
KINDS = {"truncated_json", "missing_id", "wrong_types", "huge_text", "invalid_utf8", "not_object"}
RULE_TAGS = {"music-nft", "nft-general", "eth", "web3", "opensea"}
TWITTER_EPOCH_MS = 1_288_834_974_657
# Whole-word keyword match (as X and musicnft.contract.keywords apply it): "#NFT" and "$ETH" count.
KEYWORD = re.compile(r"(?<!\w)[#$]?(music|nft|eth|web3|opensea)(?!\w)", re.IGNORECASE)
POSITIVE = re.compile(r"\b(love|amazing|great|incredible|proud|awesome|beautiful|congrats)", re.I)
NEGATIVE = re.compile(r"\b(scam|hate|terrible|awful|brutal|disgusting|horrible|rug)", re.I)


@dataclass
class Parsed:
    """The independent re-parse of a run: what each line is, judged only from its bytes."""

    lines: list[bytes]
    posts: list[tuple[int, bytes, dict[str, Any]]] = field(default_factory=list)
    keep_alives: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    malformed_lines: list[tuple[int, str, bytes]] = field(default_factory=list)

    @property
    def unique(self) -> dict[str, dict[str, Any]]:
        """First delivery of each post id."""
        out: dict[str, dict[str, Any]] = {}
        for _, _, msg in self.posts:
            out.setdefault(msg["data"]["id"], msg)
        return out


def classify(line: bytes) -> str:
    """`post`, `keep_alive` or the malformed kind, from the bytes alone."""
    if line == b"":
        return "keep_alive"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return "truncated_json"
    if not isinstance(value, dict):
        return "not_object"
    data = value.get("data")
    if not isinstance(data, dict):
        return "wrong_types"
    if "id" not in data:
        return "missing_id"
    if not isinstance(data["id"], str) or not isinstance(data.get("text"), str):
        return "wrong_types"
    if len(line) >= MIB:
        return "huge_text"
    return "post"


def parse(lines: list[bytes]) -> Parsed:
    parsed = Parsed(lines)
    for index, line in enumerate(lines):
        kind = classify(line)
        if kind == "post":
            parsed.posts.append((index, line, json.loads(line)))
        elif kind == "keep_alive":
            parsed.keep_alives += 1
        else:
            parsed.malformed[kind] += 1
            parsed.malformed_lines.append((index, kind, line))
    return parsed


@pytest.fixture(scope="module")
def run() -> tuple[Parsed, SampleStats]:
    generator = SampleGenerator(SAMPLE_LINES)
    lines = list(generator)
    return parse(lines), generator.stats


def created(msg: dict[str, Any]) -> datetime:
    return datetime.strptime(msg["data"]["created_at"], "%Y-%m-%dT%H:%M:%S.000Z").replace(
        tzinfo=UTC
    )


# ------------------------------------------------------------------------------ determinism


def test_same_seed_same_bytes_and_different_seed_differs() -> None:
    first = list(generate_lines(3000))
    assert first == list(generate_lines(3000, seed=DEFAULT_SEED))
    other = list(generate_lines(3000, seed=DEFAULT_SEED + 1))
    assert first != other
    assert sum(a == b for a, b in zip(first, other, strict=True)) < 30  # not just a tweak


def test_prefix_stable_and_start_and_rate_are_honoured() -> None:
    """A shorter run is a prefix of a longer one; `start` and `posts_per_hour` steer time."""
    assert list(generate_lines(500)) == list(generate_lines(2000))[:500]
    start = datetime(2022, 3, 4, 5, 0, tzinfo=UTC)
    msgs = parse(list(generate_lines(3000, start=start, posts_per_hour=10_000.0))).unique.values()
    times = [created(m) for m in msgs]
    assert start - timedelta(seconds=10) <= min(times) < start + timedelta(minutes=1)
    assert max(times) - min(times) < timedelta(hours=2)  # 3000 posts at 10k/h is well under 1h


def test_write_sample_is_reproducible_and_matches_generator(tmp_path: Path) -> None:
    a, b, plain = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz", tmp_path / "c.jsonl"
    stats_a = write_sample(a, lines=1500)
    stats_b = write_sample(b, lines=1500)
    stats_plain = write_sample(plain, lines=1500)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes()[:2] == b"\x1f\x8b"
    assert a.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime is zero
    assert a.read_bytes()[3] & 0x08 == 0  # FNAME flag unset: no file name in the header
    expected = b"\n".join(generate_lines(1500)) + b"\n"
    assert gzip.decompress(a.read_bytes()) == expected
    assert plain.read_bytes() == expected
    assert stats_a == stats_b == stats_plain
    assert stats_a.lines == 1500


def test_exact_line_counts_and_no_embedded_newlines() -> None:
    for n in (0, 1, 2, 99, 100, 101, 777):
        lines = list(generate_lines(n, seed=7))
        assert len(lines) == n
        assert all(isinstance(line, bytes) for line in lines)
        assert not any(b"\n" in line or b"\r" in line for line in lines)


def test_lines_are_streamed_lazily() -> None:
    huge = generate_lines(10**12)
    assert iter(huge) is huge
    assert len(list(itertools.islice(huge, 50))) == 50


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        list(generate_lines(-1))
    with pytest.raises(ValueError):
        list(generate_lines(10, posts_per_hour=0))


# ------------------------------------------------------------------------------ stats & mix


def test_stats_agree_with_independent_reparse(run: tuple[Parsed, SampleStats]) -> None:
    parsed, stats = run
    assert stats.lines == len(parsed.lines) == SAMPLE_LINES
    assert stats.posts == len(parsed.posts)
    assert stats.unique_posts == len(parsed.unique)
    assert stats.duplicates == stats.posts - stats.unique_posts
    assert stats.keep_alives == parsed.keep_alives
    assert set(stats.malformed) == KINDS
    assert stats.malformed == {kind: parsed.malformed[kind] for kind in KINDS}
    assert stats.lines == stats.posts + stats.keep_alives + sum(stats.malformed.values())


def test_malformed_share_kinds_and_spread(run: tuple[Parsed, SampleStats]) -> None:
    parsed, _ = run
    total = sum(parsed.malformed.values())
    assert 0.005 <= total / len(parsed.lines) <= 0.015
    assert set(parsed.malformed) == KINDS
    counts = parsed.malformed.values()
    assert max(counts) <= 2 * min(counts)  # roughly equal shares
    # Spread evenly: every tenth of the file has some broken lines.
    tenth = len(parsed.lines) // 10
    per_tenth = Counter(index // tenth for index, _, _ in parsed.malformed_lines)
    assert len(per_tenth) == 10 and min(per_tenth.values()) >= total // 20


def test_malformed_lines_have_the_promised_shape(run: tuple[Parsed, SampleStats]) -> None:
    parsed, _ = run
    valid_ids = set(parsed.unique)
    carried = 0
    for _, kind, line in parsed.malformed_lines:
        if kind == "huge_text":
            msg = json.loads(line)
            assert len(msg["data"]["text"]) >= 1_500_000
            assert len(line) > MIB
        elif kind == "invalid_utf8":
            text_part = line[line.index(b'"text":"') : line.index(b'","created_at":')]
            with pytest.raises(UnicodeDecodeError):
                text_part.decode("utf-8")
            assert len(line) < MIB
        elif kind == "missing_id":
            assert "id" not in json.loads(line)["data"]
        elif kind == "truncated_json":
            assert line.startswith(b'{"data":')
        # Any post id a broken line still carries must not collide with a real post's id.
        found = re.findall(rb'"edit_history_tweet_ids":\["(\d+)"', line)
        data_id = re.match(rb'\[?\{"data":\{"id":(?:\[|\{"id":)?"(\d+)"', line)
        if data_id is not None:
            found.append(data_id.group(1))
        carried += bool(found)
        assert not {f.decode() for f in found} & valid_ids
    assert carried > 0.5 * len(parsed.malformed_lines)


def test_duplicates_and_keep_alives(run: tuple[Parsed, SampleStats]) -> None:
    parsed, stats = run
    assert 0.01 <= stats.duplicates / stats.posts <= 0.03
    assert 0.002 <= parsed.keep_alives / len(parsed.lines) <= 0.01
    first_seen: dict[str, tuple[int, bytes]] = {}
    repeats = 0
    for index, line, msg in parsed.posts:
        post_id = msg["data"]["id"]
        if post_id in first_seen:
            repeats += 1
            first_index, first_line = first_seen[post_id]
            assert line == first_line  # byte-for-byte re-delivery
            assert index - first_index <= 260  # from the recent window (~200 posts)
        else:
            first_seen[post_id] = (index, line)
    assert repeats == stats.duplicates


# ------------------------------------------------------------------------------ message shape


def test_every_post_is_shaped_like_x_v2(run: tuple[Parsed, SampleStats]) -> None:
    parsed, _ = run
    id_re = re.compile(r"^1[0-9]{18}$")
    for msg in parsed.unique.values():
        assert set(msg) == {"data", "includes", "matching_rules"}
        data = msg["data"]
        assert id_re.match(data["id"])
        assert data["edit_history_tweet_ids"] == [data["id"]]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", data["created_at"])
        # Snowflake: the id's timestamp bits are the creation time.
        id_ms = (int(data["id"]) >> 22) + TWITTER_EPOCH_MS
        assert id_ms // 1000 == int(created(msg).timestamp())
        (user,) = msg["includes"]["users"]
        assert user["id"] == data["author_id"]
        assert set(user) - {"location"} == {"id", "username", "name", "verified", "public_metrics"}
        assert set(user["public_metrics"]) == {
            "followers_count",
            "following_count",
            "tweet_count",
            "listed_count",
        }
        assert 1 <= len(msg["matching_rules"]) <= 2
        assert {r["tag"] for r in msg["matching_rules"]} <= RULE_TAGS
        metrics = data["public_metrics"]
        assert ("retweet_count" in metrics) != ("repost_count" in metrics)
        assert {"reply_count", "like_count", "quote_count"} <= set(metrics)
        assert all(isinstance(v, int) and v >= 0 for v in metrics.values())
        assert len(data["text"]) <= 280


def test_entity_offsets_point_at_their_text(run: tuple[Parsed, SampleStats]) -> None:
    parsed, _ = run
    handle_ids: dict[str, str] = {}
    seen = Counter[str]()
    for _, _, msg in parsed.posts:
        data = msg["data"]
        text = data["text"]
        entities = data.get("entities", {})
        assert set(entities) <= {"hashtags", "cashtags", "mentions", "urls"}
        for tag in entities.get("hashtags", []):
            assert text[tag["start"] : tag["end"]] == "#" + tag["tag"]
        for tag in entities.get("cashtags", []):
            assert text[tag["start"] : tag["end"]] == "$" + tag["tag"]
        for mention in entities.get("mentions", []):
            assert text[mention["start"] : mention["end"]] == "@" + mention["username"]
            assert handle_ids.setdefault(mention["username"], mention["id"]) == mention["id"]
        for url in entities.get("urls", []):
            assert text[url["start"] : url["end"]] == url["url"]
            assert url["url"].startswith("https://t.co/")
            assert url["expanded_url"].startswith("https://")
            bare = url["expanded_url"].split("://", 1)[1].removeprefix("www.")
            assert bare.startswith(url["display_url"].removesuffix("…"))
        # Nothing entity-like in the text is left without its entity.
        assert len(re.findall(r"https://t\.co/\w+", text)) == len(entities.get("urls", []))
        assert text.count("@") == len(entities.get("mentions", []))
        for key in entities:
            seen[key] += 1
    assert min(seen[k] for k in ("hashtags", "cashtags", "mentions", "urls")) > 200
    expanded = [
        u["expanded_url"]
        for m in parsed.unique.values()
        for u in m["data"].get("entities", {}).get("urls", [])
    ]
    assert sum("opensea.io" in u for u in expanded) > 0.15 * len(expanded)
    assert len({u.split("/")[2] for u in expanded}) >= 8


def test_reposts_replies_quotes(run: tuple[Parsed, SampleStats]) -> None:
    parsed, _ = run
    posts = list(parsed.unique.values())
    kinds = Counter[str]()
    ids = set(parsed.unique)
    in_stream_refs = 0
    for msg in posts:
        data = msg["data"]
        refs = data.get("referenced_tweets")
        if refs is None:
            assert not data["text"].startswith("RT @")
            assert "in_reply_to_user_id" not in data
            kinds["original"] += 1
            continue
        (ref,) = refs
        kinds[ref["type"]] += 1
        in_stream_refs += ref["id"] in ids
        assert re.fullmatch(r"\d{19}", ref["id"]) and ref["id"] != data["id"]
        if ref["type"] == "retweeted":
            assert data["text"].startswith("RT @")
            assert len(data["text"]) <= 140
        elif ref["type"] == "replied_to":
            assert data["text"].startswith("@")
            first = data["entities"]["mentions"][0]
            assert first["start"] == 0 and first["id"] == data["in_reply_to_user_id"]
        else:
            assert ref["type"] == "quoted"
            assert data["entities"]["urls"][-1]["expanded_url"].endswith("/status/" + ref["id"])
        if ref["type"] != "replied_to":
            assert "in_reply_to_user_id" not in data
    n = len(posts)
    assert 0.15 <= kinds["retweeted"] / n <= 0.25
    assert 0.06 <= kinds["replied_to"] / n <= 0.14
    assert 0.02 <= kinds["quoted"] / n <= 0.08
    assert in_stream_refs > 100  # some reposts/replies point at posts earlier in the stream


def test_content_languages_keywords_and_sentiment(run: tuple[Parsed, SampleStats]) -> None:
    parsed, _ = run
    posts = list(parsed.unique.values())
    texts = [m["data"]["text"] for m in posts]
    langs = Counter(m["data"]["lang"] for m in posts)
    assert len(langs) > 4
    assert {"en", "es", "pt", "ja", "fr", "de", "ko", "und"} <= set(langs)
    assert 0.5 < langs["en"] / len(posts) < 0.85
    # Japanese and Korean posts are written in their scripts.
    assert all(
        re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", m["data"]["text"])
        for m in posts
        if m["data"]["lang"] == "ja" and not m["data"]["text"].startswith("@")
    )
    assert all(
        re.search(r"[\uac00-\ud7af]", m["data"]["text"])
        for m in posts
        if m["data"]["lang"] == "ko" and not m["data"]["text"].startswith("@")
    )
    matched = sum(KEYWORD.search(t) is not None for t in texts)
    assert matched / len(texts) > 0.95
    for word in ("NFT", "nft", "ETH", "web3", "Web3", "OpenSea", "opensea", "music", "Music"):
        assert any(re.search(rf"(?<!\w){word}(?!\w)", t) for t in texts), word
    assert sum(bool(POSITIVE.search(t)) for t in texts) > 0.1 * len(texts)
    assert sum(bool(NEGATIVE.search(t)) for t in texts) > 0.05 * len(texts)
    assert sum(any(e in t for e in "🎵🔥🚀💎😡") for t in texts) > 0.05 * len(texts)
    assert len(set(texts)) > 0.8 * len(texts)  # varied, not a handful of fixed strings
    rules = Counter(r["tag"] for m in posts for r in m["matching_rules"])
    assert set(rules) == RULE_TAGS


def test_metric_names_and_counts(run: tuple[Parsed, SampleStats]) -> None:
    parsed, _ = run
    metrics = [m["data"]["public_metrics"] for m in parsed.unique.values()]
    retweet = sum("retweet_count" in m for m in metrics)
    assert 0.4 < retweet / len(metrics) < 0.6
    assert any("impression_count" in m for m in metrics)
    assert any("impression_count" not in m for m in metrics)
    likes = [m["like_count"] for m in metrics]
    assert likes.count(0) > 0.6 * len(likes)
    assert max(likes) > 0


def test_authors_are_consistent_and_heavy_tailed(run: tuple[Parsed, SampleStats]) -> None:
    parsed, _ = run
    users: dict[str, dict[str, Any]] = {}
    for msg in parsed.unique.values():
        (user,) = msg["includes"]["users"]
        assert users.setdefault(user["id"], user) == user  # same handle, location, followers
    assert 1000 <= len(users) <= 5000
    handles = [u["username"] for u in users.values()]
    assert len(set(handles)) == len(handles)
    assert all(re.fullmatch(r"[A-Za-z0-9_]{1,15}", h) for h in handles)
    followers = [u["public_metrics"]["followers_count"] for u in users.values()]
    assert max(followers) > 100 * statistics.median(followers)
    assert max(followers) >= 100_000 and 0 in followers
    assert 10 <= statistics.median(followers) <= 1000
    verified = sum(u["verified"] for u in users.values()) / len(users)
    assert 0.02 <= verified <= 0.1
    located = [u["location"] for u in users.values() if "location" in u]
    assert 0.45 <= len(located) / len(users) <= 0.75
    assert len(set(located)) >= 30
    # Activity is skewed too: the busiest author posts far more than the typical one.
    per_author = Counter(m["data"]["author_id"] for m in parsed.unique.values())
    assert per_author.most_common(1)[0][1] > 5 * statistics.median(per_author.values())


# ------------------------------------------------------------------------------ time


def test_time_span_order_and_daily_rhythm(run: tuple[Parsed, SampleStats]) -> None:
    parsed, stats = run
    times = [created(msg) for _, _, msg in parsed.posts]
    unique_times = [created(m) for m in parsed.unique.values()]
    span = max(unique_times) - min(unique_times)
    assert span > timedelta(days=2)
    assert min(unique_times) >= DEFAULT_START - timedelta(seconds=10)
    # Average rate close to the default 256 posts/hour over whole days.
    assert 200 < stats.unique_posts / (span.total_seconds() / 3600) < 320
    # Mostly in order; occasionally a few seconds behind, never much more (ignoring re-sends).
    backwards = [(a - b).total_seconds() for a, b in itertools.pairwise(unique_times) if b < a]
    assert 0 < len(backwards) < 0.05 * len(unique_times)
    assert max(backwards) <= 10
    assert len(times) == stats.posts
    # Daily rhythm: posts per UTC hour-of-day, peak clearly above trough. Each hour-of-day
    # takes the median over the days, so a single drop burst cannot fake a rhythm.
    per_hour = Counter((t.date(), t.hour) for t in unique_times)
    by_hour: defaultdict[int, list[int]] = defaultdict(list)
    for (day, hour), count in per_hour.items():
        if datetime(day.year, day.month, day.day, hour, tzinfo=UTC) + timedelta(hours=1) <= max(
            unique_times
        ):  # only complete hours
            by_hour[hour].append(count)
    assert len(by_hour) == 24 and min(len(v) for v in by_hour.values()) >= 2
    typical = {hour: statistics.median(counts) for hour, counts in by_hour.items()}
    assert max(typical.values()) > 1.5 * min(typical.values())


@pytest.mark.slow
def test_bursts_exist() -> None:
    """Drops: some 10-minute windows carry several times the typical 10-minute volume."""
    parsed = parse(list(generate_lines(40_000, seed=11)))
    per_window: defaultdict[int, int] = defaultdict(int)
    for msg in parsed.unique.values():
        per_window[int(created(msg).timestamp()) // 600] += 1
    counts = sorted(per_window.values())
    assert counts[-1] > 3 * statistics.median(counts)


# ------------------------------------------------------------------------------ shipped file


@pytest.mark.slow
def test_shipped_sample_is_reproducible(tmp_path: Path) -> None:
    assert SAMPLE_PATH.exists(), "run write_sample(SAMPLE_PATH) to create the shipped sample"
    regenerated = tmp_path / "sample.jsonl.gz"
    stats = write_sample(regenerated)
    shipped = SAMPLE_PATH.read_bytes()
    # Content first, so a zlib-version difference is told apart from a generator change.
    assert gzip.decompress(shipped) == gzip.decompress(regenerated.read_bytes())
    assert shipped == regenerated.read_bytes()
    assert stats.lines == SAMPLE_LINES
    assert SAMPLE_PATH.stat().st_size < 6_500_000
