"""Sentence pairs: checking records, and batches of similar length that fill a token budget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from toolkit.text.subwords import BOS_ID, EOS_ID, PAD_ID
from toolkit.records import check_records

if TYPE_CHECKING:
    import numpy as np


def check_pairs(records: list[dict], what: str = "training data") -> tuple[list[str], list[str]]:
    """Sources and targets of ``records`` ({"source", "target"}); DataError naming the first bad record."""
    records = check_records(records, ("source", "target"), what)
    return [r["source"].strip() for r in records], [r["target"].strip() for r in records]


class Batch(NamedTuple):
    src: np.ndarray  # (B, Ts) source ids + EOS, right-padded
    tgt_in: np.ndarray  # (B, Tt) BOS + target ids
    tgt_out: np.ndarray  # (B, Tt) target ids + EOS: what tgt_in should predict
    tokens: int  # target tokens that carry a loss


def pad_rows(rows: list[list[int]], pad_id: int = PAD_ID) -> np.ndarray:
    import numpy as np

    out = np.full((len(rows), max(map(len, rows))), pad_id, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def make_batch(src_ids: list[list[int]], tgt_ids: list[list[int]]) -> Batch:
    src = pad_rows([s + [EOS_ID] for s in src_ids])
    tgt_in = pad_rows([[BOS_ID] + t for t in tgt_ids])
    tgt_out = pad_rows([t + [EOS_ID] for t in tgt_ids])
    return Batch(src, tgt_in, tgt_out, sum(len(t) + 1 for t in tgt_ids))


def token_batches(src_ids: list[list[int]], tgt_ids: list[list[int]], batch_tokens: int) -> list[list[int]]:
    """Pair indices grouped by length so that each batch's padded size stays within ``batch_tokens``.

    Sorting by (target, source) length keeps padding small; the caller
    shuffles the order of the batches each epoch.
    """
    order = sorted(range(len(src_ids)), key=lambda i: (len(tgt_ids[i]), len(src_ids[i])))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        size = max(len(src_ids[i]), len(tgt_ids[i])) + 1
        if current and max(longest, size) * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, size)
    if current:
        batches.append(current)
    return batches


class EpochBatches(Sequence):
    """The batches of one epoch in a shuffled order, each padded when it is asked for: a whole epoch of
    padded arrays would be held at once otherwise, and the trainer resumes at any batch by its index."""

    def __init__(self, src_ids: list[list[int]], tgt_ids: list[list[int]], groups: list[list[int]],
                 rng: np.random.Generator) -> None:
        self.src_ids, self.tgt_ids, self.groups = src_ids, tgt_ids, groups
        self.order = rng.permutation(len(groups))

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> Batch:
        rows = self.groups[self.order[index]]
        return make_batch([self.src_ids[i] for i in rows], [self.tgt_ids[i] for i in rows])


def epoch_batches(src_ids: list[list[int]], tgt_ids: list[list[int]], groups: list[list[int]],
                  rng: np.random.Generator) -> EpochBatches:
    """The epoch's batches: ``groups`` (from :func:`token_batches`) in an order drawn from ``rng``."""
    return EpochBatches(src_ids, tgt_ids, groups, rng)
