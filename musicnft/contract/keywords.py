"""Tracked-keyword matching shared by every source (X rules are server-side, Bluesky has none)."""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Sequence

# The only characters outside ASCII that either match an ASCII character case-insensitively in `re`
# (U+0130 İ, U+0131 ı, U+017F ſ, U+212A Kelvin K) or lower-case to ASCII: a text without them has
# an ASCII keyword's case-insensitive occurrences exactly where its UTF-8 bytes, ASCII lower-cased,
# have the keyword (a test derives this set from `re` itself over all of Unicode).
FOLDS_TO_ASCII = "\u0130\u0131\u017f\u212a"
# One scan of the text for any of them (four `in` scans of its UTF-8 bytes cost 3x as much).
_FOLDS_SEARCH = re.compile(f"[{FOLDS_TO_ASCII}]").search
# How many distinct hashtags and cashtags a matcher remembers before it starts over (a few
# hundred kilobytes at most).
MAX_REMEMBERED_TERMS = 4_096
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
        # hashtags and cashtags repeat from post to post: each one's answer, once worked out
        self._terms: dict[str, str | None] = {}
        self._as_bytes = (
            tuple((k, k.encode(), len(k)) for k in self.keywords)
            if _independent(self.keywords)
            else None
        )
        # `_found_in_text`'s table: per ASCII character, the keywords that start with it (either
        # case); most characters start none, and a letter seldom starts more than one
        firsts: list[list[str]] = [[] for _ in range(128)]
        for k in self.keywords:
            if k and k[0].isascii():
                for first in {k[0], k[0].upper()}:
                    firsts[ord(first)].append(k)
        self._firsts = tuple(tuple(ks) for ks in firsts)

    def match(self, text: str, extra_terms: Iterable[str] = ()) -> list[str]:
        """Keywords found in `text` or equal to one of `extra_terms` (hashtags, cashtags)."""
        found: set[str] | None = None
        if not text:
            found = set()
        elif self._as_bytes is not None:
            # (the same answer either way: the cheaper one for this build, see COMPILED)
            found = _found_in_text(text, self._firsts) if COMPILED else self._found_in_bytes(text)
        if found is None:
            found = {m.group(1).lower() for m in self._pattern.finditer(text)}
        terms = self._terms
        for term in extra_terms:
            try:
                keyword = terms[term]
            except KeyError:
                keyword = self._term_keyword(term)
                if len(terms) >= MAX_REMEMBERED_TERMS:
                    terms.clear()
                terms[term] = keyword
            if keyword is not None:
                found.add(keyword)
        if not found:
            return []
        return [k for k in self.keywords if k in found]

    def _term_keyword(self, term: str) -> str | None:
        """The keyword a hashtag or cashtag is (`#NFT`, `$eth`, `Web3`), or None."""
        term_lower = term.lower().lstrip("#$")
        return term_lower if term_lower in self._keyword_set else None

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
        if not text.isascii() and _FOLDS_SEARCH(text) is not None:
            return None
        try:
            raw = text.encode()
        except UnicodeEncodeError:
            return None
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


def _found_in_text(text: str, firsts: tuple[tuple[str, ...], ...]) -> set[str] | None:
    """What `KeywordMatcher._found_in_bytes` finds, for the same keywords (`_independent` ones),
    in one pass over the text's characters; None for a text holding a character of FOLDS_TO_ASCII
    or a lone surrogate (the pattern decides those). `firsts[c]`: the keywords that start with
    the ASCII character `chr(c)`, read case-insensitively.

    The compiled build runs this one (musicnft/contract/keywords.pxd types its locals, so the
    pass is a C loop, cheaper than the bytes' encode, lower and one `find` per keyword);
    interpreted, a loop over characters is the slower, and `_found_in_bytes` runs. A keyword is
    found where its characters, ASCII upper case read as lower, stand with no word character
    (`\\w`: `str.isalnum()` or '_') right before or right after: the argument of
    `_found_in_bytes`, over characters instead of bytes (a non-ASCII character is never equal
    to a keyword's ASCII one, and it is a word character exactly when `isalnum()` says so)."""
    n = len(text)
    found: set[str] = set()
    i = 0
    while i < n:
        c = ord(text[i])
        if c >= 128:
            if c == 0x130 or c == 0x131 or c == 0x17F or c == 0x212A or 0xD800 <= c <= 0xDFFF:
                return None  # FOLDS_TO_ASCII, or a surrogate
            i += 1
            continue
        candidates = firsts[c]
        if not candidates:
            i += 1
            continue
        for keyword in candidates:
            size = len(keyword)
            if i + size > n:
                continue
            matched = True
            for j in range(1, size):  # (its first character is why it is a candidate)
                d = ord(text[i + j])
                if 65 <= d <= 90:
                    d += 32
                if d != ord(keyword[j]):
                    matched = False
                    break
            if not matched:
                continue
            if (i > 0 and _is_word_at(text, i - 1)) or (
                i + size < n and _is_word_at(text, i + size)
            ):
                continue
            found.add(keyword)
        i += 1
    return found


def _is_word_at(text: str, i: int) -> bool:
    """Whether `text[i]` is a word character (`\\w`)."""
    b = ord(text[i])
    if b >= 128:
        return text[i].isalnum()
    return b == 95 or 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122


# Whether this module runs as its Cython build (musicnft/compiled.py), where `_found_in_text` is
# a C loop; interpreted, `_found_in_bytes` is the cheaper way to the same answer.
COMPILED: bool = type(_found_in_text) is not types.FunctionType
