"""Losses: each returns (mean loss as a float, gradient of it with respect to the prediction)."""

from __future__ import annotations

import numpy as np

Array = np.ndarray


def binary_cross_entropy_with_logits(logits: Array, targets: Array) -> tuple[float, Array]:
    """Mean BCE of sigmoid(logits) against 0/1 targets, computed from the logits.

    log(1 + e^z) - z*y through logaddexp never overflows, where log(sigmoid(z))
    would for large |z|.
    """
    z = logits.astype(np.float64)
    y = np.asarray(targets, dtype=np.float64).reshape(z.shape)
    loss = np.logaddexp(0.0, z) - z * y
    grad = (np.exp(-np.logaddexp(0.0, -z)) - y) / z.size
    return float(loss.mean()), grad.astype(np.float32)


def softmax_cross_entropy(
    logits: Array, targets: Array, label_smoothing: float = 0.0, ignore_index: int | None = None,
    dtype: type = np.float64,
) -> tuple[float, Array]:
    """Mean cross-entropy of softmax(logits) (..., C) against integer targets (...).

    With label smoothing s the target distribution is (1 - s) on the true class
    plus s / C everywhere. Positions whose target is ``ignore_index`` (padding)
    add nothing to the loss or the gradient, and are not counted in the mean.
    ``dtype`` is the working precision: np.float32 halves the memory traffic
    for the (tokens, vocabulary) logits of a translation model.
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    C = logits.shape[-1]
    z = logits.reshape(-1, C).astype(dtype)
    t = np.asarray(targets).reshape(-1)
    if t.shape[0] != z.shape[0]:
        raise ValueError(f"targets have {t.shape[0]} positions but logits have {z.shape[0]}")
    keep = np.ones(t.shape, dtype=bool) if ignore_index is None else t != ignore_index
    tk = np.where(keep, t, 0)
    if keep.any() and (tk[keep].min() < 0 or tk[keep].max() >= C):
        raise IndexError(f"targets must be class ids in [0, {C}), got {tk[keep].min()}..{tk[keep].max()}")
    rows = np.arange(len(tk))
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    total = p.sum(axis=1, keepdims=True)
    log_total = np.log(total)
    p /= total
    # -sum(q * logp) with q = s/C + (1-s) one-hot, without building q.
    smooth, true = label_smoothing / C, 1.0 - label_smoothing
    loss = -(true * (z[rows, tk] - log_total[:, 0]))
    if label_smoothing:
        loss -= smooth * (z.sum(axis=1, dtype=np.float64) - C * log_total[:, 0])
    n = max(int(keep.sum()), 1)
    p -= dtype(smooth)
    p[rows, tk] -= dtype(true)
    p *= (keep / n).astype(dtype)[:, None]
    return float((loss * keep).sum(dtype=np.float64) / n), p.reshape(logits.shape).astype(np.float32, copy=False)


def mean_squared_error(pred: Array, targets: Array) -> tuple[float, Array]:
    d = pred.astype(np.float64) - np.asarray(targets, dtype=np.float64).reshape(pred.shape)
    return float((d * d).mean()), (2.0 * d / d.size).astype(np.float32)
