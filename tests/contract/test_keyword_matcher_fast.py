"""KeywordMatcher.match finds keywords without running its pattern over the whole text when it can
(`_found_in_bytes`): the results must be exactly the pattern's, for every text."""

from __future__ import annotations

import importlib.util
import random
import re
import sys
import types

import pytest

import musicnft.compiled as compiled
from musicnft.contract import keywords as kw
from musicnft.contract.keywords import FOLDS_TO_ASCII, KeywordMatcher
from musicnft.devtools.sample import generate_lines
from musicnft.settings import DEFAULT_KEYWORDS


def _pattern_only(matcher: KeywordMatcher, text: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The matcher as it was: the pattern over the whole text, then the extra terms."""
    found = {m.group(1).lower() for m in matcher._pattern.finditer(text)} if text else set()
    for term in extra:
        term_lower = term.lower().lstrip("#$")
        if term_lower in matcher.keywords:
            found.add(term_lower)
    return [k for k in matcher.keywords if k in found]


def _all_chars() -> list[str]:
    return [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000]


def test_folds_to_ascii_is_every_character_re_or_lower_maps_onto_ascii() -> None:
    """Derived from `re` itself: the non-ASCII characters that match an ASCII character
    case-insensitively, or whose lower case holds ASCII or is not one character."""
    ascii_class = re.compile("[" + re.escape("".join(map(chr, range(128)))) + "]", re.IGNORECASE)
    special = {
        c
        for c in _all_chars()
        if not c.isascii()
        and (
            ascii_class.fullmatch(c) is not None
            or len(c.lower()) != 1
            or any(ch.isascii() for ch in c.lower())
        )
    }
    assert special == set(FOLDS_TO_ASCII)


def test_a_word_character_is_what_re_calls_one() -> None:
    """`\\w` in the pattern is `str.isalnum()` or '_', for every character."""
    word = re.compile(r"\w")
    differ = [c for c in _all_chars() if (word.match(c) is not None) != (c.isalnum() or c == "_")]
    assert differ == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("New #NFT music drop on OpenSea", ["music", "nft", "opensea"]),
        ("NFTs and #MusicNFT and web3s", []),
        ("$ETH to the moon, eth!", ["eth"]),
        ("web3's future", ["web3"]),
        ("_nft nft_ 1nft nft1", []),
        ("énft nfté", []),  # letters of any script are word characters
        ("日nft", []),
        ("\u0301nft", ["nft"]),  # a combining mark alone is no word character
        ("²nft", []),  # a superscript digit is one
        ("🎧NFT🎧", ["nft"]),
        ("#$nft", ["nft"]),
        ("a#nft", ["nft"]),
        ("MUSIC Music mUsIc", ["music"]),
        ("mu\u017fic", []),  # the pattern matches it (ſ folds to s), but "muſic" is no keyword
        ("\u212aNFT", []),
        ("op\u0130nsea", []),
        ("nft \ud800", ["nft"]),  # a lone surrogate: not UTF-8, the pattern decides
        ("", []),
    ],
)
def test_pinned_matches(text: str, expected: list[str]) -> None:
    matcher = KeywordMatcher(DEFAULT_KEYWORDS)
    assert matcher.match(text) == expected
    assert _pattern_only(matcher, text) == expected


def test_the_fast_search_is_used_for_the_default_keywords() -> None:
    matcher = KeywordMatcher(DEFAULT_KEYWORDS)
    assert matcher._found_in_bytes("🎧 music NFT") == {"music", "nft"}
    assert matcher._found_in_bytes("mu\u017fic") is None
    for c in FOLDS_TO_ASCII:
        assert matcher._found_in_bytes(f"🎧 nft {c}") is None, hex(ord(c))
        assert matcher._found_in_bytes(f"nft {c}") is None, hex(ord(c))


@pytest.mark.parametrize(
    ("keywords", "independent"),
    [
        (DEFAULT_KEYWORDS, True),
        (("nft", "nfts"), False),  # one inside another
        (("ab", "ba"), False),  # one's end is the other's beginning
        (("aa",), False),  # its own
        (("#nft",), False),
        (("é",), False),
        (("music nft", "eth"), True),
    ],
)
def test_independent_keywords(keywords: tuple[str, ...], independent: bool) -> None:
    assert kw._independent(tuple(k.lower() for k in keywords)) is independent


_PIECES = [
    " ",
    "  ",
    "#",
    "$",
    "_",
    "-",
    ".",
    "'",
    "1",
    "é",
    "É",
    "日",
    "٣",
    "²",
    "\u0301",
    "🎧",
    "\u0130",
    "\u0131",
    "\u017f",
    "\u212a",
    "\ud800",
    "\n",
    "s",
    "x",
]


def _fuzz_texts(keywords: tuple[str, ...], seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    words = [*keywords, "nfts", "musicnft", "opensea.io", "ethereum", "web", "3"]
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.5:
                word = rng.choice(words)
                parts.append("".join(c.upper() if rng.random() < 0.3 else c for c in word))
            else:
                parts.append(rng.choice(_PIECES))
        texts.append("".join(parts))
    return texts


@pytest.mark.parametrize(
    "keywords",
    [
        DEFAULT_KEYWORDS,
        ("music nft", "eth", "web3"),
        ("nft", "nfts", "music nft"),
        ("ab", "ba", "aa"),
        ("#nft", "$eth"),
        ("é", "musique", "nft"),
        ("3", "web"),
    ],
)
def test_fuzzed_texts_match_as_the_pattern_matches(keywords: tuple[str, ...]) -> None:
    matcher = KeywordMatcher(keywords)
    texts = _fuzz_texts(matcher.keywords, seed=len(keywords), count=4000)
    differ = [
        t
        for t in texts
        if matcher.match(t, ("#NFT", "$eth")) != _pattern_only(matcher, t, ("#NFT", "$eth"))
    ]
    assert differ == []


def test_sample_texts_match_as_the_pattern_matches() -> None:
    import json

    matcher = KeywordMatcher(DEFAULT_KEYWORDS)
    texts = []
    for raw in generate_lines(5000, seed=6):
        try:
            text = json.loads(raw)["data"]["text"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(text, str) and len(text) < 100_000:
            texts.append(text)
    assert len(texts) > 4000
    assert [matcher.match(t) for t in texts] == [_pattern_only(matcher, t) for t in texts]


def _source_module() -> types.ModuleType:
    """keywords.py as interpreted, beside whichever build the package imported."""
    source = compiled.source_path("musicnft.contract.keywords")
    spec = importlib.util.spec_from_file_location("_keywords_source", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "keywords",
    [DEFAULT_KEYWORDS, ("music nft", "eth", "web3"), ("3", "web"), ("mint", "music", "MUSIC")],
)
def test_the_text_scan_finds_what_the_bytes_search_finds(keywords: tuple[str, ...]) -> None:
    """`_found_in_text` (the compiled build's search) against `_found_in_bytes` (the interpreted
    one's) and the pattern, in this build and interpreted from its source."""
    matcher = KeywordMatcher(keywords)
    assert matcher._as_bytes is not None  # independent keywords
    texts = [
        *_fuzz_texts(matcher.keywords, seed=7, count=3000),
        *(
            "",
            "nft",
            "NFT!",
            "xnft",
            "nftx",
            "🎧NFT🎧",
            "énft",
            "\u0301nft",
            "a_nft",
            "MUSIC\u212a",
        ),
        *("web3 \ud800", "music-nft #eth $web3", "mu", "musi", "Music"),
    ]
    for scan in (kw._found_in_text, _source_module()._found_in_text):
        differ = []
        for text in texts:
            by_text, by_bytes = scan(text, matcher._firsts), matcher._found_in_bytes(text)
            pattern = {m.group(1).lower() for m in matcher._pattern.finditer(text)}
            if by_text != by_bytes or (by_text is not None and by_text != pattern):
                differ.append((text, by_text, by_bytes, pattern))
        assert differ == [], scan


def test_the_compiled_build_matches_with_the_text_scan() -> None:
    # GIVEN this build WHEN it matches THEN it takes the text scan exactly when it is compiled
    # (interpreted, a loop over characters is slower than the bytes search)
    assert kw.COMPILED is (compiled.statuses()["musicnft.contract.keywords"] == "compiled")
    assert _source_module().COMPILED is False
    if kw.COMPILED:
        assert KeywordMatcher(DEFAULT_KEYWORDS).match("🎧 Music #NFT", ("#web3",)) == [
            "music",
            "nft",
            "web3",
        ]


def test_remembered_hashtags_answer_the_same_and_stay_bounded() -> None:
    # GIVEN a matcher that has seen more distinct hashtags than it remembers
    matcher = KeywordMatcher(DEFAULT_KEYWORDS)
    extras = ("#NFT", "$ETH", "Web3", "#musicnft", "nft")
    first = matcher.match("a post", extras)
    for i in range(kw.MAX_REMEMBERED_TERMS * 2 + 5):
        assert matcher.match("a post", (f"#tag{i}", *extras)) == first
    # THEN what it remembers stays bounded, and every answer is the one worked out afresh
    assert len(matcher._terms) <= kw.MAX_REMEMBERED_TERMS
    assert first == ["nft", "eth", "web3"] == _pattern_only(matcher, "a post", extras)
    assert matcher.match("a post", extras) == first
