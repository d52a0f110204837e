"""The compiled kernels: embedding lookup, 1-D convolution and attention.

Every function takes and returns numpy arrays: float32 data, int32 or int64
ids, all C-contiguous. Arguments are checked before any C code runs; bad input
raises TypeError, ValueError or IndexError, never crashes. The GIL is released
while a kernel runs, and OpenMP threads follow ``OMP_NUM_THREADS``.

``toolkit.numpy_kernels`` holds a pure-numpy reference of every function here,
with the same signatures; the test suite runs against both. Layouts and what
each backward needs from its forward are in docs/kernels.md.
"""

from __future__ import annotations

import os

import numpy as np

# Our idle OpenMP threads sleep instead of spinning. libgomp's default spins
# for a while after each parallel region, which on a small machine steals the
# cores from whatever runs next (a numpy matmul, the BLAS threads, another
# process): measured here, a 128x128 matmul right after a kernel took 27 ms
# instead of 0.06 ms. Waking a sleeping thread costs microseconds, nothing next
# to a kernel. libgomp reads the variable once, when it loads with the
# extension; it is removed again afterwards so that other OpenMP runtimes
# loaded later (PyTorch and scikit-learn bring their own) keep their defaults.
# A value the user set is left alone.
_wait_policy_unset = "OMP_WAIT_POLICY" not in os.environ
if _wait_policy_unset:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
try:
    from toolkit import _kernels
finally:
    if _wait_policy_unset:
        del os.environ["OMP_WAIT_POLICY"]

# A child made by fork inherits libgomp's record of the parent's thread team
# but not the threads: its next parallel region waits for them forever (a
# pipeline in a fork-started multiprocessing pool hung so). On one thread a
# region needs no team. Use the "spawn" start method for parallel kernels in
# child processes.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_kernels.serial_after_fork)


def openmp_enabled() -> bool:
    """Whether the kernels were compiled with OpenMP (otherwise they run on one thread)."""
    return _kernels.openmp_enabled()


def max_threads() -> int:
    """How many threads a kernel will use: ``OMP_NUM_THREADS``, else the number of cores."""
    return _kernels.max_threads()


def embedding_forward(table: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Gather rows: ``out[..., :] = table[ids[...], :]``.

    table: (V, D) float32. ids: any shape, int32/int64, each in [0, V).
    Returns ids.shape + (D,). An id out of range raises IndexError naming it.
    """
    return _kernels.embedding_forward(table, ids)


def embedding_backward(
    grad_out: np.ndarray,
    ids: np.ndarray,
    vocab_size: int,
    padding_idx: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Dense gradient of the table: scatter-add ``grad_out`` rows by ``ids``.

    grad_out: ids.shape + (D,). Returns (vocab_size, D); when ``out`` is given
    the rows are added into it (gradient accumulation) and it is returned,
    also when it shares memory with ``grad_out``. vocab_size is at most
    2**31 - 1 (ValueError above), like every dimension.
    The row of ``padding_idx`` receives nothing.
    """
    return _kernels.embedding_backward(grad_out, ids, vocab_size, padding_idx, out)


def embedding_backward_sparse(
    grad_out: np.ndarray, ids: np.ndarray, vocab_size: int, padding_idx: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row-sparse gradient of the table, for large vocabularies.

    Returns ``(unique_ids, rows)``: the sorted distinct ids seen (int64, the
    padding id left out) and, for each, the sum of its ``grad_out`` rows,
    shape (len(unique_ids), D). ``grad[unique_ids] += rows`` gives the dense
    gradient.
    """
    return _kernels.embedding_backward_sparse(grad_out, ids, vocab_size, padding_idx)


def conv1d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, padding: str = "valid"
) -> np.ndarray:
    """1-D convolution (cross-correlation), stride 1, channels last.

    x: (B, T, C); w: (K, C, F); b: (F,) or None. ``padding`` is "valid"
    (output length T - K + 1; K > T raises ValueError) or "same" (output
    length T, (K - 1) // 2 zeros before and the rest after).
    Returns y (B, To, F) with y[b, t, f] = b[f] + sum_{k,c} x[b, t + k - pad, c] w[k, c, f].
    """
    return _kernels.conv1d_forward(x, w, b, padding)


def conv1d_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, padding: str = "valid"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of conv1d_forward: returns (dx, dw, db) for dy of shape (B, To, F)."""
    return _kernels.conv1d_backward(dy, x, w, padding)


def conv1d_relu_maxpool_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, padding: str = "valid"
) -> tuple[np.ndarray, np.ndarray]:
    """Fused conv1d -> bias -> ReLU -> max over time, without storing the (B, To, F) activation.

    Returns (pooled, argmax): pooled (B, F) float32 is max_t relu(y[b, t, f]);
    argmax (B, F) int32 is the first step t where y[b, :, f] peaks. Keep both
    for the backward.
    """
    return _kernels.conv1d_relu_maxpool_forward(x, w, b, padding)


def conv1d_relu_maxpool_backward(
    dpooled: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    pooled: np.ndarray,
    argmax: np.ndarray,
    padding: str = "valid",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of the fused forward: returns (dx, dw, db).

    The gradient of each (b, f) flows only through its argmax step, and only
    where pooled[b, f] > 0 (where the ReLU passed it).
    """
    return _kernels.conv1d_relu_maxpool_backward(dpooled, x, w, pooled, argmax, padding)


def attention_forward(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    key_padding_mask: np.ndarray | None = None,
    causal: bool = False,
    scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled dot-product attention: softmax(scale * q k^T + mask) v.

    q: (B, H, Tq, D); k: (B, H, Tk, D); v: (B, H, Tk, Dv); Tq may differ from
    Tk (cross-attention). key_padding_mask: (B, Tk) bool, True marks a padding
    key that no query attends to. causal: query i sees key j only when
    j <= i + (Tk - Tq), so the last query sees every key (as decoding with a
    key/value cache needs). scale defaults to 1 / sqrt(D); the kernels compute
    in float32, so a scale beyond its range (|scale| > 3.4e38) raises ValueError.
    Returns (out (B, H, Tq, Dv), lse (B, H, Tq)): lse is the log-sum-exp of
    each row's logits, all the backward needs besides the inputs and out.
    A query that sees no key gets zeros and lse = -inf.
    """
    return _kernels.attention_forward(q, k, v, key_padding_mask, causal, scale)


def attention_backward(
    dout: np.ndarray,
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    out: np.ndarray,
    lse: np.ndarray,
    key_padding_mask: np.ndarray | None = None,
    causal: bool = False,
    scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of attention_forward: returns (dq, dk, dv).

    Takes the forward's inputs, its out and lse, and the same mask options;
    the attention probabilities are recomputed tile by tile from lse.
    """
    return _kernels.attention_backward(dout, q, k, v, out, lse, key_padding_mask, causal, scale)
