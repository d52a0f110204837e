"""Greedy ROUGE oracle: which sentences of an article best rebuild its reference summary.

The labels of the trained summarizer. Sentences are added one at a time,
each time the one that most increases ROUGE-1 F1 + ROUGE-2 F1 against the
reference, until no sentence increases it (Nallapati et al. 2017, Liu &
Lapata 2019). n-gram counts are plain Counters and each step only adds one
sentence's counts, so a whole corpus is labelled in seconds, where calling
rouge-score for every candidate at every step would take hours.

Tokens follow rouge-score where it matters for English — lower case, runs of
letters and digits, Porter stems of words longer than three letters — but a
token is ``common.WORD``: any script counts, and one CJK character is one
token, so the oracle also labels text that rouge-score's ASCII tokenizer
would see as empty.
"""

from __future__ import annotations

import functools
from collections import Counter

from toolkit_plugins.summarization.common import WORD

Grams = tuple[Counter, Counter]


@functools.cache
def _stemmer():
    # rouge-score's own stemmer (nltk ships with it), so the labels aim at the metric.
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


@functools.lru_cache(maxsize=2**16)
def _stem(token: str) -> str:
    if len(token) > 3 and token.isascii() and token.isalpha():
        return _stemmer().stem(token)
    return token


def tokens(text: str) -> list[str]:
    """Lower-cased, stemmed tokens of ``text`` as the oracle counts them."""
    return [_stem(t) for t in WORD.findall(text.lower())]


def grams(text: str) -> Grams:
    """Unigram and bigram counts of ``text``."""
    words = tokens(text)
    return Counter(words), Counter(zip(words, words[1:]))


def _f1(overlap: int, predicted: int, reference: int) -> float:
    if overlap == 0:
        return 0.0
    precision, recall = overlap / predicted, overlap / reference
    return 2 * precision * recall / (precision + recall)


def _gain(chosen: Counter, candidate: Counter, reference: Counter) -> int:
    """How much adding ``candidate``'s counts to ``chosen`` raises the clipped overlap with ``reference``."""
    gain = 0
    for gram, count in candidate.items():
        limit = reference.get(gram, 0)
        if limit:
            have = chosen.get(gram, 0)
            gain += min(have + count, limit) - min(have, limit)
    return gain


def oracle(sentences: list[str], reference: str) -> list[int]:
    """Indices of ``sentences`` chosen greedily for ROUGE-1 + ROUGE-2 F1 against ``reference``, in the order chosen.

    Empty when no sentence shares a word with the reference. Bigrams do not
    span two chosen sentences, as in the usual oracle implementations.
    """
    ref1, ref2 = grams(reference)
    total1, total2 = sum(ref1.values()), sum(ref2.values())
    if not total1:
        return []
    candidates = [grams(s) for s in sentences]
    sizes = [(sum(c1.values()), sum(c2.values())) for c1, c2 in candidates]
    chosen: list[int] = []
    have1, have2 = Counter(), Counter()
    overlap1 = overlap2 = length1 = length2 = 0
    best = 0.0
    while True:
        pick, pick_score = None, best
        for i, (c1, c2) in enumerate(candidates):
            if i in chosen or not sizes[i][0]:
                continue
            o1 = overlap1 + _gain(have1, c1, ref1)
            o2 = overlap2 + _gain(have2, c2, ref2)
            score = _f1(o1, length1 + sizes[i][0], total1) + _f1(o2, length2 + sizes[i][1], total2 or 1)
            if score > pick_score:
                pick, pick_score = i, score
        if pick is None:
            return chosen
        c1, c2 = candidates[pick]
        overlap1 += _gain(have1, c1, ref1)
        overlap2 += _gain(have2, c2, ref2)
        have1.update(c1)
        have2.update(c2)
        length1 += sizes[pick][0]
        length2 += sizes[pick][1]
        best = pick_score
        chosen.append(pick)


def rouge12(chosen: list[str], reference: str) -> float:
    """ROUGE-1 F1 + ROUGE-2 F1 of the sentences ``chosen`` against ``reference``, counted as the oracle counts."""
    ref1, ref2 = grams(reference)
    have1, have2 = Counter(), Counter()
    for sentence in chosen:
        c1, c2 = grams(sentence)
        have1.update(c1)
        have2.update(c2)
    return (_f1(sum((have1 & ref1).values()), sum(have1.values()), sum(ref1.values()))
            + _f1(sum((have2 & ref2).values()), sum(have2.values()), sum(ref2.values())))
