"""Okapi BM25 over short texts, as one sparse matrix: a query's scores are a sum of its terms' columns.

Each document's weight for each of its terms is computed once, when the
index is built (idf times the saturated, length-normalised term frequency);
scoring a query then sums the columns of its terms, weighted by how often
each occurs in the query, over every document at once. The idf is Lucene's,
log(1 + (N - df + 0.5) / (df + 0.5)), which is never negative: a term found
in most documents adds little, never a penalty.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import numpy as np

# Words as runs of letters and digits, lower-cased: DailyDialog's tokenized text ("Say , Jim ,") and
# ordinary text ("Say, Jim,") then give the same terms.
_WORD = re.compile(r"\w+")

#: Term-frequency saturation and length normalisation: the values of Robertson and Zaragoza's survey and
#: of Lucene's defaults.
K1, B = 1.2, 0.75


def terms(text: str) -> list[str]:
    """The terms of ``text`` as the index counts them."""
    return _WORD.findall(text.lower())


class BM25Index:
    """BM25 scores of queries against ``documents``."""

    def __init__(self, documents: Sequence[str], k1: float = K1, b: float = B) -> None:
        import numpy as np
        from scipy import sparse

        vocabulary: dict[str, int] = {}
        rows, columns, counts = [], [], []
        lengths = np.zeros(len(documents), dtype=np.float64)
        for row, document in enumerate(documents):
            found: dict[int, int] = {}
            words = terms(document)
            for word in words:
                column = vocabulary.setdefault(word, len(vocabulary))
                found[column] = found.get(column, 0) + 1
            lengths[row] = len(words)
            rows += [row] * len(found)
            columns += found.keys()
            counts += found.values()
        self.vocabulary = vocabulary
        n = len(documents)
        tf = np.asarray(counts, dtype=np.float64)
        rows_array = np.asarray(rows, dtype=np.int64)
        columns_array = np.asarray(columns, dtype=np.int64)
        df = np.bincount(columns_array, minlength=len(vocabulary)).astype(np.float64)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        average = lengths.mean() if n and lengths.mean() > 0 else 1.0
        norm = k1 * (1 - b + b * lengths[rows_array] / average)
        weights = idf[columns_array] * tf * (k1 + 1) / (tf + norm)
        # Columns sliced per query: compressed by column.
        self.weights = sparse.csc_matrix((weights, (rows_array, columns_array)), shape=(n, len(vocabulary)))

    def __len__(self) -> int:
        return self.weights.shape[0]

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every document for ``query`` (zeros where no term is shared)."""
        import numpy as np

        counts: dict[int, int] = {}
        for word in terms(query):
            column = self.vocabulary.get(word)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        if not counts:
            return np.zeros(len(self), dtype=np.float64)
        picked = self.weights[:, list(counts)]
        return np.asarray(picked @ np.fromiter(counts.values(), dtype=np.float64, count=len(counts))).ravel()


def best(scores: np.ndarray) -> tuple[int, float]:
    """The position and value of the highest score, the first one on a tie (the corpus's order decides)."""
    position = int(scores.argmax())
    return position, float(scores[position])
