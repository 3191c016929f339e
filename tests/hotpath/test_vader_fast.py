"""FastVader against the real vaderSentiment 3.3.2: the same four floats, bit for bit.

Differential tests: VADER's own rules and quirks on chosen sentences, then ~200,000 generated word
salads (lexicon words, boosters, negations, rule words, special cases, punctuation, emoji, caps,
odd whitespace), all compared bit for bit (`struct`, so that 0.0 and -0.0 differ).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator

import pytest
from vaderSentiment import vaderSentiment as vs

from musicnft.hotpath import vader_fast
from musicnft.hotpath.vader_fast import FastVader


@pytest.fixture(scope="module")
def analyzer() -> vs.SentimentIntensityAnalyzer:
    return vs.SentimentIntensityAnalyzer()


def vader_bits(analyzer: vs.SentimentIntensityAnalyzer, text: str) -> bytes:
    s = analyzer.polarity_scores(text)
    return struct.pack("<4d", s["neg"], s["neu"], s["pos"], s["compound"])


def fast_bits(fast: FastVader, text: str) -> bytes:
    scores = fast.polarity(text)
    assert all(type(x) is float for x in scores)
    return struct.pack("<4d", *scores)


QUIRKS = [
    "",
    "   ",
    "\n\t",
    "good",
    "GOOD",
    "GOOD bad",
    "The book was good.",
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "VADER is not smart, handsome, nor funny.",
    "At least it isn't a horrible book.",
    "The book was only kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Today only kinda sux! But I'll get by, lol",
    "Make sure you :) or :D today!",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "Not bad at all",
    "Sentiment analysis has never been good.",
    "Sentiment analysis has never been this good!",
    "Most automated sentiment analysis tools are shit.",
    "With VADER, sentiment analysis is the shit!",
    "On the other hand, VADER is quite bad ass",
    "VADER is such a badass!",
    "Without a doubt, excellent idea.",
    "Roger Dodger is one of the least compelling variations on this theme.",
    "Roger Dodger is at least compelling as a variation on the theme.",
    "Not such a badass after all.",
    # "no" before a lexicon word, in caps, and "no X or Y"
    "no good",
    "NO good at all",
    "NO GOOD",
    "no love or hate",
    "no war nor peace here",
    "no",
    "good no",
    # "so"/"this" before a lexicon word, three back and one back
    "it is so good",
    "that was this good",
    "x y this good",
    "never so good",
    "never this bad",
    "nothing so great",
    # idioms and bi-gram boosters around a lexicon word
    "a kiss of death indeed",
    "yeah right great",
    "the bomb is great",
    "a b to die for",
    "sort of good thing",
    "just enough good",
    "kind of",
    "KIND OF great",
    "bus stop ahead good",
    "beating heart love",
    # _but_check: every value rewrites the first element equal to it
    "good good but good good",
    "bad but bad bad",
    "good but",
    "BUT good",
    "good, but, great but bad",
    # punctuation emphasis: ! capped at 4, ? counted from 2, capped at 0.96
    "good!",
    "good!!!!!!!!",
    "bad??",
    "bad???",
    "bad????????",
    "good?!?!",
    # emoji: replaced by descriptions, a space before unless at the start or after a space
    "😍",
    "😍😍😍",
    "love😍",
    "😍love",
    "a\n😍",
    "🔛 good",  # "ON! arrow": its "!" counts
    "🆙🆙 bad",
    "👍🏽 nice",  # a modifier is an emoji of its own, or not
    "#️⃣ keycap",  # multi-code-point keys never match
    "Ξ1.5 ETH",
    # caps differential and punctuation stripping
    "GREAT GOOD",
    "GREAT good",
    "EXTREMELY good day",
    "extremely GOOD day",
    ":)",
    "(:",
    "good...",
    "...good",
    "!!good!!",
    "'good'",
    "d:",
    "ok, :-) fine",
    # negations with and without apostrophes, in caps
    "don't love it",
    "DON'T love it",
    "dont love it",
    "can't stand it",
    "isn't bad",
    "wasn't so good",
    "without doubt good",
    "it was without a doubt good",
    # Unicode: Greek final sigma, dotted I, non-breaking and ideographic spaces
    "ΑΓΑΠΗΣ good",
    "İSTANBUL great",
    "good\u00a0bad",
    "good\u3000great",
    "good\u2028great",
    "\u200bgood",
    # links: blanks the token memo does not keep (answered early); their "!" and "?" still count
    "great https://t.co/aBcD1234",
    "https://t.co/aBcD1234 great",
    "GREAT https://t.co/aBcD1234 good",
    "good https://example.com/?q=love!! https://x.io/love?? bad",
    "good (https://t.co/x).",
    "good https://",
    "good http://a",
    "https://t.co/don't love it",
    "good xhttps://t.co/x https:/t.co/x httpsgood",
    "HTTPS://T.CO/ABC GOOD bad",
    "Http://t.co/x great",
    "good https://t.co/😍x",
    "https://t.co/x😍 good",
    "no https://t.co/x good",
    "never so https://t.co/x good but bad",
]


@pytest.mark.parametrize("text", QUIRKS)
def test_quirks_score_as_vader(analyzer: vs.SentimentIntensityAnalyzer, text: str) -> None:
    fast = FastVader(analyzer)

    # WHEN scored cold, then again with everything memoized
    first = fast_bits(fast, text)
    second = fast_bits(fast, text)

    # THEN both are VADER's bits
    assert first == second == vader_bits(analyzer, text)


# ---- word salads ----------------------------------------------------------------------------

_EXTRA = [
    "but",
    "no",
    "or",
    "nor",
    "least",
    "at",
    "very",
    "kind",
    "of",
    "so",
    "this",
    "never",
    "without",
    "doubt",
    "the",
    "to",
    "for",
    "just",
    "enough",
    "sort",
    "don't",
    "isn't",
    "n't",
    "ain't",
    "Σ",
    "ΑΣ",
    "İ",
    "ß",
    "RT",
    "@user:",
    "https://t.co/AbC123",
    "#NFT",
    "$ETH",
    "0.05",
    "x",
    "xy",
]
_PUNCT = list("!?.,;:'\"()[]{}-_*#@$%&/")
_SEPARATORS = [" "] * 24 + ["  ", "\n", "\t", "", "\u3000", "\u00a0", " \n "]


def _salads(seed: int, count: int, analyzer: vs.SentimentIntensityAnalyzer) -> Iterator[str]:
    rnd = random.Random(seed)
    lexicon = sorted(analyzer.lexicon)
    boosters = sorted(vs.BOOSTER_DICT)
    negations = list(vs.NEGATE)
    specials = [w for key in vs.SPECIAL_CASES for w in key.split()] + list(vs.SPECIAL_CASES)
    emoji = sorted(analyzer.emojis)  # single code points and a few sequences
    emphatic = ["🔛", "🆙"]

    def word() -> str:
        k = rnd.random()
        if k < 0.33:
            w = rnd.choice(lexicon)
        elif k < 0.46:
            w = rnd.choice(boosters)
        elif k < 0.56:
            w = rnd.choice(negations)
        elif k < 0.68:
            w = rnd.choice(_EXTRA)
        elif k < 0.72:
            w = rnd.choice(specials)
        elif k < 0.8:
            w = rnd.choice(emoji) if rnd.random() < 0.95 else rnd.choice(emphatic)
        else:
            w = "".join(rnd.choice("abcdefghijkl") for _ in range(rnd.randint(1, 7)))
        c = rnd.random()
        if c < 0.15:
            w = w.upper()
        elif c < 0.2:
            w = w.capitalize()
        if rnd.random() < 0.2:
            w += "".join(rnd.choice(_PUNCT) for _ in range(rnd.randint(1, 4)))
        if rnd.random() < 0.1:
            w = "".join(rnd.choice(_PUNCT) for _ in range(rnd.randint(1, 2))) + w
        if rnd.random() < 0.05:
            w += rnd.choice(emoji)
        if rnd.random() < 0.05:
            w = rnd.choice(emoji) + w
        return w

    lengths = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30, 60]
    for _ in range(count):
        parts = []
        for _ in range(rnd.choice(lengths)):
            parts.append(word())
            parts.append(rnd.choice(_SEPARATORS))
        text = "".join(parts)
        if rnd.random() < 0.1:
            text = rnd.choice(_SEPARATORS) + text
        yield text


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_word_salads_score_as_vader(analyzer: vs.SentimentIntensityAnalyzer, seed: int) -> None:
    # 4 × 20,000 generated texts (on top of the 100k sample, the shipped sample and the gold
    # tweets in test_enrichment_parity); one FastVader each, so the memos hit and get reused
    # (memos that fill and start over: test_full_memos_start_over_and_stay_exact)
    fast = FastVader(analyzer)
    compared = 0
    mismatches = []
    for text in _salads(seed, 20_000, analyzer):
        if fast_bits(fast, text) != vader_bits(analyzer, text):
            mismatches.append(text)
        compared += 1
    assert compared == 20_000
    assert mismatches == []


def test_full_memos_start_over_and_stay_exact(
    analyzer: vs.SentimentIntensityAnalyzer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN memos that fill after a handful of tokens and scores
    monkeypatch.setattr(vader_fast, "TOKEN_MEMO_SIZE", 5)
    monkeypatch.setattr(vader_fast, "SCORES_MEMO_SIZE", 3)
    fast = FastVader(analyzer)
    texts = list(_salads(7, 3_000, analyzer))

    # WHEN many texts go through, THEN every score is VADER's and the memos stay bounded
    for text in texts:
        assert fast_bits(fast, text) == vader_bits(analyzer, text), text
        assert len(fast.memo) <= 5 + 200  # one text's tokens past the bound at most
        assert len(fast.scores) <= 3
    # the "n't" words a token adds to the rule words are forgotten with the memo
    assert len(fast.rule_words) < len(fast._rule_words) + 50


def test_special_cases_are_those_the_fast_path_knows() -> None:
    # vader_fast keys its fast paths on 3.3.2's tables; a different table must fail loudly
    fast = FastVader()

    assert "" not in fast.relevant
    assert all(abs(v) >= 0.1 for v in fast.lexicon.values())  # a lexicon valence is never 0
