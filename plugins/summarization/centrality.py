"""Position-aware graph centrality with MMR: a rule-based summarizer for any language.

1. Split into sentences and drop Markdown/HTML noise (headings, code, bare
   tags, bullets without words): it must never be chosen.
2. TF-IDF vectors of the sentences over the document itself (the numbers of
   scikit-learn's TfidfVectorizer with sublinear tf, computed here several
   times faster), on words and word bigrams, English stop words removed,
   where a CJK character counts as a word, so text without spaces gets
   character uni- and bigrams.
3. Directed centrality as in PacSum (Zheng & Lapata 2019): an edge weighs
   the cosine similarity minus a threshold (a fraction of the document's
   highest similarity); similarity to later sentences counts with weight
   ``FORWARD``, to earlier ones with ``BACKWARD`` (PacSum favours the
   forward edges; on BBC news equal weights scored best), plus a lead prior,
   times a mild preference for longer sentences (``LENGTH_POWER``).
4. MMR: pick sentences greedily by score minus their similarity to those
   already picked, so the summary does not repeat itself.

The hyper-parameters below were tuned on the dev part of BBC News Summary,
500 articles inside the train part of corpora.py (docs/summarization.md); the
test part was not looked at.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, NamedTuple

from toolkit_plugins.summarization.common import WORD, SummarizerEngine
from toolkit.text.sentences import Sentence

if TYPE_CHECKING:
    import numpy as np

THRESHOLD = 0.0  # edge threshold, as a fraction of the document's highest similarity
FORWARD = 1.0  # weight of edges to later sentences
BACKWARD = 1.0  # weight of edges to earlier sentences
LEAD_PRIOR = 0.1  # weight of the position prior 1 / (1 + index)
MMR_LAMBDA = 0.7  # weight of the centrality score against redundancy
# Scores are multiplied by (words / the document's median words) ** LENGTH_POWER:
# a longer sentence says more, and a summary of a few sentences should
# cover as much as it can. On the BBC dev part: ROUGE-1 at k = 3 rose from
# 56.5 to 60.9, at k = reference length from 80.45 to 80.55 (0.75: 61.6 / 79.8).
LENGTH_POWER = 0.5
NEIGHBOURS = 50  # edges kept per sentence in long documents, for speed
DENSE_LIMIT = 2000  # up to this many sentences, all edges are kept
WINDOW = 250  # in long documents, sentences this far apart or nearer may be linked
DENSE_CELLS = 1_000_000  # TF-IDF matrices up to this many cells (sentences x terms) are dense
BLOCK = 500  # rows of the similarity matrix computed at once in long documents
MMR_RANKED = 200  # sentences ranked by MMR; the rest follow by score

FENCE = re.compile(r"^[ \t]*(```|~~~).*?(?:^[ \t]*\1[^\n]*$|\Z)", re.M | re.S)
HEADING = re.compile(r"^\s*(#{1,6}\s|={3,}|-{3,}|\*{3,}|_{3,})")
TAG = re.compile(r"<[^>\n]*>")
BULLET = re.compile(r"^\s*(?:[-*+•–]|\d{1,3}[.)])\s*")
LETTER = re.compile(r"[^\W\d_]")
TERMINALS = ".!?…。！？:;\"'”’»)]」』）"
HEADING_MAX = 80
LINE_END = re.compile(r"[ \t]*(?:\n|\Z)")


def content_sentences(text: str, sentences: list[Sentence]) -> list[int]:
    """Indices of the sentences that may go into a summary: prose, not markup or headings."""
    fenced = [(m.start(), m.end()) for m in FENCE.finditer(text)]
    kept = []
    for i, s in enumerate(sentences):
        if any(start < s.end and s.start < end for start, end in fenced) or HEADING.match(s.text):
            continue
        words = BULLET.sub("", TAG.sub(" ", s.text))
        if not LETTER.search(words):
            continue
        kept.append(i)
    # A short line without end punctuation is a title or heading, unless
    # nothing else is left (a one-line note is its own summary).
    prose = [i for i in kept if not _is_title(text, sentences[i])]
    return prose or kept


def _is_title(text: str, s: Sentence) -> bool:
    if "\n" in s.text or len(s.text) > HEADING_MAX or s.text[-1] in TERMINALS:
        return False
    return bool(LINE_END.match(text, s.end))


class SentenceWords(NamedTuple):
    """The words of a list of sentences, split once for every feature that needs them."""

    rows: np.ndarray  # the sentence of each content word (English stop words left out), in text order
    terms: np.ndarray  # its id: distinct lower-cased words numbered from 0 in order of first appearance
    vocabulary: int  # the number of distinct content words
    lengths: np.ndarray  # words per sentence, stop words included (common.count_words)


def sentence_words(texts: list[str]) -> SentenceWords:
    """The words of ``texts``: runs of letters/digits, each CJK character a word of its own."""
    import numpy as np

    stop = stop_words()
    vocabulary: dict[str, int] = {}
    ids: list[int] = []
    content, lengths = [], []
    for text in texts:
        words = WORD.findall(text.lower())
        lengths.append(len(words))
        # English function words otherwise make short sentences look similar to
        # everything (+4 R-1 on the BBC dev part); the list matches no other language.
        before = len(ids)
        ids += [vocabulary.setdefault(w, len(vocabulary)) for w in words if w not in stop]
        content.append(len(ids) - before)
    rows = np.repeat(np.arange(len(texts), dtype=np.int64), content)
    return SentenceWords(rows, np.asarray(ids, dtype=np.int64), len(vocabulary), np.asarray(lengths, dtype=np.int64))


def length_factor(lengths: np.ndarray) -> np.ndarray:
    """(words / the document's median words) ** LENGTH_POWER, each sentence counting at least one word."""
    import numpy as np

    lengths = np.maximum(lengths, 1).astype(np.float64)
    return (lengths / np.median(lengths)) ** LENGTH_POWER


def sentence_vectors(texts: list[str], words: SentenceWords | None = None):
    """L2-normalised TF-IDF rows, one per sentence (dense if small, else CSR); None when no sentence has a word.

    ``words``: ``sentence_words(texts)``, when the caller has it already.
    The same numbers as scikit-learn's ``TfidfVectorizer(sublinear_tf=True)``
    with English stop words (removed before bigrams are formed) and smooth
    idf, ln((1 + n) / (1 + df)) + 1, but without its fitting machinery, which
    cost five times the rest of the engine on a news article.
    """
    import numpy as np
    from scipy import sparse

    rows, terms, width, _ = sentence_words(texts) if words is None else words
    if not width:
        return None
    n = len(texts)
    # Bigrams help on ordinary documents but cost most of the time on long ones.
    if n <= DENSE_LIMIT:
        # A bigram is a pair of neighbouring word ids in one sentence, numbered after the words.
        inside = rows[1:] == rows[:-1]
        pairs, pair_ids = np.unique(terms[:-1][inside] * width + terms[1:][inside], return_inverse=True)
        rows = np.concatenate((rows, rows[1:][inside]))
        terms = np.concatenate((terms, width + pair_ids))
        width += len(pairs)
    cells, counts = np.unique(rows * width + terms, return_counts=True)
    rows, cols = np.divmod(cells, width)
    idf = np.log((1.0 + n) / (1.0 + np.bincount(cols, minlength=width))) + 1.0
    values = (1.0 + np.log(counts)) * idf[cols]
    norms = np.sqrt(np.bincount(rows, values * values, minlength=n))
    values /= norms[rows]
    if n * width <= DENSE_CELLS:
        # A news article, or a long text with few distinct words: a small dense
        # matrix skips the sparse bookkeeping, which would cost more than the products.
        x = np.zeros((n, width))
        x[rows, cols] = values
        return x
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=n))))
    return sparse.csr_matrix((values, cols, indptr), shape=(n, width))


@functools.cache
def stop_words() -> frozenset[str]:
    """scikit-learn's English stop words (imported on first use: the module must stay cheap to import)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return ENGLISH_STOP_WORDS


def similarity_matrix(x):
    """Cosine similarities, diagonal zeroed: dense, or in long documents sparse with each sentence's top neighbours."""
    import numpy as np
    from scipy import sparse

    n = x.shape[0]
    if n <= DENSE_LIMIT:
        sim = x @ x.T
        sim = sim.toarray() if sparse.issparse(sim) else sim
        np.fill_diagonal(sim, 0.0)
        return sim
    # A 1 MB text has some 10,000 sentences: all pairs would not fit the time
    # budget, so each sentence is linked to its WINDOW nearest ones by
    # position, and of those keeps its NEIGHBOURS most similar.
    rows, cols, vals = [], [], []
    for start in range(0, n, BLOCK):
        stop = min(n, start + BLOCK)
        first, last = max(0, start - WINDOW), min(n, stop + WINDOW)
        block = x[start:stop] @ x[first:last].T
        block = block.toarray() if sparse.issparse(block) else block
        index = np.arange(stop - start)[:, None]
        block[index.ravel(), index.ravel() + start - first] = 0.0
        top = np.argpartition(-block, NEIGHBOURS, axis=1)[:, :NEIGHBOURS]
        rows.append(np.broadcast_to(index + start, top.shape).ravel())
        cols.append(top.ravel() + first)
        vals.append(block[index, top].ravel())
    sim = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    sim.eliminate_zeros()
    return sim


def centrality(sim) -> np.ndarray:
    """PacSum directed centrality plus lead prior, from a dense or sparse similarity matrix."""
    import numpy as np
    from scipy import sparse

    n = sim.shape[0]
    cut = THRESHOLD * sim.max()
    if sparse.issparse(sim):
        edges = sim.copy()
        edges.data = np.clip(edges.data - cut, 0.0, None)
        later = np.asarray(sparse.triu(edges, 1).sum(axis=1)).ravel()
        earlier = np.asarray(sparse.tril(edges, -1).sum(axis=1)).ravel()
    else:
        edges = np.clip(sim - cut, 0.0, None)
        # Row i, column j > i: sentence i and a later sentence j.
        later = np.triu(edges, 1).sum(axis=1)
        earlier = np.tril(edges, -1).sum(axis=1)
    score = FORWARD * later + BACKWARD * earlier
    span = score.max() - score.min()
    score = (score - score.min()) / span if span > 0 else np.zeros(n)
    return score + LEAD_PRIOR / (1.0 + np.arange(n))


def mmr(score: np.ndarray, sim) -> list[int]:
    """All indices, the first MMR_RANKED in MMR order (best score minus largest similarity to
    those already picked), the rest by score: no summary needs more, and MMR over every
    sentence of a long text would cost n² time."""
    import numpy as np
    from scipy import sparse

    n = len(score)
    base = MMR_LAMBDA * score
    # gain = base - (1 - MMR_LAMBDA) * (largest similarity to a pick), kept up
    # to date with one minimum per pick; picked sentences get -inf. A dense
    # matrix gets every row's candidate gains at once.
    penalised = None if sparse.issparse(sim) else base - (1 - MMR_LAMBDA) * sim
    gain = base.copy()
    chosen: list[int] = []
    for _ in range(min(n, MMR_RANKED)):
        best = int(gain.argmax())
        chosen.append(best)
        if penalised is None:
            np.minimum(gain, base - (1 - MMR_LAMBDA) * sim[best].toarray().ravel(), out=gain)
        else:
            np.minimum(gain, penalised[best], out=gain)
        gain[best] = -np.inf
    free = np.ones(n, dtype=bool)
    free[chosen] = False
    rest = np.flatnonzero(free)
    return chosen + rest[np.argsort(-score[rest], kind="stable")].tolist()


class CentralitySummarizer(SummarizerEngine):
    name = "centrality"
    languages = ("any",)  # words and sentences as toolkit.text cuts them, in any script
    description = ("Most central sentences by position-aware TF-IDF graph centrality with MMR"
                   " (PacSum-style); rule-based, any language.")

    def _rank(self, text: str, sentences: list[Sentence], k: int | None) -> list[tuple[int, float]]:
        candidates = content_sentences(text, sentences)
        if len(candidates) <= 1:
            return [(i, 1.0) for i in candidates]
        texts = [sentences[i].text for i in candidates]
        words = sentence_words(texts)
        x = sentence_vectors(texts, words)
        if x is None:
            return [(i, 1.0 - k / len(candidates)) for k, i in enumerate(candidates)]
        sim = similarity_matrix(x)
        score = centrality(sim) * length_factor(words.lengths)
        top = score.max()
        order = mmr(score, sim)
        return [(candidates[k], float(score[k] / top)) for k in order]
