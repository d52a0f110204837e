"""What the trained summarizer's scorer reads of a document, and how its scores become a ranking.

A module of its own, below both the engine (trained.py) and the network
(scorer.py), which both need it. Cheap to import: numpy and the centrality
engine's helpers are imported when a document is prepared, so ``nlp-tool``
starts without them.

- ``Document``: a text's candidate sentences (``centrality.content_sentences``:
  Markdown/HTML noise is never scored), their ``FEATURES`` and TF-IDF
  similarities; ``Document.inputs`` gives the scorer's rows (word ids, then
  the features a model was trained on).
- ``Document.ranked``: the candidates best first, by score with the
  centrality engine's MMR, the length factor applied by one of
  ``LENGTH_RULES``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from toolkit.text.sentences import Sentence

if TYPE_CHECKING:
    import numpy as np

    from toolkit_plugins.summarization.centrality import SentenceWords

# Every feature a Document computes, in this order; a model file names the ones its scorer reads.
FEATURES = ("position", "inverse_position", "paragraph_start", "document_length", "sentence_length",
            "centrality", "centrality_rank", "title_similarity", "document_similarity",
            "frequency", "frequency_mean", "paragraph_share")
# The frequency feature divides by length ** FREQUENCY_POWER: between the sum
# (long sentences win) and the mean (short ones win); 0.7 ranked best alone
# on the dev part of the BBC train split.
FREQUENCY_POWER = 0.7
WIDTH = 3  # the sentence encoder's convolution width, in words: the shortest word input a scorer takes
# When the ranking multiplies the scores by the length factor: on every summary, only on a summary
# shorter than the scores' sum (the expected number of summary sentences), or never.
LENGTH_RULES = ("always", "short", "never")


class Document:
    """One text made ready for the scorer: candidate sentences, their features and similarities."""

    def __init__(self, text: str, sentences: list[Sentence]) -> None:
        import numpy as np
        from scipy import sparse

        from toolkit_plugins.summarization.centrality import (
            centrality,
            content_sentences,
            length_factor,
            sentence_vectors,
            sentence_words,
            similarity_matrix,
        )

        self.candidates = content_sentences(text, sentences)
        n = len(self.candidates)
        self.texts = [sentences[i].text for i in self.candidates]
        features = np.zeros((n, len(FEATURES)), dtype=np.float32)
        if not n:
            self.features, self.sim = features, sparse.csr_matrix((0, 0))
            return
        k = np.arange(n)
        features[:, 0] = k / max(n - 1, 1)
        features[:, 1] = 1.0 / (1.0 + k)
        features[:, 2] = [i == 0 or "\n" in text[sentences[i - 1].end : sentences[i].start] for i in self.candidates]
        features[:, 3] = math.log1p(n) / math.log(100)
        # The text's first sentence goes in last: a news headline when there is
        # one (content_sentences drops it as a title, but it says what matters),
        # else the lead sentence.
        texts = self.texts + [sentences[0].text]
        words = sentence_words(texts)
        features[:, 4] = np.log1p(words.lengths[:n]) / math.log(100)
        self.length_factor = length_factor(words.lengths[:n])
        features[:, 9:11] = frequencies(words, n)
        # One-line texts (CNN/DM's tokenized articles) and texts in paragraphs
        # (BBC's) put their summary sentences in different places: this says which a text is.
        features[:, 11] = features[:, 2].mean()
        x = sentence_vectors(texts, words)
        if x is None:  # no word in any sentence: position and length alone
            self.features, self.sim = features, sparse.csr_matrix((n, n))
            return
        rows, first = x[:n], x[n:]
        self.sim = similarity_matrix(rows)
        score = centrality(self.sim)
        features[:, 5] = score / score.max()
        features[np.argsort(-score, kind="stable"), 6] = 1.0 - k / n
        # sentence_vectors gives a dense matrix for ordinary texts, a sparse one for long texts.
        title = rows @ first.T
        features[:, 7] = np.asarray(title.toarray() if sparse.issparse(title) else title).ravel()
        centroid = np.asarray(rows.sum(axis=0)).ravel()
        norm = np.linalg.norm(centroid)
        features[:, 8] = (rows @ centroid) / norm if norm else 0.0
        self.features = features

    def inputs(self, tokenizer: Any, maxlen: int, columns: Sequence[int]) -> np.ndarray:
        """The scorer's input rows: ``maxlen`` word ids (padded at the end) then the features at ``columns``
        (positions in ``FEATURES``)."""
        import numpy as np

        from toolkit.text import pad_sequences

        features = self.features[:, list(columns)]
        if not maxlen:  # a scorer without sentence encoder
            return features
        ids = pad_sequences(tokenizer.texts_to_sequences(self.texts), maxlen=maxlen, padding="post",
                            truncating="post", dtype=np.float32)
        return np.concatenate([ids, features], axis=1)

    def ranked(self, scores: np.ndarray, k: int | None, rule: str = "short") -> list[int]:
        """Positions in ``candidates``, best first, by score with the centrality engine's MMR; the scores
        multiplied by the length factor as ``rule`` (one of ``LENGTH_RULES``) says, for a summary of
        ``k`` sentences (None: a word budget).

        The scorer says how likely a sentence is to belong in the summary, not
        how much of the summary it covers. The scores add up to the summary's
        expected number of sentences; when ``k`` is below that, a longer
        sentence covers more of what is left out, so "short" favours length
        as the centrality engine does, only then.
        """
        from toolkit_plugins.summarization.centrality import mmr

        if rule not in LENGTH_RULES:
            raise ValueError(f"length rule must be one of {', '.join(LENGTH_RULES)}, not {rule!r}")
        if len(scores) <= 1:
            return list(range(len(scores)))
        lengthen = rule == "always" or (rule == "short" and (k is None or k < float(scores.sum())))
        return mmr(scores * self.length_factor if lengthen else scores, self.sim)


def frequencies(words: SentenceWords, n: int) -> np.ndarray:
    """(n, 2): each of the first ``n`` sentences' summed document frequency of its words over
    length ** FREQUENCY_POWER, and over length (the mean), each scaled to the document's maximum.

    ``words`` is ``centrality.sentence_words`` of the sentences (stop words do
    not count); rows from ``n`` on (the text's first sentence, appended for the
    title feature) are left out. The classic
    frequency summarizer (Luhn 1958; Nenkova & Vanderwende 2005).
    """
    import numpy as np

    rows, terms, width, _ = words
    inside = rows < n
    rows, terms = rows[inside], terms[inside]
    counts = np.bincount(terms, minlength=width).astype(np.float64)
    totals = np.bincount(rows, counts[terms], minlength=n)
    lengths = np.maximum(np.bincount(rows, minlength=n), 1)
    out = np.stack([totals / lengths**FREQUENCY_POWER, totals / lengths], axis=1)
    top = out.max(axis=0)
    return np.divide(out, top, out=np.zeros_like(out), where=top > 0)
