"""Pure-numpy reference of every kernel in ``toolkit.kernels``.

Same functions, same signatures, same argument checks, same results (float32
out) — written for clarity, computed in float64, and slow. The test suite
checks the compiled kernels against these and runs the gradient checks on
both. Nothing here is used on a hot path.

The argument checks of the decode, cache, layer norm and GELU kernels live at
the end of this module (the bindings import them from here), until they move
to ``toolkit._checks`` with the others.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from toolkit import _checks


def embedding_forward(table: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Reference of kernels.embedding_forward."""
    table = _checks.table_array(table)
    ids = _checks.ids_array(ids, "ids", table.shape[0])
    return table[ids]


def _dense_grad(grad_out: np.ndarray, ids: np.ndarray, vocab_size: int, pad: int) -> np.ndarray:
    grad_out = _checks.grad_rows(grad_out, ids)
    D = grad_out.shape[-1]
    grad = np.zeros((vocab_size, D), dtype=np.float64)
    np.add.at(grad, ids.reshape(-1), grad_out.reshape(-1, D))
    if pad >= 0:
        grad[pad] = 0.0
    return grad


def embedding_backward(
    grad_out: np.ndarray,
    ids: np.ndarray,
    vocab_size: int,
    padding_idx: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Reference of kernels.embedding_backward."""
    vocab_size = _checks.vocab_size(vocab_size)
    ids = _checks.ids_array(ids, "ids", vocab_size)
    pad = _checks.padding_id(padding_idx, vocab_size)
    grad = _dense_grad(grad_out, ids, vocab_size, pad)
    if out is None:
        return grad.astype(np.float32)
    out = _checks.writable(_checks.float_array(out, "out", 2), "out")
    _checks.same_shape("out", out.shape, "(vocab_size, D)", grad.shape)
    out += grad.astype(np.float32)
    return out


def embedding_backward_sparse(
    grad_out: np.ndarray, ids: np.ndarray, vocab_size: int, padding_idx: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reference of kernels.embedding_backward_sparse."""
    vocab_size = _checks.vocab_size(vocab_size)
    ids = _checks.ids_array(ids, "ids", vocab_size)
    pad = _checks.padding_id(padding_idx, vocab_size)
    grad = _dense_grad(grad_out, ids, vocab_size, pad)
    unique = np.unique(ids)
    unique = unique[unique != pad].astype(np.int64)
    return unique, grad[unique].astype(np.float32)


def _padded(x: np.ndarray, w: np.ndarray, padding: str) -> tuple[np.ndarray, int, int]:
    """x in float64 with the zeros that the padding adds, the left padding and the output length."""
    pad_left, To = _checks.conv_geometry(x, w, padding)
    K, T = w.shape[0], x.shape[1]
    pad_right = max(To + K - 1 - T - pad_left, 0)
    return np.pad(x.astype(np.float64), ((0, 0), (pad_left, pad_right), (0, 0))), pad_left, To


def _conv64(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, padding: str) -> np.ndarray:
    xp, _, To = _padded(x, w, padding)
    w64 = w.astype(np.float64)
    y = sum(xp[:, k : k + To, :] @ w64[k] for k in range(w.shape[0]))
    if b is not None:
        y = y + b.astype(np.float64)
    return y


def conv1d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, padding: str = "valid"
) -> np.ndarray:
    """Reference of kernels.conv1d_forward."""
    x = _checks.float_array(x, "x", 3)
    w = _checks.float_array(w, "w", 3)
    b = _checks.bias_vector(b, w.shape[2])
    return _conv64(x, w, b, padding).astype(np.float32)


def _conv_grads(dy: np.ndarray, x: np.ndarray, w: np.ndarray, padding: str) -> tuple[np.ndarray, ...]:
    xp, pad_left, To = _padded(x, w, padding)
    K, T = w.shape[0], x.shape[1]
    w64 = w.astype(np.float64)
    dxp = np.zeros_like(xp)
    dw = np.zeros(w.shape, dtype=np.float64)
    for k in range(K):
        dxp[:, k : k + To, :] += dy @ w64[k].T
        dw[k] = np.einsum("btc,btf->cf", xp[:, k : k + To, :], dy)
    dx = dxp[:, pad_left : pad_left + T, :]
    return dx.astype(np.float32), dw.astype(np.float32), dy.sum(axis=(0, 1)).astype(np.float32)


def conv1d_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, padding: str = "valid"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference of kernels.conv1d_backward."""
    x = _checks.float_array(x, "x", 3)
    w = _checks.float_array(w, "w", 3)
    To = _checks.conv_geometry(x, w, padding)[1]
    dy = _checks.float_array(dy, "dy", 3)
    _checks.same_shape("dy", dy.shape, "the conv1d output", (x.shape[0], To, w.shape[2]))
    return _conv_grads(dy.astype(np.float64), x, w, padding)


def conv1d_relu_maxpool_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, padding: str = "valid"
) -> tuple[np.ndarray, np.ndarray]:
    """Reference of kernels.conv1d_relu_maxpool_forward: the unfused sequence."""
    x = _checks.float_array(x, "x", 3)
    w = _checks.float_array(w, "w", 3)
    b = _checks.bias_vector(b, w.shape[2])
    y = _conv64(x, w, b, padding)
    argmax = y.argmax(axis=1).astype(np.int32)
    pooled = np.maximum(y.max(axis=1), 0.0)
    return pooled.astype(np.float32), argmax


def conv1d_relu_maxpool_backward(
    dpooled: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    pooled: np.ndarray,
    argmax: np.ndarray,
    padding: str = "valid",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference of kernels.conv1d_relu_maxpool_backward: scatter to a dense dy, then conv backward."""
    x = _checks.float_array(x, "x", 3)
    w = _checks.float_array(w, "w", 3)
    To = _checks.conv_geometry(x, w, padding)[1]
    B, F = x.shape[0], w.shape[2]
    dpooled = _checks.float_array(dpooled, "dpooled", 2)
    pooled = _checks.float_array(pooled, "pooled", 2)
    _checks.same_shape("dpooled", dpooled.shape, "(B, F)", (B, F))
    _checks.same_shape("pooled", pooled.shape, "(B, F)", (B, F))
    argmax = _checks.argmax_array(argmax, (B, F), To)
    dy = np.zeros((B, To, F), dtype=np.float64)
    bi, fi = np.meshgrid(np.arange(B), np.arange(F), indexing="ij")
    dy[bi, argmax, fi] = np.where(pooled > 0, dpooled, 0.0)
    return _conv_grads(dy, x, w, padding)


def _probabilities(
    q: np.ndarray, k: np.ndarray, keep: np.ndarray | None, causal: bool, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities (float64) and the row log-sum-exp, masked rows as zeros and -inf."""
    s = scale * (q.astype(np.float64) @ np.swapaxes(k.astype(np.float64), -1, -2))
    Tq, Tk = q.shape[2], k.shape[2]
    visible = np.ones((q.shape[0], 1, Tq, Tk), dtype=bool)
    if keep is not None:
        visible &= keep.astype(bool)[:, None, None, :]
    if causal:
        visible &= np.tril(np.ones((Tq, Tk), dtype=bool), k=Tk - Tq)
    s = np.where(visible, s, -np.inf)
    # A row that sees no key gives zeros and lse = -inf. Any other row is a
    # plain softmax, so NaN or infinite logits come out as NaN.
    seen = visible.any(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        m = np.where(seen, s.max(axis=-1, keepdims=True), 0.0)
        e = np.where(visible, np.exp(s - m), 0.0)
        total = np.where(seen, e.sum(axis=-1, keepdims=True), 1.0)
        p = e / total
        lse = np.where(seen, m + np.log(total), -np.inf)[..., 0]
    return p, lse


def attention_forward(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    key_padding_mask: np.ndarray | None = None,
    causal: bool = False,
    scale: float | None = None,
    layout: str = "bhtd",
) -> tuple[np.ndarray, np.ndarray]:
    """Reference of kernels.attention_forward: the full probability matrix, in float64."""
    keep, scale = _checks.attention_inputs(q, k, v, key_padding_mask, scale)
    _checks.attention_layout(layout)
    p, lse = _probabilities(q, k, keep, causal, scale)
    return _laid_out(p @ v.astype(np.float64), layout), lse.astype(np.float32)


def _laid_out(x: np.ndarray, layout: str) -> np.ndarray:
    """x as float32 in the memory layout the kernels give for ``layout``."""
    out = _checks.attention_result(x.shape, layout)
    out[...] = x
    return out


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
    """Reference of kernels.attention_backward (recomputes the probabilities from q and k)."""
    keep, scale = _checks.attention_inputs(q, k, v, key_padding_mask, scale)
    _checks.attention_backward_inputs(dout, out, lse, q, v)
    _checks.attention_layout(layout)
    p, _ = _probabilities(q, k, keep, causal, scale)
    do = dout.astype(np.float64)
    dv = np.swapaxes(p, -1, -2) @ do
    dp = do @ np.swapaxes(v.astype(np.float64), -1, -2)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    dq = scale * ds @ k.astype(np.float64)
    dk = scale * np.swapaxes(ds, -1, -2) @ q.astype(np.float64)
    return _laid_out(dq, layout), _laid_out(dk, layout), _laid_out(dv, layout)


def attention_decode(
    q: np.ndarray,
    k_cache: np.ndarray,
    v_cache: np.ndarray,
    lengths: np.ndarray,
    starts: np.ndarray | None = None,
    scale: float | None = None,
) -> np.ndarray:
    """Reference of kernels.attention_decode: one plain float64 softmax per sequence."""
    lengths, starts, scale = _checks.decode_inputs(q, k_cache, v_cache, lengths, starts, scale)
    B, H = q.shape[:2]
    out = np.empty((B, H, 1, v_cache.shape[3]), dtype=np.float32)
    for b in range(B):
        lo, hi = (0 if starts is None else int(starts[b])), int(lengths[b])
        s = scale * (q[b].astype(np.float64) @ np.swapaxes(k_cache[b, :, lo:hi].astype(np.float64), -1, -2))
        with np.errstate(invalid="ignore"):
            e = np.exp(s - s.max(axis=-1, keepdims=True))
            out[b] = (e / e.sum(axis=-1, keepdims=True)) @ v_cache[b, :, lo:hi].astype(np.float64)
    return out


def cache_write(cache: np.ndarray, new: np.ndarray, positions: int | np.ndarray) -> None:
    """Reference of kernels.cache_write."""
    positions = _checks.cache_write_inputs(cache, new, positions)
    new = new.copy()  # as the kernel: right also when new is a view of cache
    for b, p in enumerate(positions):
        cache[b, :, p : p + new.shape[2]] = new[b]


def top_k_log_softmax(
    logits: np.ndarray, k: int, banned: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reference of kernels.top_k_log_softmax: a float64 log-sum-exp, then a sort of every row."""
    banned = _checks.top_k_inputs(logits, k, banned)
    x = logits.astype(np.float64)
    # The maximum ignores NaN, which reaches the values through the sum; a row of -inf has no distribution.
    nan = np.isnan(x).any(axis=1, keepdims=True)
    m = np.where(np.isnan(x), -np.inf, x).max(axis=1, keepdims=True)
    shift = np.where(m == -np.inf, 0.0, m)
    with np.errstate(invalid="ignore", divide="ignore"):
        lse = np.where(m == -np.inf, np.where(nan, np.nan, 0.0),
                       shift + np.log(np.exp(x - shift).sum(axis=1, keepdims=True)))
    allowed = np.setdiff1d(np.arange(logits.shape[1]), banned)
    # Descending by value, the lower id first among equals (a stable sort of the negated values).
    order = np.argsort(-logits[:, allowed], axis=1, kind="stable")[:, :k]
    indices = allowed[order]
    values = np.take_along_axis(logits, indices, axis=1) - lse.astype(np.float32)
    return values.astype(np.float32), indices.astype(np.int64)


def _layer_norm64(s: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> tuple[np.ndarray, ...]:
    s = s.astype(np.float64)
    mean = s.mean(axis=-1)
    rstd = 1.0 / np.sqrt(((s - mean[..., None]) ** 2).mean(axis=-1) + eps)
    y = (s - mean[..., None]) * rstd[..., None] * gamma.astype(np.float64) + beta.astype(np.float64)
    # asarray: for a 1-D x the statistics are 0-d arrays, not numpy scalars.
    return y.astype(np.float32), np.asarray(mean, np.float32), np.asarray(rstd, np.float32)


def layer_norm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference of kernels.layer_norm_forward."""
    eps = _checks.layer_norm_inputs(x, None, gamma, beta, eps, False)
    return _layer_norm64(x, gamma, beta, eps)


def add_layer_norm_forward(
    x: np.ndarray, residual: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reference of kernels.add_layer_norm_forward: the add (in float32, as the kernel), then the norm."""
    eps = _checks.layer_norm_inputs(x, residual, gamma, beta, eps, True)
    s = x + residual
    y, mean, rstd = _layer_norm64(s, gamma, beta, eps)
    return y, s, mean, rstd


def layer_norm_backward(
    dy: np.ndarray,
    x: np.ndarray,
    gamma: np.ndarray,
    mean: np.ndarray,
    rstd: np.ndarray,
    ds: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference of kernels.layer_norm_backward, in float64 from the saved mean and rstd."""
    _checks.layer_norm_backward_inputs(dy, x, gamma, mean, rstd, ds)
    D = x.shape[-1]
    r = rstd.astype(np.float64)[..., None]
    xhat = (x.astype(np.float64) - mean.astype(np.float64)[..., None]) * r
    dy64 = dy.astype(np.float64)
    g = dy64 * gamma.astype(np.float64)
    dx = r * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    if ds is not None:
        dx = dx + ds
    dgamma = (dy64 * xhat).reshape(-1, D).sum(axis=0)
    return dx.astype(np.float32), dgamma.astype(np.float32), dy64.reshape(-1, D).sum(axis=0).astype(np.float32)


_GELU_C = math.sqrt(2.0 / math.pi)


def gelu_forward(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """Reference of kernels.gelu_forward."""
    _checks.gelu_inputs(x, approximate)
    x = x.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        if approximate == "tanh":
            y = 0.5 * x * (1.0 + np.tanh(_GELU_C * (x + 0.044715 * x**3)))
        else:
            y = 0.5 * x * (1.0 + special.erf(x / math.sqrt(2.0)))
    return y.astype(np.float32)


def gelu_backward(dy: np.ndarray, x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """Reference of kernels.gelu_backward."""
    _checks.gelu_inputs(x, approximate, dy)
    x = x.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        if approximate == "tanh":
            t = np.tanh(_GELU_C * (x + 0.044715 * x**3))
            d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * x**2)
        else:
            d = 0.5 * (1.0 + special.erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return (dy.astype(np.float64) * d).astype(np.float32)


def _logits64(h: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    z = h.astype(np.float64) @ w.astype(np.float64).T
    return z if bias is None else z + bias.astype(np.float64)


def _log_sum_exp(z: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        top = z.max(axis=1)
        return np.log(np.exp(z - top[:, None]).sum(axis=1)) + top


def linear_cross_entropy(
    h: np.ndarray,
    w: np.ndarray,
    targets: np.ndarray,
    bias: np.ndarray | None = None,
    ignore_index: int = _checks.DEFAULT_IGNORE_INDEX,
    block: int = 512,
) -> tuple[float, np.ndarray]:
    """Reference of kernels.linear_cross_entropy: the whole (N, V) logits in float64, log-softmax, NLL."""
    t, count, _ = _checks.linear_cross_entropy_inputs(h, w, targets, bias, ignore_index, block)
    z = _logits64(h, w, bias)
    lse = _log_sum_exp(z)
    keep = t >= 0
    losses = lse[keep] - z[np.flatnonzero(keep), t[keep]]
    loss = float(losses.sum() / count) if count else float("nan")
    return loss, lse.astype(np.float32)


def linear_cross_entropy_backward(
    h: np.ndarray,
    w: np.ndarray,
    targets: np.ndarray,
    lse: np.ndarray,
    bias: np.ndarray | None = None,
    ignore_index: int = _checks.DEFAULT_IGNORE_INDEX,
    block: int = 512,
    dloss: float = 1.0,
    dw_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Reference of kernels.linear_cross_entropy_backward (softmax recomputed in float64; lse only checked)."""
    t, count, _ = _checks.linear_cross_entropy_inputs(h, w, targets, bias, ignore_index, block)
    _checks.linear_cross_entropy_backward_inputs(h, w, bias, lse, dw_out)
    coef = _checks.loss_gradient(dloss) / count if count else 0.0
    z = _logits64(h, w, bias)
    with np.errstate(invalid="ignore", over="ignore"):
        g = np.exp(z - _log_sum_exp(z)[:, None])
    keep = t >= 0
    g[np.flatnonzero(keep), t[keep]] -= 1.0
    g[~keep] = 0.0
    g *= coef
    dh = (g @ w.astype(np.float64)).astype(np.float32)
    dw = (g.T @ h.astype(np.float64)).astype(np.float32)
    if dw_out is not None:
        dw_out += dw
        dw = dw_out
    return dh, dw, None if bias is None else g.sum(axis=0).astype(np.float32)


def linear_cross_entropy_with_grad(
    h: np.ndarray,
    w: np.ndarray,
    targets: np.ndarray,
    bias: np.ndarray | None = None,
    ignore_index: int = _checks.DEFAULT_IGNORE_INDEX,
    block: int = 512,
    dloss: float = 1.0,
    dw_out: np.ndarray | None = None,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Reference of kernels.linear_cross_entropy_with_grad: the forward, then the backward."""
    _checks.linear_cross_entropy_inputs(h, w, targets, bias, ignore_index, block)
    _checks.linear_cross_entropy_backward_inputs(h, w, bias, None, dw_out, one_call=True)
    _checks.loss_gradient(dloss)
    loss, lse = linear_cross_entropy(h, w, targets, bias, ignore_index, block)
    return (loss, lse, *linear_cross_entropy_backward(h, w, targets, lse, bias, ignore_index, block, dloss, dw_out))


def adam_step(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, lr: float, beta1: float,
              beta2: float, eps: float, t: int, weight_decay: float = 0.0, decoupled: bool = False) -> None:
    """Reference of kernels.adam_step, in float64."""
    lr, beta1, beta2, eps, t, weight_decay = _checks.adam_inputs(param, grad, m, v, lr, beta1, beta2, eps, t,
                                                                weight_decay)
    p, g = param.astype(np.float64), grad.astype(np.float64)
    if not decoupled:
        g = g + weight_decay * p
    m64 = beta1 * m + (1.0 - beta1) * g
    v64 = beta2 * v + (1.0 - beta2) * g * g
    if decoupled:
        p = p * (1.0 - lr * weight_decay)
    param[...] = p - lr / (1.0 - beta1**t) * m64 / (np.sqrt(v64 / (1.0 - beta2**t)) + eps)
    m[...], v[...] = m64, v64
    grad[...] = 0.0
