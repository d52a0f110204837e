"""A rule-based sentence splitter that keeps character offsets.

No model and no dependency: good enough for lead-style summaries and for
cutting documents into sentences before a neural engine sees them. Every
sentence is a span of the original text, so ``text[s.start:s.end] == s.text``.

Rules, in order:
- a blank line ends a paragraph and therefore a sentence; so does a line
  break before a bullet (``-``, ``*``, ``•``, ``1.``) and after a short line
  without end punctuation (a heading);
- CJK terminals 。！？ end a sentence at once, closing quotes included;
- ``!``, ``?``, ``…`` and ``.`` end one when followed by white space and a
  character that is not a lower-case letter; a single ``.``, ``!`` or ``?``
  standing alone after a word, as in tokenized, lower-cased text
  (``the plane crashed . the crew``), ends one whatever follows (a spaced
  ``...`` before a lower-case word does not: it is prose);
- a ``.`` does not end one after a known abbreviation (Mr., Dr., e.g., U.S.,
  Jan., ...), after a single initial (J. Smith), or inside a number (3.14),
  since it is then not followed by white space.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Sentence(NamedTuple):
    text: str
    start: int
    end: int


# Lower-cased, without the final dot. "etc" is deliberately absent: it ends
# sentences more often than not, and a lower-case next word keeps it joined.
ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt ft rev gen col lt sgt capt cmdr gov sen rep pres hon
    vs v e.g i.e cf al approx ca est dept univ assn bros corp inc ltd co no nos vol vols
    fig figs eq eqs ch sec pp p ed eds op viz
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun
    u.s u.s.a u.k u.n e.u a.m p.m d.c ph.d m.d b.a m.a b.sc m.sc
    """.split()
)

CLOSERS = "\"'”’»)]}」』）"
CJK_TERMINALS = "。！？"
TERMINALS = ".!?…" + CJK_TERMINALS
BULLET = re.compile(r"(?:[-*•–]|\d{1,3}[.)])\s")
# A run of terminals and the closing quotes or brackets after it: the only
# places a sentence may end (found by the regex engine, not a Python loop
# over every character, which was a third of a news article's summary time).
TERMINAL_RUN = re.compile(f"[{re.escape(TERMINALS)}]+[{re.escape(CLOSERS)}]*")
HEADING_MAX = 60


def split_sentences(text: str) -> list[Sentence]:
    """The sentences of ``text``, in order, stripped of surrounding white space."""
    sentences: list[Sentence] = []
    for start, end in _paragraphs(text):
        begin = start
        for cut in _cuts(text, start, end):
            _append(sentences, text, begin, cut)
            begin = cut
        _append(sentences, text, begin, end)
    return sentences


def _append(sentences: list[Sentence], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        sentences.append(Sentence(text[start:end], start, end))


def _paragraphs(text: str) -> list[tuple[int, int]]:
    """Spans between hard breaks: blank lines, bullets, headings."""
    spans = []
    start = 0
    line_start = 0
    for match in re.finditer(r"\n", text):
        cut = match.end()
        line = text[line_start : match.start()].strip()
        line_start = cut
        next_end = text.find("\n", cut)
        next_line = text[cut : len(text) if next_end < 0 else next_end]
        heading = bool(line) and len(line) <= HEADING_MAX and line[-1] not in TERMINALS + CLOSERS + ",;:"
        if not next_line.strip() or not line or BULLET.match(next_line.lstrip()) or (heading and _starts_upper(next_line)):
            spans.append((start, cut))
            start = cut
    spans.append((start, len(text)))
    return spans


def _starts_upper(line: str) -> bool:
    stripped = line.lstrip()
    return bool(stripped) and (stripped[0].isupper() or stripped[0].isdigit())


def _cuts(text: str, start: int, end: int) -> list[int]:
    cuts = []
    for run in TERMINAL_RUN.finditer(text, start, end):
        i, j = run.span()
        if any(c in CJK_TERMINALS for c in text[i:j]) or _ends_latin_sentence(text, i, j, end):
            cuts.append(j)
    return cuts


def _detached(text: str, first: int) -> bool:
    """A terminal standing alone after a word (``crashed . the``): tokenized text, where it ends a sentence whatever follows."""
    return first >= 2 and text[first - 1] == " " and (text[first - 2].isalnum() or text[first - 2] in CLOSERS)


def _ends_latin_sentence(text: str, first: int, after: int, end: int) -> bool:
    """Whether the terminal run text[first:after] ends a sentence."""
    k = after
    while k < end and text[k].isspace():
        k += 1
    if k == after:
        return after == end
    if k < end and text[k].islower() and not (after - first == 1 and _detached(text, first)):
        return False
    if text[first:after].rstrip(CLOSERS) == ".":
        w = first
        while w > 0 and (text[w - 1].isalnum() or text[w - 1] in "._"):
            w -= 1
        word = text[w:first]
        if word.lower().rstrip(".") in ABBREVIATIONS:
            return False
        if len(word) == 1 and word.isupper():
            return False
    return True
