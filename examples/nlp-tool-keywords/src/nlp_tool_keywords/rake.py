"""RAKE keyword extraction (Rose, Engel, Cramer & Cowley, "Automatic keyword
extraction from individual documents", 2010), in plain Python.

This module knows nothing of nlp-tool: it is the algorithm alone, so that it
can be read, tested and reused on its own. ``engine.py`` wraps it for the
registry.

The method, in three steps:

1. Candidate phrases are the maximal runs of content words. A run ends at a
   stopword, a number, punctuation or a line break.
2. Each word gets a score deg(w) / freq(w): freq(w) counts its occurrences in
   candidates; deg(w) adds up the lengths (in words) of the candidates it
   occurs in. Words that tend to appear inside longer phrases score higher.
3. A phrase scores the sum of its word scores; equal phrases (ignoring case)
   are one keyword, located at their first occurrence.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from nlp_tool_keywords.stopwords import STOPWORDS

# A word: letters/digits (any script), with inner apostrophes or hyphens kept,
# so "don't" and "state-of-the-art" stay whole.
_WORD = re.compile(r"\w+(?:['\u2019-]\w+)*")

# The characters str.splitlines() breaks on. A gap holding one of them ends a
# phrase, so every keyword is a one-line span of the input.
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


@dataclass(frozen=True)
class Keyword:
    """One keyword: its text as written, its score, and its span in the input."""

    text: str
    score: float
    start: int
    end: int


@dataclass(frozen=True)
class Phrase:
    """A candidate phrase: its words (lower-cased) and its span in the input."""

    words: tuple[str, ...]
    start: int
    end: int


def _normalise(word: str) -> str:
    # Curly and straight apostrophes are one character for stopword lookup.
    return word.lower().replace("\u2019", "'")


def _is_delimiter(word: str) -> bool:
    # Numbers alone are rarely keywords ("2010", "3"); RAKE drops them too.
    return word in STOPWORDS or word.replace("'", "").replace("-", "").isdigit()


def _joins(gap: str) -> bool:
    """True when the text between two words keeps them in one phrase: only
    spaces or tabs, no punctuation and no line break."""
    return gap.isspace() and not any(ch in _LINE_BREAKS for ch in gap)


def candidate_phrases(text: str) -> list[Phrase]:
    """The maximal runs of content words of ``text``, in order of appearance."""
    phrases: list[Phrase] = []
    words: list[str] = []
    start = end = 0

    def close() -> None:
        if words:
            phrases.append(Phrase(tuple(words), start, end))
            words.clear()

    for match in _WORD.finditer(text):
        word = _normalise(match.group())
        if _is_delimiter(word):
            close()
            continue
        if words and not _joins(text[end : match.start()]):
            close()
        if not words:
            start = match.start()
        words.append(word)
        end = match.end()
    close()
    return phrases


def extract_keywords(text: str, top_k: int = 5, max_words: int = 3) -> list[Keyword]:
    """The ``top_k`` best RAKE keywords of ``text``, best first.

    Candidates longer than ``max_words`` words are dropped before scoring, as
    rake-nltk does: RAKE favours long phrases, and a whole clause of content
    words is rarely a useful keyword. Ties are broken by position, so the
    output is deterministic.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if max_words < 1:
        raise ValueError(f"max_words must be at least 1, got {max_words}")

    phrases = [p for p in candidate_phrases(text) if len(p.words) <= max_words]

    frequency: dict[str, int] = defaultdict(int)
    degree: dict[str, int] = defaultdict(int)
    for phrase in phrases:
        for word in phrase.words:
            frequency[word] += 1
            degree[word] += len(phrase.words)
    word_score = {word: degree[word] / frequency[word] for word in frequency}

    # One keyword per distinct phrase, kept at its first occurrence.
    first: dict[tuple[str, ...], Phrase] = {}
    for phrase in phrases:
        first.setdefault(phrase.words, phrase)

    keywords = [
        Keyword(
            text=text[p.start : p.end],
            score=round(sum(word_score[w] for w in p.words), 4),
            start=p.start,
            end=p.end,
        )
        for p in first.values()
    ]
    keywords.sort(key=lambda k: (-k.score, k.start))
    return keywords[:top_k]
