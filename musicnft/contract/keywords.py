"""Tracked-keyword matching shared by every source (X rules are server-side, Bluesky has none)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# The only characters outside ASCII that either match an ASCII character case-insensitively in `re`
# (U+0130 İ, U+0131 ı, U+017F ſ, U+212A Kelvin K) or lower-case to ASCII: a text without them has
# an ASCII keyword's case-insensitive occurrences exactly where its UTF-8 bytes, ASCII lower-cased,
# have the keyword (a test derives this set from `re` itself over all of Unicode).
FOLDS_TO_ASCII = "\u0130\u0131\u017f\u212a"
_ASCII_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _independent(keywords: tuple[str, ...]) -> bool:
    """Keywords no two occurrences of which can overlap (none inside another, no keyword's end is
    another's or its own beginning), ASCII, and not starting with '#' or '$'."""
    for a in keywords:
        if not a or not a.isascii() or a[0] in "#$":
            return False
        for b in keywords:
            if a != b and a in b:
                return False
            if any(a[-n:] == b[:n] for n in range(1, min(len(a), len(b)))):
                return False
    return True


class KeywordMatcher:
    """Case-insensitive whole-word matcher where `#NFT`, `$ETH` and `#web3` count as the word.

    A word boundary here means "not next to a letter, digit or underscore", so `NFTs` and
    `#MusicNFT` do not match `NFT` (the same whole-word rule X's filter applies to keywords).
    Results are canonical lower-case keywords in configuration order, each at most once.
    """

    def __init__(self, keywords: Sequence[str]) -> None:
        if not keywords:
            raise ValueError("at least one keyword is required")
        self.keywords: tuple[str, ...] = tuple(dict.fromkeys(k.strip().lower() for k in keywords))
        alternatives = "|".join(re.escape(k) for k in sorted(self.keywords, key=len, reverse=True))
        self._pattern = re.compile(rf"(?<!\w)[#$]?({alternatives})(?!\w)", re.IGNORECASE)
        self._keyword_set = frozenset(self.keywords)
        self._as_bytes = (
            tuple((k, k.encode(), len(k)) for k in self.keywords)
            if _independent(self.keywords)
            else None
        )

    def match(self, text: str, extra_terms: Iterable[str] = ()) -> list[str]:
        """Keywords found in `text` or equal to one of `extra_terms` (hashtags, cashtags)."""
        found: set[str] | None = None
        if not text:
            found = set()
        elif self._as_bytes is not None:
            found = self._found_in_bytes(text)
        if found is None:
            found = {m.group(1).lower() for m in self._pattern.finditer(text)}
        keywords = self._keyword_set
        for term in extra_terms:
            term_lower = term.lower().lstrip("#$")
            if term_lower in keywords:
                found.add(term_lower)
        if not found:
            return []
        return [k for k in self.keywords if k in found]

    def _found_in_bytes(self, text: str) -> set[str] | None:
        """What the pattern finds, without its scan (a lookbehind tried at every character: a
        fifth of normalizing a post); None for a text that is not UTF-8 (a lone surrogate) or
        holds a character of FOLDS_TO_ASCII.

        For keywords that are `_independent` and a text without FOLDS_TO_ASCII, the pattern finds
        a keyword exactly when one of its occurrences in the text's UTF-8 bytes, ASCII lower-cased
        (`bytes.lower`: far cheaper than `str.lower` on non-ASCII text), has no word character
        (`\\w`: `str.isalnum()` or '_') right before or right after it: occurrences cannot overlap,
        so finditer's non-overlapping scan hides none, and a '#' or '$' before a keyword is no
        word character, so the optional prefix never decides whether the keyword is found."""
        try:
            raw = text.encode()
        except UnicodeEncodeError:
            return None
        if len(raw) != len(text) and (
            b"\xc4\xb0" in raw or b"\xc4\xb1" in raw or b"\xc5\xbf" in raw or b"\xe2\x84\xaa" in raw
        ):
            return None  # FOLDS_TO_ASCII's characters in UTF-8
        low = raw.lower()
        find = low.find
        n = len(raw)
        found: set[str] = set()
        for keyword, k, size in self._as_bytes or ():
            i = find(k)
            while i >= 0:
                # the bytes either side: ASCII ones answered here, others by their character
                if i:
                    b = raw[i - 1]
                    word = b in _ASCII_WORD if b < 0x80 else _word_before(raw, i)
                else:
                    word = False
                if not word:
                    after = i + size
                    if after == n:
                        found.add(keyword)
                        break
                    b = raw[after]
                    if not (b in _ASCII_WORD if b < 0x80 else _word_at(raw, after)):
                        found.add(keyword)
                        break
                i = find(k, i + 1)
        return found


def _word_before(raw: bytes, i: int) -> bool:
    """Whether the character ending at byte `i` of UTF-8 `raw` is a word character (`\\w`)."""
    b = raw[i - 1]
    if b < 0x80:
        return b in _ASCII_WORD
    j = i - 1
    while raw[j] & 0xC0 == 0x80:  # continuation bytes, back to the character's first byte
        j -= 1
    return raw[j:i].decode().isalnum()


def _word_at(raw: bytes, i: int) -> bool:
    """Whether the character starting at byte `i` of UTF-8 `raw` is a word character (`\\w`)."""
    b = raw[i]
    if b < 0x80:
        return b in _ASCII_WORD
    size = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
    return raw[i : i + size].decode().isalnum()
