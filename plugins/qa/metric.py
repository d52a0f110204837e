"""Exact match and F1 of answers, with the normalisation of the official SQuAD v1.1 evaluation script.

The official script lower-cases, removes punctuation (``string.punctuation``)
and the articles a/an/the, and collapses white space; F1 is over the bag of
the remaining tokens; a question with several reference answers scores its
best match. These functions follow it line for line so that the numbers can
be compared with published ones.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the official order of the steps)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction: str, truth: str) -> float:
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(truth).split()
    common = Counter(predicted) & Counter(expected)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(predicted)
    recall = same / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """Exact match and F1 in percent, each the mean over questions of the best score against any reference."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} questions")
    if not predictions:
        raise ValueError("no questions to score")
    em = sum(max(exact_match(p, t) for t in truths) for p, truths in zip(predictions, references))
    f = sum(max(f1(p, t) for t in truths) for p, truths in zip(predictions, references))
    return {"exact_match": 100.0 * em / len(predictions), "f1": 100.0 * f / len(predictions)}
