"""The "ngram" engine: NB-weighted hashed n-gram logistic regression (NBSVM, Wang & Manning 2012).

Texts are tokenized with ``toolkit.text.tokenize`` (HTML tags stripped,
lower-cased, Chinese and Japanese by character, or as the ``cjk`` option
says: the model file keeps it), then every token n-gram up to ``ngram`` is
hashed into ``2**hash_bits`` binary features (CRC-32 of each word,
mixed per n-gram in numpy: see :func:`ngram_keys`; the same on every
machine and Python). Per class
(one-vs-rest), each feature is scaled by its naive-Bayes log-count ratio
r = log((p / |p|_1) / (q / |q|_1)) — p and q the smoothed feature counts in
and out of the class — and a logistic regression is fit on the scaled
features. Since a feature is 0 or 1, coef * r folds into one weight vector
per class: prediction is a sparse dot product. Only the buckets that at
least ``min_df`` training texts use are features (the file keeps their
sorted bucket numbers beside their weights): an n-gram of one or two reviews
says little about the next one, and such n-grams fill most of the buckets,
so a large ``hash_bits`` (few collisions) stays small on disk. Weights are
stored as float16 after dividing by their largest magnitude (the scale is
kept in the metadata), which halves the file and changes no IMDb prediction
we measured.

With the ``negation`` option, the tokens after a negator (not, no, never,
any ...n't) up to the next punctuation mark are marked as negated
(:func:`negated_tokens`): in "not bad at all" the feature "bad" does not
fire, "¬bad" does, so the review-level weight of "bad" does not decide a
short negated phrase.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from toolkit_plugins.classification.common import CJK_OPTION, ClassifierEngine
from toolkit.engine import Option

if TYPE_CHECKING:
    import numpy as np
    import scipy.sparse as sp

HASH = "crc32-words-v2"  # see ngram_keys; a model hashed any other way is refused when loaded

# Odd 64-bit multipliers (from xxHash and splitmix64): one per word position of an n-gram, then its bucket.
_MIX = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9)
_BUCKET = 0xFF51AFD7ED558CCD
# Buckets are column numbers of an int32-indexed sparse matrix: a model file asking for more is refused.
MAX_HASH_BITS = 31

# Marks a negated token; tokenize never puts it in a token (it is not a letter or digit).
NEGATED = "\u00ac"
# The apostrophe-less forms are common in product and restaurant reviews; "...n't" is caught by its ending.
NEGATORS = frozenset("""not no never nothing nobody none neither nor cannot without
    dont didnt doesnt isnt wasnt arent werent cant couldnt wont wouldnt shouldnt havent hasnt hadnt aint""".split())


@functools.cache
def _scope_ends() -> re.Pattern:
    from toolkit.text.tokenizer import _TAG_RE

    # A whole HTML tag is one cut (its own dots and colons do not cut it); ";" is not a cut, so that the
    # entities (&quot;) stay whole for tokenize to decode. Both separate tokens anyway: cutting there
    # changes the tokens of no text, only where a negation's scope ends.
    return re.compile(f"{_TAG_RE.pattern}|[.,:!?]", _TAG_RE.flags)


def negated_tokens(text: str, cjk: str = "char") -> list[str]:
    """``tokenize(text, cjk=cjk)``, with each token after a negator up to the next punctuation mark (or HTML
    tag) prefixed by NEGATED: "Not bad at all." gives not, ¬bad, ¬at, ¬all."""
    from toolkit.text import tokenize

    tokens: list[str] = []
    for clause in _scope_ends().split(text):
        negated = False
        for token in tokenize(clause, cjk=cjk):
            tokens.append(NEGATED + token if negated else token)
            negated = negated or token in NEGATORS or token.endswith("n't")
    return tokens


def text_tokens(text: str, cjk: str, negation: bool) -> list[str]:
    """The tokens an n-gram model hashes: :func:`negated_tokens` with ``negation``, else ``tokenize``'s."""
    from toolkit.text import tokenize

    return negated_tokens(text, cjk) if negation else tokenize(text, cjk=cjk)


def featurize(texts: list[str], n: int, hash_bits: int, cjk: str = "char", negation: bool = False) -> sp.csr_matrix:
    """Binary hashed n-gram features (N, 2**hash_bits) of the tokens ``text_tokens(text, cjk, negation)``."""
    return featurize_tokens((text_tokens(text, cjk, negation) for text in texts), n, hash_bits)


def featurize_tokens(token_lists: Iterable[list[str]], n: int, hash_bits: int) -> sp.csr_matrix:
    """:func:`featurize` of texts already split by ``toolkit.text.tokenize``: the buckets of
    :func:`ngram_keys` as a binary (texts, 2**hash_bits) matrix."""
    import numpy as np
    import scipy.sparse as sp

    counts, columns = [np.zeros(0, np.int64)], [np.zeros(0, np.int32)]
    for size, key in ngram_keys(token_lists, n, hash_bits):
        counts.append(np.bincount(key >> hash_bits, minlength=size))
        columns.append((key & ((1 << hash_bits) - 1)).astype(np.int32))
    counts = np.concatenate(counts)
    indptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    columns = np.concatenate(columns)
    return sp.csr_matrix((np.ones(len(columns), np.float32), columns, indptr), shape=(len(counts), 2**hash_bits))


def ngram_keys(token_lists: Iterable[list[str]], n: int, hash_bits: int) -> Iterator[tuple[int, np.ndarray]]:
    """The hashed n-gram buckets of the texts, each once per text, a chunk of texts at a time: the chunk's
    number of texts and its keys ``text << hash_bits | bucket`` (text counted in the chunk), sorted. Numpy
    alone: predicting needs no scipy.sparse, whose import took 0.15 s of a one-shot ``nlp-tool classify``.

    Each distinct word of a chunk of texts is hashed once (CRC-32 of its
    UTF-8: the same on every machine, and no scikit-learn import to
    predict); the chunk's n-grams are then hashed together in numpy instead
    of being built as strings: an n-gram's hash mixes its words' hashes with
    one multiplier per position, and its bucket is the top ``hash_bits``
    bits of that times another odd constant.
    """
    import itertools

    token_lists = iter(token_lists)
    # In chunks: the sort that drops repeated n-grams is faster on many small arrays than on one big one.
    for chunk in iter(lambda: list(itertools.islice(token_lists, 512)), []):
        yield len(chunk), _chunk_keys(chunk, n, hash_bits)


def _chunk_keys(token_lists: list[list[str]], n: int, hash_bits: int) -> np.ndarray:
    """The chunk's distinct (text number << hash_bits | bucket) keys, sorted."""
    import zlib

    import numpy as np

    index: dict[str, int] = {}
    ids: list[int] = []
    lengths: list[int] = []
    for words in token_lists:
        ids += [index.setdefault(w, len(index)) for w in words]
        lengths.append(len(words))
    word_hash = np.fromiter((zlib.crc32(w.encode("utf-8", "surrogatepass")) for w in index), np.uint64, len(index))
    h = word_hash[np.asarray(ids, dtype=np.intp)]
    size = np.asarray(lengths, dtype=np.int64)
    end = np.repeat(np.cumsum(size), size)  # per word: where its document ends in the batch
    row = np.repeat(np.arange(len(size), dtype=np.int64), size)
    mix = np.asarray(_MIX, dtype=np.uint64)
    keys = [np.zeros(0, np.int64)]
    for order in range(1, min(n, len(h)) + 1):
        count = len(h) - order + 1
        inside = np.arange(order, count + order) <= end[:count]  # the n-gram stays in its document
        gram = h[:count] * mix[0]
        for k in range(1, order):
            gram ^= h[k:k + count] * mix[k]
        bucket = ((gram * np.uint64(_BUCKET)) >> np.uint64(64 - hash_bits)).astype(np.int64)
        keys.append((row[:count][inside] << hash_bits) | bucket[inside])
    # Presence, not counts (what NBSVM's ratios are defined on): each (document, bucket) once.
    key = np.sort(np.concatenate(keys))  # np.unique's hash table is many times slower on these keys
    return key[np.concatenate(([True], key[1:] != key[:-1]))[: len(key)]]


def kept_positions(buckets: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``columns``, its position in ``buckets`` (increasing), and whether it is there at all."""
    import numpy as np

    position = np.searchsorted(buckets, columns)
    hit = np.zeros(len(position), bool)
    inside = position < len(buckets)
    hit[inside] = buckets[position[inside]] == columns[inside]
    return position, hit


def select_buckets(x: sp.csr_matrix, buckets: np.ndarray) -> sp.csr_matrix:
    """The columns of ``x`` named in ``buckets`` (increasing), renumbered 0..len(buckets) - 1."""
    import numpy as np
    import scipy.sparse as sp

    position, hit = kept_positions(buckets, x.indices)
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows[hit], minlength=x.shape[0]))))
    return sp.csr_matrix((x.data[hit], position[hit].astype(np.int32), indptr), shape=(x.shape[0], len(buckets)))


def fit_weights(x: sp.csr_matrix, y: np.ndarray, n_classes: int, c: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Folded NB-LR weights (F, K) and biases (K,); K = 1 for two classes (class 1 vs 0), else one per class.

    Every column of ``x`` is a bucket some training text uses (:func:`fit_arrays` passes only those).
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    columns = [1] if n_classes == 2 else list(range(n_classes))
    weights = np.zeros((x.shape[1], len(columns)), dtype=np.float64)
    biases = np.zeros(len(columns), dtype=np.float64)
    for k, cls in enumerate(columns):
        target = (y == cls).astype(np.int64)
        p = np.asarray(x[target == 1].sum(axis=0)).ravel() + 1.0
        q = np.asarray(x[target == 0].sum(axis=0)).ravel() + 1.0
        r = np.log((p / p.sum()) / (q / q.sum()))
        # liblinear's dual solver suits many more features than samples.
        lr = LogisticRegression(C=c, solver="liblinear", dual=True, max_iter=1000, random_state=seed)
        lr.fit(x.multiply(r).tocsr(), target)
        weights[:, k] = lr.coef_[0] * r
        biases[k] = lr.intercept_[0]
    return weights, biases


def probabilities(scores: np.ndarray) -> np.ndarray:
    """(N, C) probabilities from (N, K) one-vs-rest scores: sigmoid, then normalized when K > 1."""
    import numpy as np

    pos = 0.5 * (1.0 + np.tanh(0.5 * scores))  # sigmoid without overflow warnings
    if scores.shape[1] == 1:
        return np.hstack([1.0 - pos, pos])
    total = pos.sum(axis=1, keepdims=True)
    return pos / np.where(total > 0, total, 1.0)


class NgramModel:
    """A loaded n-gram model: hashing config, the kept buckets (sorted) and their folded weights."""

    def __init__(self, buckets: np.ndarray, weights: np.ndarray, bias: np.ndarray, ngram: int, hash_bits: int,
                 cjk: str = "char", negation: bool = False) -> None:
        self.buckets, self.weights, self.bias, self.ngram, self.hash_bits = buckets, weights, bias, ngram, hash_bits
        self.cjk, self.negation = cjk, negation

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict, prefix: str = "") -> NgramModel:
        import math

        import numpy as np

        from toolkit.nn import ModelFileError
        from toolkit.nn.layer_configs import check_size
        from toolkit.text import CJK_MODES

        hashing = meta["hashing"]
        if hashing.get("method") != HASH:
            raise ModelFileError(f"n-gram features hashed by {hashing.get('method')!r}, not {HASH!r} as this"
                                 " version does: retrain the model (nlp-tool train classify)")
        ngram = check_size("the n-gram model", "ngram", hashing["ngram"], 1, len(_MIX))
        bits = check_size("the n-gram model", "hash bits", hashing["bits"], 1, MAX_HASH_BITS)
        # Models written before the option split Chinese and Japanese by character.
        cjk = hashing.get("cjk", "char")
        if cjk not in CJK_MODES:
            raise ModelFileError(f"n-gram features of tokens split by cjk={cjk!r}; this version knows"
                                 f" {', '.join(CJK_MODES)}")
        # Models written before the option marked no negation.
        negation = hashing.get("negation", False)
        if not isinstance(negation, bool):
            raise ModelFileError(f"n-gram 'negation' must be true or false, not {negation!r}")
        scale = hashing["scale"]
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
            raise ModelFileError(f"the n-gram weights' scale must be a number, not {scale!r}")
        weights, bias = arrays[prefix + "weights"], arrays[prefix + "bias"]
        if weights.ndim != 2 or bias.shape != weights.shape[1:] or weights.dtype.kind != "f" or bias.dtype.kind != "f":
            raise ModelFileError(f"n-gram weights {weights.dtype} {weights.shape} and bias {bias.dtype} {bias.shape}"
                                 " are not a (buckets, classes) matrix of floats and one float per class")
        weights = weights.astype(np.float32) * np.float32(scale)
        # Files written before buckets were pruned hold every bucket's row.
        buckets = arrays.get(prefix + "buckets", np.arange(len(weights))).astype(np.int64)
        if (buckets.ndim != 1 or len(buckets) != len(weights) or np.any(buckets[1:] <= buckets[:-1])
                or (len(buckets) and not 0 <= buckets[0] <= buckets[-1] < 2**bits)):
            raise ModelFileError("n-gram buckets must be distinct hash buckets in increasing order, one per weight row")
        return cls(buckets, weights, bias.astype(np.float64), ngram, bits, cjk, negation)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.predict_proba_tokens(text_tokens(text, self.cjk, self.negation) for text in texts)

    def predict_proba_tokens(self, token_lists: Iterable[list[str]]) -> np.ndarray:
        """:meth:`predict_proba` of texts already split by ``text_tokens(text, self.cjk, self.negation)``."""
        import numpy as np

        scores = [np.zeros((0, self.weights.shape[1]))]
        mask = (1 << self.hash_bits) - 1
        for size, key in ngram_keys(token_lists, self.ngram, self.hash_bits):
            position, hit = kept_positions(self.buckets, key & mask)
            rows, weights = key[hit] >> self.hash_bits, self.weights[position[hit]]
            # A text's score is the sum of its buckets' weights (binary features): one bincount per class.
            scores.append(np.stack([np.bincount(rows, weights=weights[:, k], minlength=size)
                                    for k in range(weights.shape[1])], axis=1))
        return probabilities(np.concatenate(scores) + self.bias)


def fit_arrays(texts: list[str], y: np.ndarray, n_classes: int, settings: dict[str, Any],
               seed: int) -> tuple[dict, dict]:
    """Train; the kept buckets, their weights (float16 when ``settings["float16"]``) and the hashing metadata."""
    import numpy as np

    n, bits, cjk, negation = settings["ngram"], settings["hash_bits"], settings["cjk"], settings["negation"]
    x = featurize(texts, n, bits, cjk, negation)
    # Rarer n-grams are not features at all: fitting without them, the regression cannot lean on
    # phrases of one review (on IMDb this scored better on held-out reviews than dropping them after).
    buckets = np.flatnonzero(np.bincount(x.indices, minlength=x.shape[1]) >= settings["min_df"])
    weights, bias = fit_weights(select_buckets(x, buckets), y, n_classes, settings["c"], seed)
    scale = float(np.abs(weights).max(initial=0.0)) or 1.0
    dtype = np.float16 if settings["float16"] else np.float32
    arrays = {"buckets": buckets.astype(np.int32), "weights": (weights / scale).astype(dtype),
              "bias": bias.astype(np.float32)}
    return arrays, {"hashing": {"method": HASH, "ngram": n, "bits": bits, "binary": True, "scale": scale, "cjk": cjk,
                                "negation": negation}}


NGRAM_TRAIN_OPTIONS = {
    "ngram": Option(int, 2, "Longest word n-gram used as a feature.", choices=(1, 2, 3)),
    "cjk": CJK_OPTION,
    "negation": Option(bool, False, "Mark the words after not, no, never or ...n't, up to the next punctuation"
                       " mark, as negated words (features of their own); kept in the model file."),
    "hash_bits": Option(int, 20, "Features are hashed into 2**hash_bits buckets.", minimum=10, maximum=26),
    "min_df": Option(int, 1, "Keep only the buckets that at least this many training texts use.", minimum=1),
    "c": Option(float, 1.0, "Inverse L2 regularisation strength of the logistic regression (scikit-learn's C).",
                minimum=0, min_open=True),
    "float16": Option(bool, True, "Store the weights as float16 (half the file size)."),
}


class NgramClassifier(ClassifierEngine):
    name = "ngram"
    description = "NB-weighted hashed n-gram logistic regression (NBSVM-style); fast, scikit-learn."
    train_options = {**ClassifierEngine.train_options, **NGRAM_TRAIN_OPTIONS}

    @classmethod
    def _fit(cls, texts, y, classes, valid, seed, progress, settings, output):
        arrays, meta = fit_arrays(texts, y, len(classes), settings, seed)
        return arrays, meta, None, {}

    @classmethod
    def _build(cls, config, arrays):
        return NgramModel.from_arrays(arrays, config["metadata"])
