"""Word vectors learned from unlabeled text: PPMI co-occurrence, then a truncated SVD (Levy, Goldberg & Dagan 2015).

No pre-trained embeddings exist offline. A model that learns its word
vectors from its labels alone sees most words in a few documents; counting
which words occur near which over the training texts themselves (or any
other text) gives every vocabulary word a distributional vector before
training starts:

1. co-occurrence counts within ``window`` tokens either side, weighted
   ``(window - d + 1) / window`` by distance ``d`` (the expected weight of
   word2vec's dynamic window). Ids below ``first`` (padding, unknown) keep
   their positions, so they still separate the words around them, but count
   nothing; counts never cross from one sequence to the next.
2. positive PMI with context-distribution smoothing: context counts raised
   to 0.75 before normalising, which keeps rare contexts from getting the
   huge PMI values that otherwise dominate.
3. a randomized truncated SVD to ``dim`` components; the vectors are
   ``U * sqrt(S)`` (eigenvalue weighting 0.5, which the paper found better
   than U * S for similarity).

Callers tokenize; this module works on id sequences (for instance
``WordTokenizer.texts_to_sequences``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

WINDOW = 5
SMOOTHING = 0.75


def cooccurrence(sequences: Iterable[Sequence[int]], vocab_size: int, window: int = WINDOW,
                 first: int = 0) -> tuple[sparse.csr_matrix, int]:
    """Symmetric distance-weighted co-occurrence counts (vocab_size square, sparse) and the number of tokens read."""
    from scipy import sparse

    if window < 1:
        raise ValueError(f"the window must be at least 1, not {window}")
    parts = [np.asarray(s, dtype=np.int64) for s in sequences]
    tokens = sum(len(p) for p in parts)
    counts = sparse.csr_matrix((vocab_size, vocab_size), dtype=np.float64)
    if not tokens:
        return counts, 0
    ids = np.concatenate(parts)
    if ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(f"ids must be in [0, {vocab_size}), found {ids.min()} to {ids.max()}")
    doc = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
    for offset in range(1, window + 1):
        left, right = ids[:-offset], ids[offset:]
        keep = (doc[:-offset] == doc[offset:]) & (left >= first) & (right >= first)
        weight = (window - offset + 1) / window
        pairs = sparse.coo_matrix((np.full(int(keep.sum()), weight), (left[keep], right[keep])),
                                  shape=(vocab_size, vocab_size))
        counts = counts + pairs.tocsr()  # tocsr sums the duplicate pairs
    return (counts + counts.T).tocsr(), tokens


def ppmi(counts: sparse.spmatrix, smoothing: float = SMOOTHING) -> sparse.csr_matrix:
    """Positive pointwise mutual information of a co-occurrence matrix, context counts raised to ``smoothing``."""
    from scipy import sparse

    counts = sparse.csr_matrix(counts, dtype=np.float64)
    counts.eliminate_zeros()
    total = counts.sum()
    if total <= 0:
        raise ValueError("no two vocabulary words occur near each other in the text: no word vectors can be learned")
    word_p = np.asarray(counts.sum(axis=1)).ravel() / total
    context = np.asarray(counts.sum(axis=0)).ravel() ** smoothing
    context_p = context / context.sum()
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    pmi = np.log(counts.data / total) - np.log(word_p[rows]) - np.log(context_p[counts.indices])
    out = sparse.csr_matrix((np.maximum(pmi, 0.0), counts.indices.copy(), counts.indptr.copy()), shape=counts.shape)
    out.eliminate_zeros()
    return out


def svd_vectors(matrix: sparse.spmatrix, dim: int, seed: int = 0) -> np.ndarray:
    """``U * sqrt(S)`` of the rank-``dim`` randomized SVD of ``matrix``: one row per word."""
    from sklearn.utils.extmath import randomized_svd

    if not 1 <= dim < min(matrix.shape):
        raise ValueError(f"need 1 <= dim < {min(matrix.shape)} (the vocabulary size), not dim={dim}")
    u, s, _ = randomized_svd(matrix, dim, n_iter=5, random_state=seed)
    return (u * np.sqrt(s)).astype(np.float32)


def word_vectors(sequences: Iterable[Sequence[int]], vocab_size: int, dim: int, *, window: int = WINDOW,
                 first: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """PPMI + SVD vectors for the ids ``first`` .. ``vocab_size - 1`` of ``sequences``.

    Returns ``(vectors, known, report)``: vectors of shape (vocab_size, dim),
    zero for ids below ``first`` and for words that never occur near another
    word; ``known`` is True where an id got a vector; the report says how many
    tokens were read, how many words got vectors and how long it took.
    """
    started = time.perf_counter()
    if vocab_size - first <= dim:
        raise ValueError(f"a vocabulary of {vocab_size - first} words is too small for {dim}-dimensional vectors")
    counts, tokens = cooccurrence(sequences, vocab_size, window, first)
    weights = ppmi(counts)
    vectors = svd_vectors(weights, dim, seed)
    known = np.diff(weights.indptr) > 0
    known[:first] = False
    vectors[~known] = 0.0
    report = {"tokens": tokens, "words": int(known.sum()), "vocabulary": vocab_size - first, "window": window,
              "smoothing": SMOOTHING, "seconds": round(time.perf_counter() - started, 1)}
    return vectors, known, report


def scale_like(vectors: np.ndarray, known: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table`` with the rows of known words replaced by ``vectors`` rescaled to the norm of an average row of ``table``.

    Each vector is made unit length first: the raw SVD rows of frequent words
    are much longer than those of rare ones, and as an initialisation that
    would make the first layer's input scale depend on word frequency. The
    common length is the table's own mean row norm, so the layers above see
    inputs of the size they were initialised for.
    """
    if vectors.shape != table.shape or known.shape != (table.shape[0],):
        raise ValueError(f"vectors {vectors.shape} and known {known.shape} do not fit a table of shape {table.shape}")
    out = table.copy()
    target = float(np.linalg.norm(table, axis=1).mean())
    chosen = vectors[known].astype(np.float64)
    norms = np.linalg.norm(chosen, axis=1, keepdims=True)
    out[known] = (chosen / np.maximum(norms, 1e-12) * target).astype(table.dtype)
    return out
