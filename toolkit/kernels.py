"""The compiled kernels: embedding lookup, 1-D convolution, attention (full
and one decode step against a key/value cache), layer norm, GELU, and softmax
cross-entropy fused with the output projection.

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
    layout: str = "bhtd",
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

    q, k, v need a contiguous last axis only: (B, H, T, D)-shaped views of
    (B, T, H, D) arrays (the heads of a projection, without a copy) are read
    in place. ``layout`` is out's memory layout: "bhtd", C-contiguous, or
    "bthd", a (B, H, T, Dv)-shaped view of a C-contiguous (B, T, H, Dv)
    array, whose heads merge back into (B, T, H * Dv) with a free reshape.
    """
    return _kernels.attention_forward(q, k, v, key_padding_mask, causal, scale, layout)


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
    layout: str = "bhtd",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of attention_forward: returns (dq, dk, dv).

    Takes the forward's inputs, its out and lse, and the same mask options;
    the attention probabilities are recomputed tile by tile from lse. dout
    and out, like q, k, v, need a contiguous last axis only; ``layout`` is
    that of dq, dk, dv, as attention_forward's of out.
    """
    return _kernels.attention_backward(dout, q, k, v, out, lse, key_padding_mask, causal, scale, layout)


def attention_decode(
    q: np.ndarray,
    k_cache: np.ndarray,
    v_cache: np.ndarray,
    lengths: np.ndarray,
    starts: np.ndarray | None = None,
    scale: float | None = None,
) -> np.ndarray:
    """One decoding step: each sequence's new query against its cached keys and values.

    q: (B, H, 1, D). k_cache: (B, H, Lmax, D), v_cache: (B, H, Lmax, Dv),
    preallocated to the context length Lmax (see cache_write). lengths: (B,)
    int64 (or int32), 1 <= lengths[b] <= Lmax: sequence b's query attends to
    cache positions [starts[b], lengths[b]) of every head. starts: (B,) or
    None (all 0), 0 <= starts[b] < lengths[b]: the left padding of a prompt,
    so that prompts of different lengths share a batch. scale defaults to
    1 / sqrt(D). Returns out (B, H, 1, Dv) float32:
    softmax(scale * q k[start:length]^T) v[start:length]. The cache is read
    once, in place (no copy of the valid prefix); positions at or beyond
    lengths[b] are never read, so they may hold anything. Forward only.
    Bad shapes, dtypes or lengths/starts out of range raise TypeError or
    ValueError before any C code runs.
    """
    return _kernels.attention_decode(q, k_cache, v_cache, lengths, starts, scale)


def cache_write(cache: np.ndarray, new: np.ndarray, positions: int | np.ndarray) -> None:
    """Write new keys (or values) into a preallocated cache, in place.

    cache: (B, H, Lmax, D) float32, C-contiguous, writable. new: (B, H, T, D)
    float32, C-contiguous (T may be 0). positions: an int for every sequence,
    or (B,) int64/int32: cache[b, :, positions[b] + t] = new[b, :, t] for t < T.
    Needs 0 <= positions[b] and positions[b] + T <= Lmax, else ValueError
    (nothing is written). Returns None. A typical step:
    ``cache_write(k_cache, k_new, lengths); cache_write(v_cache, v_new, lengths);
    lengths += T``, then attention_decode with the new lengths.
    """
    return _kernels.cache_write(cache, new, positions)


def top_k_log_softmax(
    logits: np.ndarray, k: int, banned: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The k most probable tokens of each row: ``log_softmax(logits)`` at the row's k largest logits.

    logits: (R, V) float32, C-contiguous. Returns values (R, k) float32,
    descending (equal values: the lower token id first), and indices (R, k)
    int64. banned: token ids never chosen (they still count in the
    normaliser, as setting their log-probabilities to -inf after a
    log_softmax does). Needs 1 <= k <= V - len(banned). Two passes over each
    row; the (R, V) log-probabilities are never stored (a beam search step).
    A row whose logits are all -inf gives -inf values; a NaN logit, NaN
    values. Bad shapes, dtypes, k or banned ids raise TypeError or ValueError
    before any C code runs.
    """
    return _kernels.top_k_log_softmax(logits, k, banned)


def layer_norm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer norm over the last axis: y = (x - mean) / sqrt(var + eps) * gamma + beta.

    x: (..., D) float32; gamma, beta: (D,). var is the biased variance (as
    torch.nn.functional.layer_norm). eps: a finite number >= 0, used as float32.
    Returns (y, mean, rstd): y like x; mean and rstd = 1 / sqrt(var + eps) of
    shape x.shape[:-1], which the backward takes.
    """
    return _kernels.layer_norm_forward(x, gamma, beta, eps)


def add_layer_norm_forward(
    x: np.ndarray, residual: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Residual add fused with layer norm: s = x + residual, y = layer_norm(s).

    Returns (y, s, mean, rstd). The backward is layer_norm_backward(dy, s,
    gamma, mean, rstd, ds=<gradient of s, if s is used further>), whose dx is
    the gradient of both x and residual.
    """
    return _kernels.add_layer_norm_forward(x, residual, gamma, beta, eps)


def layer_norm_backward(
    dy: np.ndarray,
    x: np.ndarray,
    gamma: np.ndarray,
    mean: np.ndarray,
    rstd: np.ndarray,
    ds: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of layer_norm_forward: returns (dx, dgamma, dbeta).

    x is what was normalised (s for the fused form), mean and rstd what the
    forward returned. ds, like x, is added to dx when given (the gradient
    reaching the fused form's s from elsewhere).
    """
    return _kernels.layer_norm_backward(dy, x, gamma, mean, rstd, ds)


def gelu_forward(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """GELU, elementwise, any shape: x * Phi(x).

    approximate: "none" (exact, with erf, as torch's default) or "tanh":
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as in BERT and GPT-2.
    """
    return _kernels.gelu_forward(x, approximate)


def gelu_backward(dy: np.ndarray, x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """Gradient of gelu_forward: dy times the derivative at x (same approximate)."""
    return _kernels.gelu_backward(dy, x, approximate)


def adam_step(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, lr: float, beta1: float,
              beta2: float, eps: float, t: int, weight_decay: float = 0.0, decoupled: bool = False) -> None:
    """Adam's step ``t`` (from 1) on one parameter array, in place, in one pass; the gradient is left zeroed.

    PyTorch's formula: g = grad (+ weight_decay * param unless decoupled);
    m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
    param -= lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps).
    With ``decoupled`` (AdamW), param is first scaled by 1 - lr * weight_decay.
    All four arrays: float32, C-contiguous, writable, the same shape, no
    two sharing memory. Returns None.
    """
    return _kernels.adam_step(param, grad, m, v, lr, beta1, beta2, eps, t, weight_decay, decoupled)


CE_BLOCK = 512  # vocabulary columns per block of linear_cross_entropy (measured best at V=8000 and 50257)
IGNORE_INDEX = -100  # as torch.nn.functional.cross_entropy


def linear_cross_entropy(
    h: np.ndarray,
    w: np.ndarray,
    targets: np.ndarray,
    bias: np.ndarray | None = None,
    ignore_index: int = IGNORE_INDEX,
    block: int = CE_BLOCK,
) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy of the logits ``h @ w.T (+ bias)``, without storing them.

    h: (N, D) float32; w: (V, D) float32 (the output projection, e.g. a tied
    embedding table); targets: (N,) int32/int64, each in [0, V) or equal to
    ``ignore_index`` (that row is left out of the mean); bias: (V,) or None.
    The logits are computed ``block`` vocabulary columns at a time with a
    running log-sum-exp per row. Returns (loss, lse): the mean over the
    counted rows as a Python float (NaN when no row counts, as torch), and
    lse (N,) float32, each row's log-sum-exp, which the backward takes.
    """
    return _kernels.linear_cross_entropy(h, w, targets, bias, ignore_index, block)


def linear_cross_entropy_backward(
    h: np.ndarray,
    w: np.ndarray,
    targets: np.ndarray,
    lse: np.ndarray,
    bias: np.ndarray | None = None,
    ignore_index: int = IGNORE_INDEX,
    block: int = CE_BLOCK,
    dloss: float = 1.0,
    dw_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of ``dloss`` times the mean loss of linear_cross_entropy: (dh, dw, dbias).

    Takes the forward's arguments and its lse; each block's logits are
    recomputed. dh (N, D), dw (V, D), dbias (V,) (None without a bias).
    With ``dw_out`` (V, D), writable, the weight gradient is added into it
    (gradient accumulation, as for a tied embedding table) and it is
    returned as dw; it must not share memory with the inputs.
    """
    return _kernels.linear_cross_entropy_backward(h, w, targets, lse, bias, ignore_index, block, dloss, dw_out)


def linear_cross_entropy_with_grad(
    h: np.ndarray,
    w: np.ndarray,
    targets: np.ndarray,
    bias: np.ndarray | None = None,
    ignore_index: int = IGNORE_INDEX,
    block: int = CE_BLOCK,
    dloss: float = 1.0,
    dw_out: np.ndarray | None = None,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Forward and backward in one call, for a training step: (loss, lse, dh, dw, dbias).

    The same results as linear_cross_entropy followed by its backward (with
    ``dloss`` given up front), but each chunk of rows keeps its logits over
    the whole vocabulary (at most about 64 MB) between its log-sum-exp and
    its gradient, so they are computed once instead of twice.
    """
    return _kernels.linear_cross_entropy_with_grad(h, w, targets, bias, ignore_index, block, dloss, dw_out)
