"""Near-duplicate texts, by the Jaccard similarity of their word 8-gram sets.

Used wherever a script splits data into parts that must not share a text
(train / validation / test): a test text that repeats, or nearly repeats, a
training text measures memory, not skill. Two texts are near duplicates when
the sets of their lower-cased word n-grams (``n`` = 8 by default) have a
Jaccard similarity of at least ``threshold`` (0.9); identical texts have 1.
A text of fewer than ``n`` words is one n-gram of all its words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

NGRAM = 8
THRESHOLD = 0.9
_WORD = re.compile(r"\w+")


def shingles(text: str, n: int = NGRAM) -> frozenset[int]:
    """The hashed word n-grams of ``text`` (lower-cased runs of letters and digits)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return frozenset([hash(tuple(words))]) if words else frozenset()
    # hash() of a tuple of str is stable within one process, which is all a comparison needs.
    return frozenset(hash(tuple(words[i : i + n])) for i in range(len(words) - n + 1))


def near_duplicates(
    texts: Sequence[str],
    others: Sequence[str] | None = None,
    *,
    n: int = NGRAM,
    threshold: float = THRESHOLD,
) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, jaccard)`` with ``jaccard >= threshold``, sorted by ``i`` then ``j``.

    With ``others``, ``texts[i]`` nearly repeats ``others[j]``; without,
    ``texts[i]`` nearly repeats an earlier text ``texts[j]`` (``j < i``), so
    dropping every ``i`` of the pairs keeps the first of each group. Empty
    texts (no word) repeat nothing.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], not {threshold}")
    queries = [shingles(text, n) for text in texts]
    targets = queries if others is None else [shingles(text, n) for text in others]
    index: dict[int, list[int]] = {}
    if others is not None:
        for j, grams in enumerate(targets):
            for gram in grams:
                index.setdefault(gram, []).append(j)
    pairs = []
    for i, grams in enumerate(queries):
        shared = Counter(j for gram in grams for j in index.get(gram, ()))
        for j, count in sorted(shared.items()):
            jaccard = count / (len(grams) + len(targets[j]) - count)
            if jaccard >= threshold:
                pairs.append((i, j, jaccard))
        if others is None:
            for gram in grams:
                index.setdefault(gram, []).append(i)
    return pairs
