"""Word tokenizer with a top-N vocabulary, for Keras-style text models.

Rules (docs/text.md gives them with examples):

1. HTML tags (``<br />``, ``<p>``, ``<!-- -->``) become a space; then HTML
   entities (``&amp;``) are decoded.
2. Unicode NFKC normalisation (full-width ``ＮＬＰ`` -> ``NLP``, half-width
   katakana -> full width, composed accents), then lower-casing if ``lower``.
3. Typographic apostrophes (U+2019, U+2018, U+02BC) become ``'``.
4. Runs of Han, Hiragana or Katakana characters (scripts written without
   spaces) become one token per character (``cjk="char"``), overlapping
   character bigrams (``cjk="bigram"``) or Chinese words as jieba segments
   them (``cjk="jieba"``, ``toolkit.text.chinese``).
5. Everywhere else a token is a run of letters and digits (any script,
   accents kept) that may continue with combining marks (Devanagari vowel
   signs, Thai tone marks), with apostrophes allowed between two such runs
   (``don't``, ``rock'n'roll``; ``'quoted'`` gives ``quoted``). Everything
   else, including ``_``, ``-``, ``.`` and ``,``, separates tokens and is
   dropped (``7.5/10`` gives ``7``, ``5``, ``10``).

Ids: 0 is padding, 1 is the out-of-vocabulary id, words take 2, 3, ... in
order of decreasing frequency, ties broken by first occurrence in the
training texts.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from itertools import repeat
from typing import Any

from toolkit.text import CJK_MODES

PAD_ID = 0
OOV_ID = 1
FIRST_WORD_ID = 2

CONFIG_TYPE = "toolkit.text.WordTokenizer"
CONFIG_VERSION = 1

# Tags must start with a letter, "/" or "!--" so that "a < b > c" and "<3"
# survive as text.
_TAG_RE = re.compile(r"<(?:/?[A-Za-z][^<>]*|!--.*?--)>", re.DOTALL)

# Scripts written without spaces between words. NFKC has already folded
# half-width katakana (U+FF66-FF9F) into this range. Hangul is not here:
# Korean separates words with spaces.
_CJK_CHARS = (
    "\u3005\u3007"  # 々 iteration mark, 〇 ideographic zero
    "\u3040-\u309f"  # Hiragana
    "\u30a0-\u30ff"  # Katakana, including the prolonged sound mark ー
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\U00020000-\U0003134f"  # CJK Extensions B-G
)
_CJK_RUN_RE = re.compile(f"([{_CJK_CHARS}]+)")


@functools.cache
def _word_re() -> re.Pattern[str]:
    """The regex for words in non-ASCII text (built on first use: ~50 ms)."""
    # [^\W_] is a Unicode letter or digit (str patterns are Unicode-aware by
    # default). Combining marks (categories Mn/Mc/Me) are not \w, yet they are
    # part of words: Devanagari and Thai vowel signs, the viramas of Indic
    # scripts. Python's re has no \p{M}, so their ranges come from
    # unicodedata, which follows the same Unicode version as re.
    # A word part starts with a letter/digit, then letters, digits and marks;
    # written as runs so the engine loops in C over each run. Letters and
    # marks are disjoint, so the nested repeat cannot backtrack badly.
    part = rf"[^\W_]+(?:[{_mark_ranges()}]+[^\W_]*)*"
    # An apostrophe joins two parts: it must be followed by a letter/digit.
    return re.compile(f"{part}(?:'{part})*")


def _mark_ranges() -> str:
    spans: list[tuple[int, int]] = []
    # Outside the first two planes the only marks are the variation
    # selectors supplement, added by hand to keep this loop short.
    for cp in range(0x20000):
        if unicodedata.category(chr(cp))[0] == "M":
            if spans and spans[-1][1] == cp - 1:
                spans[-1] = (spans[-1][0], cp)
            else:
                spans.append((cp, cp))
    spans.append((0xE0100, 0xE01EF))
    return "".join(f"{chr(a)}-{chr(b)}" for a, b in spans)


# Every ASCII character but letters, digits and the apostrophe separates tokens.
_ASCII_SEPARATORS = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum() and c != "'"})

# Typographic apostrophes: right and left single quotes, modifier letter apostrophe.
_APOSTROPHES = ("\u2019", "\u2018", "\u02bc")


def _ascii_tokens(text: str) -> list[str]:
    """``_word_re().findall(text)`` for ASCII text, without the regex engine.

    translate + replace + split run in C over the whole string, about twice
    as fast as findall on IMDb; a test checks both agree on random text.
    """
    text = text.translate(_ASCII_SEPARATORS)
    if "'" in text:
        # Remove every apostrophe that is not between two letters/digits:
        # after "''" -> " " no two apostrophes touch, so the ones left over
        # are exactly those next to a space (the padding covers the ends).
        text = f" {text} ".replace("''", " ").replace("' ", " ").replace(" '", " ")
    return text.split()


def _normalize(text: str, lower: bool) -> str:
    # Each step is skipped when it cannot change the text; most reviews are
    # plain ASCII with no entities, and the checks are C-speed scans.
    if "<" in text:
        text = _TAG_RE.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        # str.replace is much faster than str.translate on non-ASCII text.
        for apostrophe in _APOSTROPHES:
            text = text.replace(apostrophe, "'")
    return text.lower() if lower else text


def _cjk_tokens(run: str, cjk: str) -> list[str]:
    if cjk == "char" or len(run) == 1:
        return list(run)
    if cjk == "jieba":
        from toolkit.text.chinese import segment

        return segment(run)
    return [run[i : i + 2] for i in range(len(run) - 1)]


def tokenize(text: str, *, lower: bool = True, cjk: str = "char") -> list[str]:
    """Split one text into tokens by the rules in this module's docstring."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if cjk not in CJK_MODES:
        raise ValueError(f"cjk must be one of {CJK_MODES}, got {cjk!r}")
    text = _normalize(text, lower)
    if text.isascii():
        return _ascii_tokens(text)
    if not _CJK_RUN_RE.search(text):
        return _word_re().findall(text)
    # re.split with a capturing group alternates: other text, CJK run, ...
    parts = _CJK_RUN_RE.split(text)
    tokens: list[str] = []
    for i, part in enumerate(parts):
        tokens.extend(_cjk_tokens(part, cjk) if i % 2 else _word_re().findall(part))
    return tokens


def _check_texts(texts: Iterable[str]) -> Iterable[str]:
    # A lone string is iterable too, and would silently be read as one text
    # per character.
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be an iterable of str, not a single str; wrap it in a list")
    return texts


class WordTokenizer:
    """Maps texts to lists of word ids with a vocabulary of the most frequent words.

    num_words: keep this many words (None keeps all); ids then run from 0 to
        ``vocab_size - 1`` = ``num_words + 1``. Unlike Keras, the count
        excludes the padding and OOV ids.
    oov: map unknown words to ``OOV_ID`` (1); when False they are dropped.
    lower: lower-case before tokenizing.
    cjk: "char", "bigram" or "jieba", the tokens made from Han/Hiragana/Katakana runs.
    """

    def __init__(
        self, num_words: int | None = None, *, oov: bool = True, lower: bool = True, cjk: str = "char"
    ) -> None:
        # bool is an int subclass; num_words=True is a bug, not 1.
        if num_words is not None and (
            isinstance(num_words, bool) or not isinstance(num_words, int) or num_words < 1
        ):
            raise ValueError(f"num_words must be a positive int or None, got {num_words!r}")
        for name, flag in (("oov", oov), ("lower", lower)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        if cjk not in CJK_MODES:
            raise ValueError(f"cjk must be one of {CJK_MODES}, got {cjk!r}")
        self.num_words = num_words
        self.oov = oov
        self.lower = lower
        self.cjk = cjk
        self._words: list[str] | None = None  # in id order; None until fitted
        self._vocab: dict[str, int] = {}

    def tokenize(self, text: str) -> list[str]:
        """The tokens of one text, before any vocabulary lookup."""
        return tokenize(text, lower=self.lower, cjk=self.cjk)

    def fit(self, texts: Iterable[str]) -> WordTokenizer:
        """Build the vocabulary from ``texts`` (read once; replaces any earlier fit)."""
        counts: Counter[str] = Counter()
        for text in _check_texts(texts):
            counts.update(self.tokenize(text))
        # Counter keeps first-occurrence order and sorted() is stable, so
        # equal counts stay in order of first occurrence: deterministic ids.
        ranked = sorted(counts.items(), key=lambda item: -item[1])
        self._set_words([word for word, _ in ranked[: self.num_words]])
        return self

    def texts_to_sequences(self, texts: Iterable[str]) -> list[list[int]]:
        """One list of ids per text."""
        self._words_or_raise()
        return [self._encode(text) for text in _check_texts(texts)]

    def sequences_to_texts(self, sequences: Iterable[Iterable[int]]) -> list[str]:
        """Inverse lookup, for inspection: padding is skipped, OOV shows as ``<oov>``."""
        words = self._words_or_raise()
        texts = []
        for seq in sequences:
            out = []
            for i in map(int, seq):
                if i == OOV_ID:
                    out.append("<oov>")
                elif FIRST_WORD_ID <= i < FIRST_WORD_ID + len(words):
                    out.append(words[i - FIRST_WORD_ID])
                elif i != PAD_ID:
                    raise ValueError(f"id {i} is not in the vocabulary (ids run 0..{self.vocab_size - 1})")
            texts.append(" ".join(out))
        return texts

    @property
    def vocabulary(self) -> dict[str, int]:
        """word -> id for the kept words (a copy; ids start at 2)."""
        self._words_or_raise()
        return dict(self._vocab)

    @property
    def vocab_size(self) -> int:
        """Number of ids, padding and OOV included: the Embedding table's row count."""
        return FIRST_WORD_ID + len(self._words_or_raise())

    def to_config(self) -> dict[str, Any]:
        """A JSON-serialisable description from which ``from_config`` rebuilds this tokenizer exactly."""
        words = self._words_or_raise()
        return {
            "type": CONFIG_TYPE,
            "version": CONFIG_VERSION,
            "num_words": self.num_words,
            "oov": self.oov,
            "lower": self.lower,
            "cjk": self.cjk,
            # Words in id order: the list position gives the id, so the
            # mapping is stored once and cannot disagree with itself.
            "words": list(words),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> WordTokenizer:
        """Rebuild a tokenizer from ``to_config()`` output; a damaged or foreign config raises ValueError."""
        if not isinstance(config, dict):
            raise ValueError(f"tokenizer config must be a dict, got {type(config).__name__}")
        kind, version = config.get("type"), config.get("version")
        if kind != CONFIG_TYPE:
            raise ValueError(f"not a WordTokenizer config: type is {kind!r}, expected {CONFIG_TYPE!r}")
        if version != CONFIG_VERSION:
            raise ValueError(f"unsupported WordTokenizer config version {version!r} (this code reads {CONFIG_VERSION})")
        expected = {"type", "version", "num_words", "oov", "lower", "cjk", "words"}
        if set(config) != expected:
            missing, extra = sorted(expected - set(config)), sorted(set(config) - expected)
            raise ValueError(f"WordTokenizer config keys differ: missing {missing}, unexpected {extra}")
        try:
            tokenizer = cls(config["num_words"], oov=config["oov"], lower=config["lower"], cjk=config["cjk"])
        except TypeError as exc:
            raise ValueError(f"bad WordTokenizer config: {exc}") from exc
        words = config["words"]
        if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
            raise ValueError("WordTokenizer config: 'words' must be a list of non-empty str")
        if len(set(words)) != len(words):
            raise ValueError("WordTokenizer config: 'words' contains duplicates")
        if tokenizer.num_words is not None and len(words) > tokenizer.num_words:
            raise ValueError(f"WordTokenizer config: {len(words)} words but num_words is {tokenizer.num_words}")
        tokenizer._set_words(list(words))
        return tokenizer

    def _set_words(self, words: list[str]) -> None:
        self._words = words
        self._vocab = {word: i for i, word in enumerate(words, FIRST_WORD_ID)}

    def _words_or_raise(self) -> list[str]:
        if self._words is None:
            raise RuntimeError("WordTokenizer is not fitted: call fit(texts) or use from_config()")
        return self._words

    def tokens_to_ids(self, tokens: list[str]) -> list[int]:
        """The ids of tokens from :meth:`tokenize` (for callers that tokenize once for several models)."""
        self._words_or_raise()
        return self._ids(tokens)

    def _encode(self, text: str) -> list[int]:
        return self._ids(self.tokenize(text))

    def _ids(self, tokens: list[str]) -> list[int]:
        if self.oov:
            # map() with dict.get does the lookups in C: faster than a comprehension.
            return list(map(self._vocab.get, tokens, repeat(OOV_ID, len(tokens))))
        vocab = self._vocab
        return [vocab[t] for t in tokens if t in vocab]

    def __repr__(self) -> str:
        size = "unfitted" if self._words is None else f"{len(self._words)} words"
        return (
            f"WordTokenizer(num_words={self.num_words}, oov={self.oov}, lower={self.lower}, "
            f"cjk={self.cjk!r}; {size})"
        )
