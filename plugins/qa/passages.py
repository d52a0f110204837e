"""Tokens with character offsets, overlapping passages of a document, and BM25 retrieval among them.

A token is a run of word characters, one CJK character, or one other
non-space symbol, so every answer span maps back to ``context[start:end]``.
A long document becomes windows of ``window`` tokens that overlap by
``overlap`` tokens, so an answer cut by one window's edge is whole in the
next; BM25 (Robertson's weighting, k1=1.2, b=0.75) ranks the windows
against the question, and only the best ones go to the span scorer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import NamedTuple

CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
TOKEN = re.compile(rf"[{CJK}]|(?:(?![{CJK}])\w)+|[^\w\s]")

# Function words carry no evidence of where an answer is; question words
# ("what", "who") never occur near one either.
STOPWORDS = frozenset(
    """a an the of in on at to for from by with and or but is are was were be been being has have had do does
    did what which who whom whose when where why how that this these those it its as into than then there their
    they he she his her him i you we our your not no can could would should will shall may might must about
    after before over under between during through s""".split()
)


class Token(NamedTuple):
    text: str
    start: int
    end: int


class Passage(NamedTuple):
    first: int  # index of its first token in the document
    last: int  # one past its last token
    start: int  # character offsets of the span it covers
    end: int


def tokenize(text: str) -> list[Token]:
    return [Token(m.group(), m.start(), m.end()) for m in TOKEN.finditer(text)]


def content_terms(tokens: list[Token]) -> list[str]:
    """Lower-cased tokens that are neither stopwords nor punctuation: the terms retrieval compares."""
    return [t for t in (tok.text.lower() for tok in tokens) if t not in STOPWORDS and (t[0].isalnum() or t[0] == "_")]


def split_passages(tokens: list[Token], window: int, overlap: int) -> list[Passage]:
    """Windows of at most ``window`` tokens, each starting ``window - overlap`` tokens after the previous one."""
    if window < 1 or not 0 <= overlap < window:
        raise ValueError(f"need window >= 1 and 0 <= overlap < window, not window={window}, overlap={overlap}")
    if not tokens:
        return []
    step = window - overlap
    passages = []
    first = 0
    while True:
        last = min(first + window, len(tokens))
        passages.append(Passage(first, last, tokens[first].start, tokens[last - 1].end))
        if last == len(tokens):
            return passages
        first += step


def bm25_scores(query: list[str], documents: list[list[str]], k1: float = 1.2, b: float = 0.75) -> list[float]:
    """BM25 score of each document (a list of terms) for ``query``, with document frequencies from ``documents``."""
    if not documents:
        return []
    counts = [Counter(doc) for doc in documents]
    average = sum(len(doc) for doc in documents) / len(documents) or 1.0
    n = len(documents)
    scores = []
    terms = set(query)
    df = {term: sum(1 for c in counts if term in c) for term in terms}
    for doc, count in zip(documents, counts):
        norm = k1 * (1.0 - b + b * len(doc) / average)
        score = 0.0
        for term in terms:
            tf = count.get(term, 0)
            if tf:
                idf = math.log(1.0 + (n - df[term] + 0.5) / (df[term] + 0.5))
                score += idf * tf * (k1 + 1.0) / (tf + norm)
        scores.append(score)
    return scores


def uncovered(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The character ranges of ``text`` outside every span, white-space-only gaps left out."""
    gaps, cursor = [], 0
    for start, end in [*sorted(spans), (len(text), len(text))]:
        if start > cursor and text[cursor:start].strip():
            gaps.append((cursor, start))
        cursor = max(cursor, end)
    return gaps
