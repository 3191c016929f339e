"""vaderSentiment 3.3.2's `polarity_scores`, the same floats bit for bit, several times faster.

`FastVader.polarity(text)` re-implements `SentimentIntensityAnalyzer.polarity_scores` of
vaderSentiment 3.3.2 (`vaderSentiment/vaderSentiment.py` in the venv). It uses VADER's own tables
(lexicon, emoji lexicon, boosters, negations, special cases and constants, read from the installed
package, never copied) and performs the same floating-point operations on the same values in the
same order, so every score is identical, including VADER's quirks:

- only single-code-point emoji are replaced by their descriptions (`for chr in text`), with a space
  before a description unless it starts the text or follows a space, none after it; the `!` in
  the descriptions "ON! arrow" and "UP! button" count as exclamation marks;
- lexicon keys with capitals (`:D`) never match, since lookups are lower-cased;
- a word loses its leading/trailing punctuation only when 3+ characters remain;
- "no" before a lexicon word scores 0.0, and an all-caps "NO" then still takes −0.733;
- the 3-words-back negation check multiplies by 1.25 whenever the previous word is "so" or "this";
- some special cases are Python ints (`"the shit": 3`), and stay ints until an operation makes them
  floats;
- `_but_check` rewrites the *first* element equal to each value (`list.index`), not its own;
- sentiments are ints (0) for words outside the lexicon and floats otherwise, summed by `sum()`.

Only repeated work is saved, never an operation on a score:

- VADER builds the emoji-free text one character at a time and lower-cases the whole word list again
  three or four times per lexicon word (O(n²) per text). Here each whitespace-separated token of
  the text is turned once into its words (emoji replaced, punctuation stripped, lower-cased) and
  memoized (`_TokenMemo`, bounded): a text is `str.split` plus one dict lookup per token. This is
  exact because a description never spans whitespace of the text: splitting the emoji-free text
  gives the concatenation of the tokens' own splits (a space VADER inserts before an emoji that
  follows whitespace changes no split).
- A word that is neither in the lexicon nor read by any rule becomes one shared blank string (or a
  blank `_Caps`, to keep the caps count): texts are mostly the same few objects in memory.
- A text with no lexicon word (set test in C) scores (0.0, 1.0, 0.0, 0.0) at once. That test and
  the others on a text's words run on its known words only: blanks are empty strings, which
  `filter(None, ...)` drops in C, so they see a few words instead of all of them.
- A link token (`http://` or `https://`, printable ASCII) is never kept in the memo: its blank is
  given before the memo's general path.
- A lexicon word with no rule within reach (`_in_reach`: a rule word among the 3 words before it,
  "this" right before it, "no" before a lexicon word, "kind of", or a word of a special case in or
  just after it) keeps its valence, but for the ALL CAPS emphasis: VADER's loop over the preceding
  words then only adds 0.0 to a non-zero valence and multiplies by nothing. When that holds for
  every lexicon word and there is no "but", no list of sentiments is built at all.
- The scores of a text depend only on its non-zero sentiments in order, its number of words and
  its "!" and "?" counts; they are memoized on those (`_scores`, bounded).
- The caps differential (some but not all words in caps) is counted only when a word in caps needs
  it.

The differential tests (tests/hotpath/test_vader_fast.py: quirks and 200,000 generated word salads;
tests/hotpath/test_enrichment_parity.py: the project's corpora) compare this with the real VADER bit
for bit.
"""

from __future__ import annotations

import math
import re
import string
from itertools import chain, compress
from typing import Any

Scores = tuple[float, float, float, float]  # neg, neu, pos, compound, rounded as VADER rounds

_PUNCTUATION = string.punctuation
NEUTRAL: Scores = (0.0, 1.0, 0.0, 0.0)  # words, none of them in the lexicon
EMPTY: Scores = (0.0, 0.0, 0.0, 0.0)  # no word at all

TOKEN_MEMO_SIZE = 65_536  # distinct tokens remembered before the memo starts over (~10 MB)
SCORES_MEMO_SIZE = 16_384  # scores of rule-free texts, by their lexicon words and punctuation

# Words the rules read besides the lexicon word itself (with the boosters and negations). For each
# multi-word special case or booster, one of its words: an n-gram without it cannot match.
_RULE_WORDS = ("no", "never", "without", "so", "least", "kind", "but")
# Words compared by the rules but not rule words: they matter only next to one of the rule words
# ("no X or/nor Y", "at least", "very least", "without doubt", "kind of"), or for "this", only right
# before a lexicon word (checked for apart).
_COMPARED_WORDS = ("or", "nor", "at", "very", "doubt", "of", "this")
_IDIOM_TRIGGERS = {
    "the shit": "shit",
    "the bomb": "bomb",
    "bad ass": "ass",
    "bus stop": "bus",
    "yeah right": "yeah",
    "kiss of death": "kiss",
    "to die for": "die",
    "beating heart": "beating",
    "just enough": "enough",
    "kind of": "kind",
    "sort of": "sort",
}


class _Caps(str):
    """A lower-cased word whose original was ALL CAPS (`str.isupper`): VADER's caps emphasis reads
    the original word, so the memo keeps that one bit in the type of the lower-cased one."""

    __slots__ = ()


# What a word no rule reads becomes (see `FastVader.relevant`): one shared object, so that texts are
# mostly the same few strings in memory and the lexicon probes of those words hit the same slot.
_BLANK = ""
_BLANK_CAPS = _Caps("")
_BLANK_TOKEN = (_BLANK,)
_BLANK_CAPS_TOKEN = (_BLANK_CAPS,)


class _TokenMemo(dict[str, tuple[str, ...]]):
    """token → its lower-cased words, `_Caps` for words in caps and a blank for every word that
    is neither in the lexicon nor read by a rule; filled on first sight (`__missing__`).
    `FastVader.polarity` empties it when full, between texts."""

    def __init__(self, vader: FastVader) -> None:
        super().__init__()
        self._vader = vader

    def __missing__(self, token: str) -> tuple[str, ...]:
        if token.startswith("http") and "://" in token and "'" not in token and token.isascii():
            # A link, nearly every one new: what the general path below gives it, sooner. (Its
            # word starts with "http", in lower case: not ALL CAPS, not a word of the lexicon or of
            # a rule, which `FastVader` checks, and without "n't"; it is not kept, having a "/".)
            return _BLANK_TOKEN
        vader = self._vader
        relevant = vader.relevant
        if token.isascii():
            # One word (no emoji, no whitespace): the common case, without the general path.
            stripped = token.strip(_PUNCTUATION)
            word = token if len(stripped) <= 2 else stripped
            lowered = word.lower()
            canonical = relevant.get(lowered)
            if canonical is not None:
                words: tuple[str, ...] = (_Caps(lowered) if word.isupper() else canonical,)
            elif "n't" in lowered:
                vader.rule_words.add(lowered)
                words = (_Caps(lowered) if word.isupper() else lowered,)
            else:
                words = _BLANK_CAPS_TOKEN if word.isupper() else _BLANK_TOKEN
                if "/" in token:
                    return words  # a link: seldom seen twice, not worth its room in the memo
        else:
            if not vader.emphatic_seen and any(ch in token for ch, _, _ in vader.emphatic_emoji):
                vader.emphatic_seen = True
            out = []
            for word in vader._token_words(token):
                lowered = relevant.get(word.lower(), word.lower())
                if lowered in relevant or "n't" in lowered:
                    if "n't" in lowered:
                        vader.rule_words.add(lowered)
                    out.append(_Caps(lowered) if word.isupper() else lowered)
                else:
                    out.append(_BLANK_CAPS if word.isupper() else _BLANK)
            words = tuple(out)
        self[token] = words
        return words


class FastVader:
    """`polarity(text)` returns VADER 3.3.2's (neg, neu, pos, compound) for a `str`."""

    def __init__(self, analyzer: Any = None) -> None:
        from vaderSentiment import vaderSentiment as vs

        if analyzer is None:
            analyzer = vs.SentimentIntensityAnalyzer()
        self.lexicon: dict[str, float] = analyzer.lexicon
        self.booster: dict[str, float] = vs.BOOSTER_DICT
        self.special: dict[str, float] = vs.SPECIAL_CASES
        self.negate = frozenset(vs.NEGATE)
        self.n_scalar: float = vs.N_SCALAR
        self.c_incr: float = vs.C_INCR
        # A word scores through the lexicon only when it is not a booster (checked first).
        self.scoring = frozenset(w for w in self.lexicon if w not in self.booster)
        multi_word = [k for k in (*self.special, *self.booster) if " " in k]
        if set(multi_word) != set(_IDIOM_TRIGGERS) or any(
            t not in k.split() for k, t in _IDIOM_TRIGGERS.items()
        ):
            raise RuntimeError("vaderSentiment's special cases changed: vader_fast needs a review")
        self.idiom_words = frozenset(w for k in multi_word for w in k.split())
        self.triggers = frozenset(_IDIOM_TRIGGERS.values())
        self._rule_words = frozenset(
            {
                *(k for k in self.booster if " " not in k),
                *self.negate,
                *_RULE_WORDS,
                *_IDIOM_TRIGGERS.values(),
            }
        )
        # Grows with every word containing "n't" that a token gives (see _TokenMemo).
        self.rule_words = set(self._rule_words)
        # Every word a rule compares with or looks up; any other word can be replaced by a blank.
        # word → the one string object that stands for it (the lexicon's own key first), so that
        # lookups of memoized words succeed on identity, without comparing strings.
        self.relevant: dict[str, str] = {}
        for w in chain(
            self.lexicon,
            (w for k in self.booster for w in k.split()),
            self.negate,
            self.idiom_words,
            _RULE_WORDS,
            _COMPARED_WORDS,
        ):
            self.relevant.setdefault(w, w)
        if _BLANK in self.relevant:
            raise RuntimeError(
                "vaderSentiment's lexicon has an empty word: vader_fast needs a review"
            )
        if any(w.startswith("http") for w in self.relevant):  # see _TokenMemo.__missing__
            raise RuntimeError("vaderSentiment's lexicon has a word like a link: review vader_fast")
        single = {ch: d for ch, d in analyzer.emojis.items() if len(ch) == 1}
        spaced = {ch: " " + d for ch, d in single.items()}
        # Emoji whose description holds "!" or "?" (they count as punctuation emphasis).
        self.emphatic_emoji = tuple(
            (ch, d.count("!"), d.count("?")) for ch, d in single.items() if "!" in d or "?" in d
        )
        # Candidates: the emoji of the Basic Multilingual Plane and every character beyond it (`re`
        # scans a long list of astral characters linearly, one range it does not).
        bmp = "".join(re.escape(ch) for ch in sorted(single) if ord(ch) <= 0xFFFF)
        candidate = re.compile(f"[{bmp}\\U00010000-\\U0010FFFF]")

        def replace(m: re.Match[str]) -> str:
            ch = m.group()
            start = m.start()
            if start and m.string[start - 1] != " ":
                return spaced.get(ch, ch)
            return single.get(ch, ch)

        def emoji_free(text: str) -> str:
            return candidate.sub(replace, text)

        self.emoji_free = emoji_free
        self.emphatic_seen = False  # whether a token ever held one of them
        self.memo = _TokenMemo(self)
        self.scores: dict[tuple[Any, ...], Scores] = {}

    @staticmethod
    def _strip_punctuation(word: str) -> str:
        stripped = word.strip(_PUNCTUATION)
        return word if len(stripped) <= 2 else stripped

    def _token_words(self, token: str) -> tuple[str, ...]:
        """The words VADER makes of one whitespace-free token (emoji replaced, punctuation
        stripped, case kept)."""
        if not token.isascii():
            token = self.emoji_free(token)
        return tuple(self._strip_punctuation(w) for w in token.split())

    def polarity(self, text: str) -> Scores:
        tokens = text.split()
        if not tokens:
            return EMPTY
        memo = self.memo
        if len(memo) >= TOKEN_MEMO_SIZE:
            memo.clear()
            self.rule_words = set(self._rule_words)
        # The words of the tokens in order: `extend` takes each token's tuple as it is, where
        # `chain` would make an iterator per token (`any` only drives the map: extend gives None).
        lw: list[str] = []
        any(map(lw.extend, map(memo.__getitem__, tokens)))
        # The words the lexicon or a rule knows, in order: every other word is a blank, and blanks
        # are the empty strings ("" and _Caps("")), so `filter` drops them in C. The set and list
        # tests below then see a text's few known words instead of all of its words.
        known = list(filter(None, lw))
        scoring = self.scoring
        if scoring.isdisjoint(known):
            return NEUTRAL
        hits = [w for w in known if w in scoring]
        # VADER counts "!" and "?" in its emoji-free text: the text's own plus the descriptions'.
        ep_count = text.count("!")
        qm_count = text.count("?")
        if self.emphatic_seen and not text.isascii():  # (every token of a text went through
            # the memo's __missing__ once, which notes these emoji)
            for ch, ep, qm in self.emphatic_emoji:
                if ch in text:
                    found = text.count(ch)
                    ep_count += ep * found
                    qm_count += qm * found
        n = len(lw)
        rule_words = self.rule_words
        if (rule_words.isdisjoint(known) and "this" not in known) or (
            "but" not in known and self._out_of_reach(lw)
        ):
            # No rule applies: each lexicon word keeps its valence, but for ALL CAPS emphasis.
            lexicon = self.lexicon
            for w in hits:
                if type(w) is _Caps:
                    cap_diff = _cap_differential(lw)
                    c_incr = self.c_incr
                    valences = []
                    for w in hits:
                        valence = lexicon[w]
                        if cap_diff and type(w) is _Caps:
                            if valence > 0:
                                valence += c_incr
                            else:
                                valence -= c_incr
                        valences.append(valence)
                    return self._scores([v for v in valences if v], n, ep_count, qm_count)
            # Keyed by the words themselves: their valences follow.
            key = (n, ep_count if ep_count < 4 else 4, qm_count if qm_count < 4 else 4, *hits)
            scores = self.scores.get(key)
            if scores is None:
                scores = _score_valence(list(map(lexicon.__getitem__, hits)), n, ep_count, qm_count)
                if len(self.scores) >= SCORES_MEMO_SIZE:
                    self.scores.clear()
                self.scores[key] = scores
            return scores
        sentiments: list[Any] = [0] * n
        floats_only = self._rules(lw, sentiments)
        if "but" in known:
            # _but_check, verbatim: each value rewrites the first element equal to it.
            bi = lw.index("but")
            for sentiment in sentiments:
                si = sentiments.index(sentiment)
                if si < bi:
                    sentiments.pop(si)
                    sentiments.insert(si, sentiment * 0.5)
                elif si > bi:
                    sentiments.pop(si)
                    sentiments.insert(si, sentiment * 1.5)
        nonzero = [v for v in sentiments if v]
        if floats_only:
            return self._scores(nonzero, n, ep_count, qm_count)
        return _score_valence(nonzero, n, ep_count, qm_count)

    def _out_of_reach(self, lw: list[str]) -> bool:
        """Whether no lexicon word is within reach of a rule (see `_in_reach`)."""
        in_reach = self._in_reach
        n = len(lw)
        for i in compress(range(n), map(self.scoring.__contains__, lw)):
            if in_reach(lw, i, n):
                return False
        return True

    def _in_reach(self, lw: list[str], i: int, n: int) -> bool:
        """Whether a rule may change the valence of the lexicon word `lw[i]`: a rule word among
        the 3 words before it (boosters, negations, "no", "least", "never", "without", special
        case words), "this" right before it, "no" before a lexicon word, "kind" before "of", or a
        word of a special case in it or the 2 words after it. ("but" is a matter of the text.)"""
        if not self.rule_words.isdisjoint(lw[i - 3 if i > 3 else 0 : i]):
            return True
        w = lw[i]
        if i > 0 and lw[i - 1] == "this":
            return True
        if w == "no":
            return i != n - 1 and lw[i + 1] in self.lexicon
        triggers = self.triggers
        return w in triggers or not triggers.isdisjoint(lw[i + 1 : i + 3])

    def _scores(self, nonzero: list[float], n: int, ep_count: int, qm_count: int) -> Scores:
        """`_score_valence`, memoized. The scores depend only on the non-zero sentiments in order
        (floats here), the number of words and the punctuation counts: zeros add nothing to
        `sum` (ints or floats, anywhere, in CPython 3.11's plain or 3.12's compensated sum) and
        count as neutral. Not for int sentiments (special cases such as "the shit": 3), which
        would share a key with the equal float."""
        key = (n, ep_count if ep_count < 4 else 4, qm_count if qm_count < 4 else 4, *nonzero)
        scores = self.scores.get(key)
        if scores is None:
            scores = _score_valence(nonzero, n, ep_count, qm_count)
            if len(self.scores) >= SCORES_MEMO_SIZE:
                self.scores.clear()
            self.scores[key] = scores
        return scores

    def _rules(self, lw: list[str], sentiments: list[Any]) -> bool:
        """`polarity_scores`'s loop and `sentiment_valence` (`_Caps` words are those in caps):
        fills the lexicon words' sentiments; False if one of them is not a float."""
        n = len(lw)
        lexicon = self.lexicon
        scoring = self.scoring
        booster = self.booster
        negate = self.negate
        n_scalar = self.n_scalar
        c_incr = self.c_incr
        cap_diff: bool | None = None
        floats_only = True
        in_reach = self._in_reach
        for i in compress(range(n), map(scoring.__contains__, lw)):
            item_l = lw[i]
            if not in_reach(lw, i, n):
                # No rule within reach: the valence stays the lexicon's, but for ALL CAPS emphasis.
                valence = lexicon[item_l]
                if type(item_l) is _Caps:
                    if cap_diff is None:
                        cap_diff = _cap_differential(lw)
                    if cap_diff:
                        if valence > 0:
                            valence += c_incr
                        else:
                            valence -= c_incr
                sentiments[i] = valence
                continue
            if item_l == "kind" and i < n - 1 and lw[i + 1] == "of":
                continue  # and for "kind" in "kind of"
            valence = lexicon[item_l]
            if item_l == "no" and i != n - 1 and lw[i + 1] in lexicon:
                valence = 0.0
            if (
                (i > 0 and lw[i - 1] == "no")
                or (i > 1 and lw[i - 2] == "no")
                or (i > 2 and lw[i - 3] == "no" and lw[i - 1] in ("or", "nor"))
            ):
                valence = lexicon[item_l] * n_scalar
            if type(item_l) is _Caps:
                if cap_diff is None:
                    cap_diff = _cap_differential(lw)
                if cap_diff:
                    if valence > 0:
                        valence += c_incr
                    else:
                        valence -= c_incr
            for start_i in (0, 1, 2):
                if i <= start_i:
                    break
                j = i - (start_i + 1)
                prev_l = lw[j]
                if prev_l in lexicon:
                    continue
                # scalar_inc_dec(words[j], valence, is_cap_diff)
                s = 0.0
                if prev_l in booster:
                    s = booster[prev_l]
                    if valence < 0:
                        s *= -1
                    if type(prev_l) is _Caps:
                        if cap_diff is None:
                            cap_diff = _cap_differential(lw)
                        if cap_diff:
                            if valence > 0:
                                s += c_incr
                            else:
                                s -= c_incr
                if start_i == 1 and s != 0:
                    s = s * 0.95
                if start_i == 2 and s != 0:
                    s = s * 0.9
                valence = valence + s
                # _negation_check(valence, words_and_emoticons, start_i, i)
                if start_i == 0:
                    if prev_l in negate or "n't" in prev_l:
                        valence = valence * n_scalar
                elif start_i == 1:
                    if lw[i - 2] == "never" and (lw[i - 1] == "so" or lw[i - 1] == "this"):
                        valence = valence * 1.25
                    elif lw[i - 2] == "without" and lw[i - 1] == "doubt":
                        pass  # VADER 3.3.2 leaves "without doubt" unchanged here (its own no-op)
                    elif prev_l in negate or "n't" in prev_l:
                        valence = valence * n_scalar
                else:
                    if (lw[i - 3] == "never" and (lw[i - 2] == "so" or lw[i - 2] == "this")) or (
                        lw[i - 1] == "so" or lw[i - 1] == "this"
                    ):
                        valence = valence * 1.25
                    elif lw[i - 3] == "without" and (lw[i - 2] == "doubt" or lw[i - 1] == "doubt"):
                        pass  # as VADER 3.3.2: "without ... doubt" is not a negation
                    elif prev_l in negate or "n't" in prev_l:
                        valence = valence * n_scalar
                    valence = self._idioms(valence, lw, i, n)
            # _least_check ("least" is not in the 3.3.2 lexicon; kept as written all the same)
            if i > 1 and lw[i - 1] not in lexicon and lw[i - 1] == "least":
                if lw[i - 2] != "at" and lw[i - 2] != "very":
                    valence = valence * n_scalar
            elif i > 0 and lw[i - 1] not in lexicon and lw[i - 1] == "least":
                valence = valence * n_scalar
            if type(valence) is not float:
                floats_only = False
            sentiments[i] = valence
        return floats_only

    def _idioms(self, valence: float, lw: list[str], i: int, n: int) -> float:
        """`_special_idioms_check` (called with i ≥ 3 only)."""
        idiom_words = self.idiom_words
        if idiom_words.isdisjoint(lw[i - 3 : i + 3]):
            return valence  # no n-gram of this window can be a special case or a booster
        special = self.special
        booster = self.booster
        w3, w2, w1, w0 = lw[i - 3], lw[i - 2], lw[i - 1], lw[i]
        onezero = f"{w1} {w0}"
        twoonezero = f"{w2} {w1} {w0}"
        twoone = f"{w2} {w1}"
        threetwoone = f"{w3} {w2} {w1}"
        threetwo = f"{w3} {w2}"
        for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
            if seq in special:
                valence = special[seq]
                break
        if n - 1 > i:
            zeroone = f"{w0} {lw[i + 1]}"
            if zeroone in special:
                valence = special[zeroone]
        if n - 1 > i + 1:
            zeroonetwo = f"{w0} {lw[i + 1]} {lw[i + 2]}"
            if zeroonetwo in special:
                valence = special[zeroonetwo]
        for n_gram in (threetwoone, threetwo, twoone):
            if n_gram in booster:
                valence = valence + booster[n_gram]
        return valence


def _cap_differential(lw: list[str]) -> bool:
    """`allcap_differential`: some but not all words are in caps."""
    caps = 0
    for w in lw:
        if type(w) is _Caps:
            caps += 1
    return 0 < caps < len(lw)


def _score_valence(nonzero: list[Any], n: int, ep_count: int, qm_count: int) -> Scores:
    """`score_valence` with `_punctuation_emphasis`, `normalize` and `_sift_sentiment_scores`, from
    the non-zero sentiments in order and the number of words (the others are zeros)."""
    sum_s = float(sum(nonzero))
    if ep_count > 4:
        ep_count = 4
    ep_amplifier = ep_count * 0.292
    qm_amplifier: float = 0
    if qm_count > 1:
        qm_amplifier = qm_count * 0.18 if qm_count <= 3 else 0.96
    punct_emph_amplifier = ep_amplifier + qm_amplifier
    if sum_s > 0:
        sum_s += punct_emph_amplifier
    elif sum_s < 0:
        sum_s -= punct_emph_amplifier
    compound = sum_s / math.sqrt((sum_s * sum_s) + 15)
    if compound < -1.0:
        compound = -1.0
    elif compound > 1.0:
        compound = 1.0
    pos_sum = 0.0
    neg_sum = 0.0
    for sentiment_score in nonzero:
        if sentiment_score > 0:
            pos_sum += float(sentiment_score) + 1
        else:
            neg_sum += float(sentiment_score) - 1
    neu_count = n - len(nonzero)
    if pos_sum > math.fabs(neg_sum):
        pos_sum += punct_emph_amplifier
    elif pos_sum < math.fabs(neg_sum):
        neg_sum -= punct_emph_amplifier
    total = pos_sum + math.fabs(neg_sum) + neu_count
    return (
        round(math.fabs(neg_sum / total), 3),
        round(math.fabs(neu_count / total), 3),
        round(math.fabs(pos_sum / total), 3),
        round(compound, 4),
    )
