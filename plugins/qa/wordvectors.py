"""Word vectors for the reader from unlabeled text: the reader's tokens through ``toolkit.text.vectors``.

No pre-trained embeddings exist offline, and the reader learns its word
vectors from question-answer supervision alone, where a word is seen in a
few hundred passages at most. ``toolkit.text.vectors`` gives every
vocabulary word a distributional vector (PPMI co-occurrence, then a
truncated SVD) from the training contexts and any other text given; this
module reads that text and tokenizes it as the reader does
(toolkit_plugins.qa.passages.TOKEN, lower-cased), so the vectors line up with the
reader's vocabulary.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from toolkit_plugins.qa.passages import TOKEN
from toolkit.engine import DataError
from toolkit.text.vectors import word_vectors

# Fields that hold the text in the JSON Lines files of ../shared/data (imdb: "text"; news sets:
# "article"; a SQuAD-like record: "context"), tried in this order.
TEXT_FIELDS = ("text", "article", "context")


def words(text: str) -> list[str]:
    """The lower-cased tokens of ``text``, as the reader's Featurizer sees them."""
    # IMDb reviews keep their HTML line breaks; as tokens they would be the most frequent "words".
    return [w.lower() for w in TOKEN.findall(text.replace("<br />", " "))]


def read_texts(path: str | Path) -> list[str]:
    """The documents of a text file: JSON Lines (a text/article/context field per line) or plain text (one per line).

    Either may be gzip-compressed (``.gz``). Raises DataError for a missing
    file, a JSON line without a text field, or a file without any text.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (vector texts must be .jsonl, .txt or their .gz)")
    opener = gzip.open if path.suffix == ".gz" else open
    stem = path.name[:-3] if path.suffix == ".gz" else path.name
    texts = []
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            if stem.endswith(".jsonl"):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}, line {number}: not JSON ({e.msg})") from None
                field = next((k for k in TEXT_FIELDS if isinstance(record, dict) and isinstance(record.get(k), str)),
                             None)
                if field is None:
                    raise DataError(f"{path}, line {number}: no text field (one of {', '.join(TEXT_FIELDS)})")
                texts.append(record[field])
            else:
                texts.append(line)
    if not texts:
        raise DataError(f"{path}: no text in it")
    return texts


def train_vectors(texts: Iterable[str], vocab: list[str], dim: int, skip: int,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """PPMI + SVD vectors for ``vocab[skip:]`` from ``texts`` (``toolkit.text.vectors.word_vectors``).

    Returns ``(vectors, known, report)``: vectors of shape (len(vocab), dim),
    zero for the first ``skip`` entries (the reader's padding and unknown
    ids, which are not words) and for words that never occur near another
    vocabulary word; ``known`` is True where a word got a vector. Words
    outside the vocabulary keep their places but count nothing. DataError
    when the vocabulary is too small for ``dim`` or no two of its words occur
    near each other.
    """
    if skip < 1:
        raise ValueError("the vocabulary must start with at least one id that is not a word (skip >= 1)")
    index = {w: i for i, w in enumerate(vocab[skip:], skip)}
    # Words outside the vocabulary take id 0, below `skip`: word_vectors keeps their places but counts nothing.
    sequences = ([index.get(w, 0) for w in words(text)] for text in texts)
    try:
        return word_vectors(sequences, len(vocab), dim, first=skip, seed=seed)
    except ValueError as error:
        raise DataError(str(error)) from None
