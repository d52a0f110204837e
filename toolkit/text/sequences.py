"""Id sequences of different lengths to rectangular arrays: padding and batching.

``pad_sequences`` follows Keras: one (N, maxlen) array, padded and truncated
at the start ("pre") by default. ``batch_sequences`` pads each mini-batch
only to its own longest sequence and returns a mask of the real tokens, so
short batches cost less and attention layers can ignore padding.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import DTypeLike

SIDES = ("pre", "post")


def _check_side(name: str, side: str) -> None:
    if side not in SIDES:
        raise ValueError(f"{name} must be 'pre' or 'post', got {side!r}")


def _check_positive(name: str, value: Any, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    # bool is an int subclass; True as a length is a bug, not a 1.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")


def _check_sequences(sequences: Iterable[Any]) -> None:
    # A string is iterable, and a flat list of ints would fail much later
    # with a confusing "sequence 0 must be 1-D".
    if isinstance(sequences, (str, bytes)):
        raise TypeError("sequences must be an iterable of sequences, not a str")


def _as_row(seq: Any, i: int, dtype: np.dtype) -> np.ndarray:
    """Sequence ``i`` as a 1-D array whose values ``dtype`` can hold exactly."""
    row = np.asarray(seq)
    if row.ndim != 1:
        raise ValueError(f"sequence {i} must be 1-D, got shape {row.shape}")
    if row.size == 0:
        # np.asarray([]) is float64; an empty sequence is valid for any dtype.
        return row.astype(dtype)
    allowed = "iu" if dtype.kind in "iu" else "iuf"
    if row.dtype.kind not in allowed:
        raise TypeError(f"sequence {i} holds {row.dtype} values, which cannot be stored as {dtype} without loss")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = row.min(), row.max()
        if low < info.min or high > info.max:
            raise ValueError(f"sequence {i} has values in [{low}, {high}], outside the range of {dtype}")
    return row


def _check_value(value: Any, dtype: np.dtype) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"value must be a number, got {value!r}")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not isinstance(value, numbers.Integral) or not info.min <= value <= info.max:
            raise ValueError(f"value {value!r} cannot be stored exactly as {dtype}")


def _truncate(row: np.ndarray, maxlen: int, truncating: str) -> np.ndarray:
    if len(row) <= maxlen:
        return row
    return row[-maxlen:] if truncating == "pre" else row[:maxlen]


def pad_sequences(
    sequences: Iterable[Sequence[int] | np.ndarray],
    maxlen: int | None = None,
    padding: str = "pre",
    truncating: str = "pre",
    value: int | float = 0,
    dtype: DTypeLike = np.int32,
) -> np.ndarray:
    """Stack sequences into an (N, maxlen) array, Keras-style.

    maxlen: output width; None uses the longest sequence.
    padding: put ``value`` before ("pre") or after ("post") short sequences.
    truncating: drop the start ("pre", keeps the end) or the end ("post") of
        long sequences.
    dtype: an integer or float dtype; values that it cannot hold exactly
        (floats into ints, out of range) raise instead of wrapping.
    """
    _check_side("padding", padding)
    _check_side("truncating", truncating)
    _check_positive("maxlen", maxlen)
    dtype = np.dtype(dtype)
    if dtype.kind not in "iuf":
        raise TypeError(f"dtype must be an integer or float dtype, got {dtype}")
    _check_value(value, dtype)
    _check_sequences(sequences)
    rows = [_as_row(seq, i, dtype) for i, seq in enumerate(sequences)]
    if maxlen is None:
        maxlen = max((len(r) for r in rows), default=0)

    out = np.full((len(rows), maxlen), value, dtype=dtype)
    for i, row in enumerate(rows):
        row = _truncate(row, maxlen, truncating)
        n = len(row)
        if n == 0:
            continue
        if padding == "pre":
            out[i, maxlen - n :] = row
        else:
            out[i, :n] = row
    return out


class Batch(NamedTuple):
    """One mini-batch from ``batch_sequences``."""

    ids: np.ndarray  # (B, T) int32, padded with 0
    mask: np.ndarray  # (B, T) bool, True at real tokens
    index: np.ndarray  # (B,) int64 positions in the input, e.g. labels[batch.index]


def batch_sequences(
    sequences: Iterable[Sequence[int] | np.ndarray],
    batch_size: int,
    *,
    maxlen: int | None = None,
    shuffle: bool = False,
    seed: int | np.random.Generator | None = None,
    bucket: int | None = None,
    padding: str = "post",
    truncating: str = "pre",
    drop_last: bool = False,
) -> Iterator[Batch]:
    """Mini-batches of id sequences, each padded to its own longest row (at most ``maxlen``).

    shuffle: visit sequences in a random order drawn from ``seed`` (an int
        gives the same order on every call; pass a Generator to get a new
        order each epoch).
    bucket: when set, sequences are taken in pools of ``bucket * batch_size``
        (after shuffling) and sorted by length within each pool before being
        cut into batches, so a batch holds sequences of similar length and
        little padding; with ``shuffle`` the batch order is then shuffled.
    padding, truncating: as in ``pad_sequences``; padding defaults to "post"
        so that real tokens start at column 0.
    drop_last: skip the final batch when it is smaller than ``batch_size``.

    Every batch has at least one column, so a batch of empty sequences is a
    (B, 1) row of padding with an all-False mask rather than a zero-width
    array. Arguments are checked when called, before the first batch.
    """
    _check_positive("batch_size", batch_size, allow_none=False)
    _check_positive("maxlen", maxlen)
    _check_positive("bucket", bucket)
    _check_side("padding", padding)
    _check_side("truncating", truncating)
    _check_sequences(sequences)
    int32 = np.dtype(np.int32)
    rows = [_as_row(seq, i, int32) for i, seq in enumerate(sequences)]
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    if maxlen is not None:
        lengths = np.minimum(lengths, maxlen)

    rng = np.random.default_rng(seed) if shuffle else None
    order = rng.permutation(len(rows)) if rng is not None else np.arange(len(rows))
    if bucket is not None:
        pool = bucket * batch_size
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            # Stable, so equal lengths keep their (shuffled) order.
            order[start : start + pool] = chunk[np.argsort(lengths[chunk], kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    if bucket is not None and rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return _make_batches(rows, lengths, batches, padding, truncating)


def _make_batches(
    rows: list[np.ndarray], lengths: np.ndarray, batches: list[np.ndarray], padding: str, truncating: str
) -> Iterator[Batch]:
    for index in batches:
        lens = lengths[index]
        width = max(1, int(lens.max()))
        ids = np.zeros((len(index), width), dtype=np.int32)
        columns = np.arange(width)
        if padding == "post":
            mask = columns < lens[:, None]
        else:
            mask = columns >= (width - lens)[:, None]
        for b, (i, n) in enumerate(zip(index.tolist(), lens.tolist())):
            if n:
                row = _truncate(rows[i], n, truncating)
                if padding == "post":
                    ids[b, :n] = row
                else:
                    ids[b, width - n :] = row
        yield Batch(ids, mask, index.astype(np.int64))
