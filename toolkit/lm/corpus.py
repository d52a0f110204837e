"""Text corpora for language models: plain-text files read as one record per line, texts as one token
stream, the blocks training cuts from it, and the sliding windows that score it.

Every line (a blank one too) ends with the end-of-text id, as WikiText's
``<eos>`` ends each of its lines: that is what a word-level perplexity
counts, and what teaches the model where a paragraph ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

from toolkit.errors import DataError

if TYPE_CHECKING:
    import numpy as np

    from toolkit.text.subwords import SubwordVocab

PLAIN_TEXT = (".txt", ".txt.gz", ".text", ".raw", ".tokens")


def is_plain_text(path: str) -> bool:
    return path.lower().endswith(PLAIN_TEXT)


@dataclass(frozen=True)
class TextCounts:
    """What a perplexity is divided by: subword tokens scored (each line's end included), whitespace words plus
    one end per line (WikiText's convention), and UTF-8 bytes plus one newline per line."""

    tokens: int
    words: int
    bytes: int


def encode_stream(vocab: SubwordVocab, texts: Sequence[str], eos_id: int) -> tuple[np.ndarray, TextCounts]:
    """The texts as one id stream, each followed by ``eos_id``, starting with ``eos_id`` (the context of the
    first text, as every later one has the end of the one before); and its counts."""
    import numpy as np

    pieces = vocab.encode(list(texts))
    lengths = np.fromiter((len(p) + 1 for p in pieces), dtype=np.int64, count=len(pieces))
    stream = np.empty(int(lengths.sum()) + 1, dtype=np.int64)
    stream[0] = eos_id
    at = 1
    for ids in pieces:
        stream[at:at + len(ids)] = ids
        at += len(ids)
        stream[at] = eos_id
        at += 1
    counts = TextCounts(tokens=len(stream) - 1, words=sum(len(t.split()) + 1 for t in texts),
                        bytes=sum(len(t.encode("utf-8")) + 1 for t in texts))
    return stream, counts


def block_starts(n_tokens: int, context: int, offset: int) -> np.ndarray:
    """Starts of the blocks of ``context + 1`` ids (inputs and their next tokens) that tile a stream of
    ``n_tokens`` from ``offset``, each block's last id the next one's first."""
    import numpy as np

    return np.arange(offset, n_tokens - context, context, dtype=np.int64)


def training_batches(stream: np.ndarray, context: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch: the stream cut into blocks from a random offset (a new cut each epoch), shuffled, in
    batches of block starts; DataError for a stream shorter than one block."""
    if len(stream) <= context:
        raise DataError(f"the training text holds {len(stream) - 1} tokens, fewer than one context of {context};"
                        " give more text or a smaller --context-length")
    offset = int(rng.integers(0, min(context, len(stream) - context)))
    starts = block_starts(len(stream), context, offset)
    starts = starts[rng.permutation(len(starts))]
    return [starts[i:i + batch_size] for i in range(0, len(starts), batch_size)]


def gather(stream: np.ndarray, starts: np.ndarray, context: int) -> np.ndarray:
    """The blocks (len(starts), context + 1) of ``stream`` at ``starts``."""
    import numpy as np

    return stream[starts[:, None] + np.arange(context + 1)]


def windows(n_tokens: int, context: int, stride: int) -> Iterator[tuple[int, int, int]]:
    """Sliding windows that score every id of a stream of ``n_tokens`` but the first, once each:
    (start, end, first scored column). A window holds at most ``context + 1`` ids; after the first, each
    scores only its last ``stride`` targets, so every one is predicted from at least ``context - stride``
    tokens (the first window's from fewer). ``stride`` must be 1 .. ``context``: a longer one would leave
    targets between windows unscored, which flatters the perplexity they are averaged into."""
    if not 1 <= stride <= context:
        raise ValueError(f"the scoring stride must be between 1 and the context ({context}), not {stride}")
    done = 0  # the last target scored (targets are the stream's positions 1 .. n_tokens - 1)
    while done < n_tokens - 1:
        end = min(done + (stride if done else context) + 1, n_tokens)
        start = max(end - context - 1, 0)
        yield start, end, done - start
        done = end - 1
