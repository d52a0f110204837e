"""toolkit.text.duplicates: the indexed search against a pairwise reference."""

import math
import random

import pytest

from toolkit.text.duplicates import near_duplicates, shingles


def pairwise(texts, others=None, n=8, threshold=0.9):
    sets = [shingles(t, n) for t in texts]
    targets = sets if others is None else [shingles(t, n) for t in others]
    pairs = []
    for i, a in enumerate(sets):
        for j, b in enumerate(targets):
            if (others is None and j >= i) or not a or not b:
                continue
            jaccard = len(a & b) / len(a | b)
            if jaccard >= threshold:
                pairs.append((i, j, jaccard))
    return pairs


def corpus(rng, count, words=40):
    vocab = [f"w{k}" for k in range(30)]
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, words))) for _ in range(count)]
    # Copies, copies with one word changed at the end, and copies with different case and spacing.
    for _ in range(count // 3):
        source = rng.choice(texts).split()
        if source and rng.random() < 0.5:
            source[-1] = "changed"
        texts.append(("  ".join(source)).upper() if rng.random() < 0.3 else " ".join(source))
    rng.shuffle(texts)
    return texts


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n,threshold", [(8, 0.9), (3, 0.5), (1, 0.95)])
def test_matches_pairwise_reference(seed, n, threshold):
    rng = random.Random(seed)
    texts, others = corpus(rng, 40), corpus(rng, 30)
    same(near_duplicates(texts, n=n, threshold=threshold), pairwise(texts, n=n, threshold=threshold))
    same(near_duplicates(texts, others, n=n, threshold=threshold), pairwise(texts, others, n=n, threshold=threshold))


def same(got, want):
    assert [(i, j) for i, j, _ in got] == [(i, j) for i, j, _ in want]
    assert all(math.isclose(a, b) for (_, _, a), (_, _, b) in zip(got, want))


def test_exact_and_near_copies():
    base = " ".join(f"word{k}" for k in range(100))
    near = base.replace("word99", "other")          # 92 of the 93 8-grams shared
    far = base.replace("word50", "other")           # 8 of the 93 8-grams lost
    texts = [base, "Something else entirely.", base.upper(), near, far]
    assert [(i, j) for i, j, _ in near_duplicates(texts)] == [(2, 0), (3, 0), (3, 2)]
    assert near_duplicates(["", "short text", "Short  text!"]) == [(2, 1, 1.0)]


def test_bad_arguments():
    with pytest.raises(ValueError, match="threshold"):
        near_duplicates(["a"], threshold=0)
    with pytest.raises(ValueError, match="n must be"):
        shingles("a b", 0)
