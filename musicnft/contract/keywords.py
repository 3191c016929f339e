"""Tracked-keyword matching shared by every source (X rules are server-side, Bluesky has none)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence


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

    def match(self, text: str, extra_terms: Iterable[str] = ()) -> list[str]:
        """Keywords found in `text` or equal to one of `extra_terms` (hashtags, cashtags)."""
        found = {m.group(1).lower() for m in self._pattern.finditer(text)} if text else set()
        for term in extra_terms:
            term_lower = term.lower().lstrip("#$")
            if term_lower in self.keywords:
                found.add(term_lower)
        return [k for k in self.keywords if k in found]
