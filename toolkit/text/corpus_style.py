"""How a training corpus writes text, and plain text to and from it, for models that write text.

Corpora of language models are often tokenized. DailyDialog sets punctuation
apart (``Say , Jim , how about it ?``): style ``spaced``. WikiText also splits
clitics (``city 's``, ``wasn 't``) and marks hyphens and number separators
inside words (``role @-@ playing``, ``10 @,@ 000``, ``3 @.@ 5``): style
``wikitext``. A model learns to write its corpus's style; a user writes and
reads plain text (style ``plain``: left as it is). :func:`to_style` turns a
prompt into the corpus's style, so that the model reads what it was trained
on, and :func:`from_style` turns what the model wrote back into plain text.

:func:`from_style` decides each token's spacing from the token and those
before it only, never from what follows, so that the plain text of a
corpus-style text is a prefix of the plain text of any continuation of it,
as long as the text ends with a whole token (:func:`whole_tokens`). A
stream of generated text relies on it.

sacremoses (the Moses tokenizer and detokenizer) does most of this, but
importing it takes 0.31 s on the development machine (it brings in joblib and
compiles large Unicode tables), against some 0.4 s for a whole one-shot
``nlp-tool generate``, and it knows neither WikiText's marks nor a text that
grows.
"""

from __future__ import annotations

import copy
import re
from typing import Sequence

from toolkit.text.sentences import ABBREVIATIONS

STYLES = ("plain", "spaced", "wikitext")

# Corpus-style pieces a model of the style must never write: WikiText's word for a rare word.
NEVER_WRITTEN = {"wikitext": ("<unk>",)}

_OPENING = frozenset("([{$£€#“‘")
_CLOSING = frozenset([",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "...", "..", "…", "”"])
_APOSTROPHES = frozenset(["'", "’"])
_CLITICS = frozenset(["s", "t", "m", "re", "ve", "ll", "d"])
_JOINERS = {"@-@": "-", "@,@": ",", "@.@": "."}

# A chunk's punctuation at its start (opening marks) and at its end (closing marks, runs of dots).
# A leading apostrophe stays: it begins more names and elisions (O 'Neill in WikiText, 'em) than quotes.
_LEADING = re.compile(r"""^(?:["(\[{$£€#“‘])""")
_TRAILING = re.compile(r"""(?:\.{2,}|…|["),.;:!?\]}%”’'])$""")
_INITIALS = re.compile(r"(?:[A-Za-z]\.)+")
_WIKI_CLITIC = re.compile(r"^(.*[A-Za-z])(['’](?:s|t|m|re|ve|ll|d))$", re.IGNORECASE)
_WIKI_INSIDE = re.compile(r"(?<=\w)-(?=\w)|(?<=\d),(?=\d{3}(?!\d))|(?<=\d)\.(?=\d)")


def detect_style(texts: Sequence[str], sample: int = 2000) -> str:
    """The style of a corpus, from up to ``sample`` of its texts spread over it: ``wikitext`` when its words
    carry WikiText's marks, ``spaced`` when nine in ten of its commas and full stops stand apart, ``plain``
    otherwise."""
    marks = apart = joined = 0
    for text in texts[::max(1, len(texts) // sample)][:sample]:
        marks += text.count(" @-@ ") + text.count(" @,@ ") + text.count(" @.@ ")
        for token in text.split():
            if token in (",", "."):
                apart += 1
            elif token[-1] in ",." and len(token) > 1 and not _dotted(token):
                joined += 1
    if apart < 10 or apart < 9 * joined:
        return "plain"
    return "wikitext" if marks else "spaced"


def to_style(text: str, style: str) -> str:
    """Plain ``text`` as a corpus of ``style`` writes it, line by line; text already in the style stays as it is."""
    if style == "plain":
        return text
    return "\n".join(" ".join(token for chunk in line.split() for token in _split(chunk, style))
                     for line in text.split("\n"))


def _split(chunk: str, style: str) -> list[str]:
    """The tokens of one whitespace-delimited chunk of plain text."""
    if chunk in _JOINERS or len(chunk) == 1 or chunk[:1] in _APOSTROPHES and chunk[1:].lower() in _CLITICS:
        return [chunk]  # a token of the style already
    head: list[str] = []
    tail: list[str] = []
    while len(chunk) > 1 and (lead := _LEADING.match(chunk)):
        head.append(lead[0])
        chunk = chunk[1:]
    while len(chunk) > 1 and not _dotted(chunk) and (trail := _TRAILING.search(chunk)):
        if trail[0] in _APOSTROPHES and style != "wikitext":
            break  # DailyDialog keeps a word's apostrophe (its "don't")
        tail.insert(0, trail[0])
        chunk = chunk[:trail.start()]
    if style == "wikitext":
        clitic = _WIKI_CLITIC.match(chunk)
        words = [clitic[1], clitic[2]] if clitic else [chunk]
        words = [part for word in words for part in _WIKI_INSIDE.sub(lambda m: f" @{m[0]}@ ", word).split()]
    else:
        words = [chunk]
    return [token for token in (*head, *words, *tail) if token]


def _dotted(word: str) -> bool:
    """Whether the period at the end of ``word`` is part of it: initials (U.S., A.) and the abbreviations the
    sentence splitter knows (Mr., e.g., Bros.)."""
    return word.endswith(".") and (word[:-1].lower() in ABBREVIATIONS or _INITIALS.fullmatch(word) is not None)


def whole_tokens(text: str) -> str:
    """``text`` up to its last white space: the tokens no continuation can change (the last one may yet grow)."""
    cut = max(text.rfind(" "), text.rfind("\n"))
    return text[:cut + 1] if cut >= 0 else ""


class _State:
    """What the spacing of the next token depends on: the token before it and whether a quote is open."""

    def __init__(self) -> None:
        self.new_line()

    def new_line(self) -> None:
        self.previous = ""
        self.glue_next = True  # no space before the next token (start of a line, after an opening mark)
        self.quote_open = False
        self.apostrophe = False  # the previous token was an apostrophe joined to a word

    def spacing(self, token: str, style: str) -> tuple[str, str]:
        """The space before ``token`` ("" or " ") and how it is written; updates the state past it."""
        glue, written, glue_next, apostrophe = self.glue_next, token, False, False
        if style == "wikitext" and token in _JOINERS:
            glue, written, glue_next = True, _JOINERS[token], True
        elif token == '"':
            glue = glue or self.quote_open
            glue_next = not self.quote_open
            self.quote_open = not self.quote_open
        elif token in _CLOSING or token[:1] in _APOSTROPHES and token[1:].lower() in _CLITICS or token == "n't":
            glue = True
        elif token in _APOSTROPHES:
            apostrophe = glue = self.previous[-1:].isalpha()
        elif self.apostrophe and token.lower() in _CLITICS:
            glue = True
        elif token in _OPENING:
            glue_next = True
        self.previous, self.glue_next, self.apostrophe = token, glue_next, apostrophe
        return ("" if glue else " "), written


_PARTS = re.compile(r"[ \n]+|[^ \n]+")


class PlainText:
    """The plain text of a corpus-style text that grows at its end: a model's continuation of ``before``.

    Call it with the whole text so far each time; the tokens followed by
    white space are written once and kept (:attr:`settled` characters of
    plain text that no continuation changes), the last one again at each
    call. White space at the start of the text separates it from
    ``before``, as in a model's continuation; without any, its first token
    goes on the word before it. Spaces become single spaces where the style
    wants them; line breaks stay.
    """

    def __init__(self, style: str, before: str = "") -> None:
        if style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(STYLES)}, not {style!r}")
        self.style = style
        self._state = _State()
        for token in before.rsplit("\n", 1)[-1].split():
            self._state.spacing(token, style)
        self._read = 0  # characters of the corpus-style text written for good
        self._written = ""  # their plain text
        self._space = ""  # the white space after the last token written for good
        self.settled = 0  #: how many characters at the start of the plain text no continuation can change

    def __call__(self, text: str) -> str:
        if self.style == "plain":
            self.settled = len(text)
            return text
        whole = len(whole_tokens(text))
        if whole > self._read:
            written, self._space = self._write(text[self._read:whole], self._state, self._space)
            self._written += written
            self._read = whole
            self.settled = len(self._written)
        # The last token is written on a copy of the state: the next call may find it grown.
        return self._written + self._write(text[self._read:], copy.copy(self._state), self._space)[0]

    def _write(self, text: str, state: _State, space: str) -> tuple[str, str]:
        """The plain text of ``text`` after white space ``space``, and the white space it ends with."""
        out = []
        for part in _PARTS.findall(text):
            if part[0] in " \n":
                space += part
                if "\n" in part:
                    out.append("\n" * part.count("\n"))
                    state.new_line()
                    space = ""
                continue
            separator, written = state.spacing(part, self.style)
            out.append((separator if space else "") + written)
            space = ""
        return "".join(out), space


def from_style(text: str, style: str, before: str = "") -> str:
    """``text``, written in ``style``, as plain text; ``before`` is the corpus-style text it continues (a
    prompt), whose last line sets the spacing of ``text``'s first token (see :class:`PlainText`)."""
    return PlainText(style, before)(text)
