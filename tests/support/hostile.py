"""The hostile-input corpus: X stream lines at their types' extremes, one file per kind (gzipped, as the replay
source reads them).

Every line is either a post the pipeline must accept with a sane value, or one it must dead-letter
with a reason; in both cases the line after it must still be read. Each kind's file ends with a
plain post (the sentinel), which proves the source went on. `mixed.jsonl.gz` interleaves every hostile
line with sample posts. The files under tests/fixtures/hostile/ are written by
`python -m tests.support.hostile` and a test keeps them equal to what this module builds.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from musicnft.devtools.sample import generate_lines
from tests.support.paths import FIXTURES
from tests.support.records import x_message

CORPUS = FIXTURES / "hostile"
ACCEPT, REJECT = "accept", "reject"
_ids = iter(range(700_000, 800_000))


def _msg(**data: Any) -> dict[str, Any]:
    msg = x_message(next(_ids))
    msg["data"].update(data)
    return msg


def _metrics(**metrics: Any) -> dict[str, Any]:
    msg = x_message(next(_ids))
    msg["data"]["public_metrics"].update(metrics)
    return msg


def _line(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _timestamps() -> Iterator[tuple[bytes, str]]:
    for created in (
        "0001-01-01T00:00:00.000+14:00",  # OverflowError converting to UTC
        "9999-12-31T23:59:59.000-14:00",  # likewise, the other way
        "1969-12-31T23:59:59.000Z",  # before the epoch
        "2999-01-01T00:00:00.000Z",  # centuries ahead: would fan a backfill out to millions
        "2021-13-45T99:00:00Z",
        "not a date",
    ):
        yield _line(_msg(created_at=created)), REJECT
    yield _line(_msg(created_at="2021-12-01T00:00:00.000+14:00")), ACCEPT  # a real offset
    yield _line(_msg(created_at=12345)), REJECT


def _integers() -> Iterator[tuple[bytes, str]]:
    # more digits than Python's int() takes from text (4,300): json.loads raises ValueError
    base = _line(_metrics(like_count=1)).decode()
    yield _raw(base.replace('"like_count": 1', '"like_count": ' + "9" * 5000)), REJECT
    # A count that is no count becomes null (the post stays): beyond int64, negative, a string
    yield _line(_metrics(like_count=2**64)), ACCEPT
    yield _line(_metrics(like_count=-(2**63) - 1)), ACCEPT
    yield _line(_metrics(like_count=2**62, retweet_count=2**62)), ACCEPT  # sums overflow int64
    yield _line(_metrics(like_count=1e400)), REJECT  # dumped as Infinity: not JSON
    yield _line(_metrics(like_count="12")), ACCEPT
    yield _line(_metrics(like_count=-1)), ACCEPT


def _nan_infinity() -> Iterator[tuple[bytes, str]]:
    base = _line(_metrics(like_count=1)).decode()
    for constant in ("NaN", "Infinity", "-Infinity"):
        yield _raw(base.replace('"like_count": 1', f'"like_count": {constant}')), REJECT


def _nesting() -> Iterator[tuple[bytes, str]]:
    yield _raw("[" * 100_000 + "]" * 100_000), REJECT
    deep = _msg()
    deep["data"]["geo"] = json.loads("[" * 500 + "]" * 500)  # deep, but an ignored field
    yield _line(deep), ACCEPT
    yield _raw('{"data": ' * 50_000 + "{}" + "}" * 50_000), REJECT


def _nul_bytes() -> Iterator[tuple[bytes, str]]:
    yield _line(_msg(text="gm \x00 #NFT music \x00 drop")), ACCEPT
    yield _raw('{"data": {"id": "1\x00"}}'), REJECT  # a raw NUL inside a JSON string
    yield b"\x00\x00\x00", REJECT


def _surrogates() -> Iterator[tuple[bytes, str]]:
    yield (
        _raw(_line(_msg(text="x")).decode().replace('"text": "x"', '"text": "\\ud800 NFT"')),
        REJECT,
    )
    yield (
        _raw(_line(_msg(text="x")).decode().replace('"text": "x"', '"text": "\\udfff music"')),
        REJECT,
    )
    yield _line(_msg(text="music NFT \U0001f3b5")), ACCEPT  # a real astral character
    yield b'{"data": "\xed\xa0\x80"}', REJECT  # a surrogate encoded as UTF-8: invalid UTF-8


def _huge_strings() -> Iterator[tuple[bytes, str]]:
    yield _line(_msg(text="NFT music " * 100_000)), REJECT  # 1 MB of text
    users = x_message(next(_ids))
    users["includes"]["users"][0]["location"] = "L" * 1_000_000
    yield _line(users), REJECT
    yield _line(_msg(lang="e" * 1_000_000)), REJECT
    tags = _msg()
    tags["data"]["entities"] = {"hashtags": [{"tag": f"nft{i}"} for i in range(5000)]}
    yield _line(tags), REJECT


KINDS = {
    "timestamps": _timestamps,
    "integers": _integers,
    "nan_infinity": _nan_infinity,
    "nesting": _nesting,
    "nul_bytes": _nul_bytes,
    "surrogates": _surrogates,
    "huge_strings": _huge_strings,
}


def build() -> dict[str, list[tuple[bytes, str]]]:
    """kind -> (line, expectation) pairs, the last one the sentinel post (deterministic)."""
    global _ids
    _ids = iter(range(700_000, 800_000))
    out: dict[str, list[tuple[bytes, str]]] = {}
    for n, (kind, make) in enumerate(KINDS.items()):
        lines = list(make())
        lines.append((_line(x_message(690_000 + n, text=f"sentinel {kind} #NFT music")), ACCEPT))
        out[kind] = lines
    return out


def mixed(sample_lines: list[bytes], seed: int = 7) -> list[bytes]:
    """Every hostile line placed at a random point among `sample_lines`."""
    rng = random.Random(seed)
    lines = list(sample_lines)
    for kind_lines in build().values():
        for line, _ in kind_lines:
            lines.insert(rng.randrange(len(lines) + 1), line)
    return lines


def _gzip(lines: list[bytes]) -> bytes:
    # mtime 0: the same corpus gives the same bytes
    return gzip.compress(b"".join(line + b"\n" for line in lines), compresslevel=9, mtime=0)


def sample_lines(n: int = 2000) -> list[bytes]:
    return list(generate_lines(n, seed=5, posts_per_hour=1200))


def files() -> dict[str, bytes]:
    """File name -> contents of the committed corpus."""
    out = {}
    for kind, lines in build().items():
        out[f"{kind}.jsonl.gz"] = _gzip([line for line, _ in lines])
        out[f"{kind}.expect"] = "".join(f"{e}\n" for _, e in lines).encode()
    out["mixed.jsonl.gz"] = _gzip(mixed(sample_lines()))
    return out


def write(folder: Path = CORPUS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files().items():
        (folder / name).write_bytes(data)


if __name__ == "__main__":
    write()
