"""Argument checks shared by the compiled kernels and their numpy reference.

The bindings run these before any pointer reaches C, so that bad input from a
user, a file or a model raises a Python exception instead of crashing. The
reference runs the same checks, so both back ends reject the same input the
same way.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

ID_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
PADDINGS = ("valid", "same")
# The C kernels index with int; stay well inside it.
MAX_DIM = 2**31 - 1
FLT_MAX = float(np.finfo(np.float32).max)


def _float32_of_rank(x: object, name: str, ndim: int) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if x.dtype != np.float32:
        raise TypeError(f"{name} must have dtype float32, got {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {x.shape}")
    if any(d > MAX_DIM for d in x.shape) or x.size > 2**62:
        raise ValueError(f"{name} is too large: shape {x.shape}")
    return x


def float_array(x: object, name: str, ndim: int) -> np.ndarray:
    """Return ``x`` if it is a C-contiguous float32 array of rank ``ndim``, else raise."""
    x = _float32_of_rank(x, name, ndim)
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous; pass np.ascontiguousarray({name})")
    return x


def writable(x: np.ndarray, name: str) -> np.ndarray:
    if not x.flags.writeable:
        raise ValueError(f"{name} is read-only; the result is written into it")
    return x


def table_array(table: object) -> np.ndarray:
    """An embedding table: float32 (V, D) with V, D >= 1."""
    table = float_array(table, "table", 2)
    nonempty(table, "table")
    return table


def grad_rows(grad_out: object, ids: np.ndarray) -> np.ndarray:
    """Check an embedding output gradient: ids.shape + (D,) with D >= 1."""
    grad_out = float_array(grad_out, "grad_out", ids.ndim + 1)
    same_shape("grad_out without its last axis", grad_out.shape[:-1], "ids", ids.shape)
    if grad_out.shape[-1] == 0:
        raise ValueError(f"grad_out must have rows of at least one value, got shape {grad_out.shape}")
    return grad_out


def nonempty(x: np.ndarray, name: str) -> None:
    if x.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {x.shape}")


def same_shape(name_a: str, shape_a: tuple, name_b: str, shape_b: tuple) -> None:
    if tuple(shape_a) != tuple(shape_b):
        raise ValueError(f"{name_a} has shape {tuple(shape_a)} but {name_b} has shape {tuple(shape_b)}")


def ids_array(ids: object, name: str, vocab_size: int) -> np.ndarray:
    """Return ``ids`` as C-contiguous int64, checking dtype and that every id is in range.

    An id below zero or at least ``vocab_size`` raises IndexError naming the id
    and its position, the first such one in C order.
    """
    if not isinstance(ids, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(ids).__name__}")
    if ids.dtype not in ID_DTYPES:
        raise TypeError(f"{name} must have dtype int32 or int64, got {ids.dtype}")
    if not ids.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous; pass np.ascontiguousarray({name})")
    if ids.size:
        bad = (ids < 0) | (ids >= vocab_size)
        if bad.any():
            flat = int(np.argmax(bad.reshape(-1)))
            position = tuple(int(i) for i in np.unravel_index(flat, ids.shape))
            raise IndexError(
                f"{name}: id {int(ids.reshape(-1)[flat])} at position {position} is out of "
                f"range for a vocabulary of {vocab_size} (valid ids: 0..{vocab_size - 1})"
            )
    # asarray, not ascontiguousarray: the latter turns a 0-d id into shape (1,).
    return np.asarray(ids, dtype=np.int64, order="C")


def padding_id(padding_idx: int | None, vocab_size: int) -> int:
    """The padding id as an int, or -1 for none."""
    if padding_idx is None:
        return -1
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
        raise TypeError(f"padding_idx must be an int or None, got {type(padding_idx).__name__}")
    if not 0 <= padding_idx < vocab_size:
        raise ValueError(f"padding_idx {padding_idx} is outside the vocabulary of {vocab_size}")
    return int(padding_idx)


def vocab_size(value: object) -> int:
    # The C side holds a vocabulary size as a row count of an int-indexed world: 2**40 was accepted (and then
    # tried to allocate) before this bound.
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"vocab_size must be a positive int, got {value!r}")
    if value > MAX_DIM:
        raise ValueError(f"vocab_size must be at most 2**31 - 1, got {value}")
    return int(value)


def conv_geometry(x: np.ndarray, w: np.ndarray, padding: str) -> tuple[int, int]:
    """Check a conv1d input/weight pair and return (pad_left, output length)."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    nonempty(x, "x")
    nonempty(w, "w")
    _, T, C = x.shape
    K, Cw, _ = w.shape
    if Cw != C:
        raise ValueError(f"w has {Cw} input channels (shape {w.shape}) but x has {C} (shape {x.shape})")
    if padding == "same":
        return (K - 1) // 2, T
    if K > T:
        raise ValueError(
            f"kernel width {K} is longer than the sequence length {T} with padding='valid'; "
            "use padding='same' or longer inputs"
        )
    return 0, T - K + 1


def bias_vector(b: object, F: int) -> np.ndarray | None:
    if b is None:
        return None
    b = float_array(b, "b", 1)
    if b.shape[0] != F:
        raise ValueError(f"b has {b.shape[0]} entries but w has {F} filters")
    return b


def rows_array(x: object, name: str, ndim: int) -> np.ndarray:
    """Return ``x`` if it is a float32 array of rank ``ndim`` whose last axis is contiguous, else raise.

    The other axes may have any non-negative strides: attention reads the
    heads of a (B, T, H, D) array, a view of a fused projection, say, in
    place.
    """
    x = _float32_of_rank(x, name, ndim)
    if x.strides[-1] != x.itemsize or any(s < 0 or s % x.itemsize for s in x.strides):
        raise ValueError(f"{name} must have a contiguous last axis and non-negative strides, got strides"
                         f" {x.strides}; pass np.ascontiguousarray({name})")
    # Rows (the next-to-last axis) go to BLAS with their stride as the leading dimension, which must hold a
    # whole row and fit an int: rows that overlap (a zero stride, say) are refused, not read wrongly.
    row = x.strides[-2] // x.itemsize
    if x.shape[-2] > 1 and not x.shape[-1] <= row <= MAX_DIM:
        raise ValueError(f"{name}'s rows must not overlap and be at most {MAX_DIM} floats apart, got strides"
                         f" {x.strides}; pass np.ascontiguousarray({name})")
    return x


ATTENTION_LAYOUTS = ("bhtd", "bthd")


def attention_layout(layout: object) -> str:
    if not isinstance(layout, str) or layout not in ATTENTION_LAYOUTS:
        raise ValueError(f"layout must be one of {ATTENTION_LAYOUTS}, got {layout!r:.40}")
    return layout


def attention_result(shape: tuple[int, int, int, int], layout: str) -> np.ndarray:
    """A new (B, H, T, D) float32 array; with layout "bthd", a view of a C-contiguous (B, T, H, D) one."""
    B, H, T, D = shape
    if layout == "bthd":
        return np.empty((B, T, H, D), dtype=np.float32).transpose(0, 2, 1, 3)
    return np.empty(shape, dtype=np.float32)


def attention_inputs(
    q: object, k: object, v: object, key_padding_mask: object, scale: float | None
) -> tuple[np.ndarray | None, float]:
    """Check q, k, v of an attention call; return the keep-mask (uint8) and the scale."""
    q = rows_array(q, "q", 4)
    k = rows_array(k, "k", 4)
    v = rows_array(v, "v", 4)
    for name, x in (("q", q), ("k", k), ("v", v)):
        nonempty(x, name)
    B, H, _, D = q.shape
    if k.shape[:2] != (B, H) or k.shape[3] != D:
        raise ValueError(f"k must have shape ({B}, {H}, Tk, {D}) to match q {q.shape}, got {k.shape}")
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(f"v must have shape {k.shape[:3]} + (Dv,) to match k {k.shape}, got {v.shape}")
    if scale is None:
        scale = 1.0 / math.sqrt(D)
    elif isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise ValueError(f"scale must be a finite number, got {scale!r}")
    else:
        try:
            value = float(scale)
        except OverflowError:  # a Python int beyond any double
            value = math.inf
        # The kernels take the scale as a C float: 1e39 became inf there and turned every row into NaN.
        if not abs(value) <= FLT_MAX:
            raise ValueError(f"scale must be a finite float32 number (|scale| <= {FLT_MAX:.7g}), got {scale!r:.40}")
    keep = None
    if key_padding_mask is not None:
        if not isinstance(key_padding_mask, np.ndarray):
            raise TypeError(f"key_padding_mask must be a numpy array, got {type(key_padding_mask).__name__}")
        if key_padding_mask.dtype != np.bool_ and not np.issubdtype(key_padding_mask.dtype, np.integer):
            raise TypeError(f"key_padding_mask must be bool (True = padding), got {key_padding_mask.dtype}")
        if key_padding_mask.shape != (B, k.shape[2]):
            raise ValueError(
                f"key_padding_mask must have shape (B, Tk) = {(B, k.shape[2])}, got {key_padding_mask.shape}"
            )
        keep = np.ascontiguousarray(key_padding_mask == 0, dtype=np.uint8)
    return keep, float(scale)


def attention_backward_inputs(dout: object, out: object, lse: object, q: np.ndarray, v: np.ndarray) -> None:
    """Check the backward's dout and out (B, H, Tq, Dv), any layout as the inputs, and lse (B, H, Tq)."""
    B, H, Tq, _ = q.shape
    expected = (B, H, Tq, v.shape[3])
    for name, x in (("dout", dout), ("out", out)):
        same_shape(name, rows_array(x, name, 4).shape, "the attention output", expected)
    same_shape("lse", float_array(lse, "lse", 3).shape, "(B, H, Tq)", expected[:3])


def argmax_array(argmax: object, shape: tuple, length: int) -> np.ndarray:
    """Check the argmax saved by the fused forward: int32, ``shape``, every entry in [0, length)."""
    if not isinstance(argmax, np.ndarray):
        raise TypeError(f"argmax must be a numpy array, got {type(argmax).__name__}")
    if argmax.dtype != np.int32:
        raise TypeError(f"argmax must have dtype int32 (as returned by the forward), got {argmax.dtype}")
    same_shape("argmax", argmax.shape, "(B, F)", shape)
    if not argmax.flags.c_contiguous:
        raise ValueError("argmax must be C-contiguous; pass np.ascontiguousarray(argmax)")
    if argmax.size:
        bad = (argmax < 0) | (argmax >= length)
        if bad.any():
            position = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), shape))
            raise IndexError(
                f"argmax: step {int(argmax[position])} at position {position} is outside "
                f"the {length} output steps"
            )
    return argmax


# ---- decode, cache write, layer norm and GELU ----------------------------------------


def _int_vector(a: object, name: str, B: int) -> np.ndarray:
    """A (B,) int32/int64 array as C-contiguous int64."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of int32/int64, got {type(a).__name__}")
    if a.dtype not in ID_DTYPES:
        raise TypeError(f"{name} must have dtype int32 or int64, got {a.dtype}")
    if a.shape != (B,):
        raise ValueError(f"{name} must have shape (B,) = ({B},), got {a.shape}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _first_bad(name: str, values: np.ndarray, bad: np.ndarray, rule: str) -> None:
    if bad.any():
        b = int(np.argmax(bad))
        raise ValueError(f"{name}[{b}] = {int(values[b])} is out of range: {rule}")


def decode_inputs(
    q: object, k_cache: object, v_cache: object, lengths: object, starts: object, scale: float | None
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Check an attention_decode call; return lengths and starts as int64 (starts None for none), and the scale."""
    float_array(q, "q", 4)
    float_array(k_cache, "k_cache", 4)
    float_array(v_cache, "v_cache", 4)
    if q.shape[2] != 1:
        raise ValueError(f"q must have shape (B, H, 1, D): one query per sequence, got {q.shape}")
    _, scale = attention_inputs(q, k_cache, v_cache, None, scale)
    B, L = q.shape[0], k_cache.shape[2]
    lengths = _int_vector(lengths, "lengths", B)
    _first_bad("lengths", lengths, (lengths < 1) | (lengths > L), f"each length must be in [1, {L}] (the cache size)")
    if starts is not None:
        starts = _int_vector(starts, "starts", B)
        _first_bad("starts", starts, (starts < 0) | (starts >= lengths), "need 0 <= starts[b] < lengths[b]")
    return lengths, starts, scale


def top_k_inputs(logits: object, k: object, banned: object) -> np.ndarray:
    """Check a top_k_log_softmax call; return the banned ids as (n,) int64 (empty for none)."""
    float_array(logits, "logits", 2)
    V = logits.shape[1]
    if banned is None:
        banned = np.empty(0, dtype=np.int64)
    else:
        if not isinstance(banned, np.ndarray) or banned.dtype not in ID_DTYPES or banned.ndim != 1:
            raise TypeError("banned must be a 1-D numpy array of int32/int64 token ids")
        banned = np.unique(banned).astype(np.int64)
        if banned.size and (banned[0] < 0 or banned[-1] >= V):
            raise ValueError(f"banned ids must be in [0, {V}) (the vocabulary), got {banned.tolist()}")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if not 1 <= k <= V - banned.size:
        raise ValueError(f"k must be in [1, {V - banned.size}] (the vocabulary less the banned ids), got {k}")
    return banned


def cache_write_inputs(cache: object, new: object, positions: object) -> np.ndarray:
    """Check a cache_write call; return the positions as (B,) int64."""
    writable(float_array(cache, "cache", 4), "cache")
    nonempty(cache, "cache")
    float_array(new, "new", 4)
    B, H, L, D = cache.shape
    if new.shape[:2] != (B, H) or new.shape[3] != D:
        raise ValueError(f"new must have shape ({B}, {H}, T, {D}) to match cache {cache.shape}, got {new.shape}")
    T = new.shape[2]
    rule = f"need 0 <= position and position + {T} new steps <= {L} (the cache size)"
    if isinstance(positions, (int, np.integer)) and not isinstance(positions, bool):
        if not 0 <= positions <= L - T:
            raise ValueError(f"position {positions} is out of range: {rule}")
        positions = np.full(B, positions, dtype=np.int64)
    positions = _int_vector(positions, "positions", B)
    _first_bad("positions", positions, (positions < 0) | (positions > L - T), rule)
    return positions


def _rank_at_least(x: object, name: str, ndim: int) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    return float_array(x, name, max(x.ndim, ndim))


def layer_norm_inputs(x: object, residual: object, gamma: object, beta: object, eps: object, fused: bool) -> float:
    """Check a layer norm forward (with its residual when fused); return eps as a float."""
    x = _rank_at_least(x, "x", 1)
    nonempty(x, "x")
    if fused:
        same_shape("residual", _rank_at_least(residual, "residual", 1).shape, "x", x.shape)
    for name, p in (("gamma", gamma), ("beta", beta)):
        same_shape(name, float_array(p, name, 1).shape, "(D,) of x", x.shape[-1:])
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)) or \
            not 0 <= float(eps) <= FLT_MAX:
        raise ValueError(f"eps must be a finite float32 number >= 0, got {eps!r:.40}")
    return float(eps)


def layer_norm_backward_inputs(dy: object, x: object, gamma: object, mean: object, rstd: object, ds: object) -> None:
    """Check a layer norm backward against its x (what was normalised)."""
    x = _rank_at_least(x, "x", 1)
    nonempty(x, "x")
    same_shape("dy", _rank_at_least(dy, "dy", 1).shape, "x", x.shape)
    if ds is not None:
        same_shape("ds", _rank_at_least(ds, "ds", 1).shape, "x", x.shape)
    same_shape("gamma", float_array(gamma, "gamma", 1).shape, "(D,) of x", x.shape[-1:])
    for name, a in (("mean", mean), ("rstd", rstd)):
        same_shape(name, float_array(a, name, x.ndim - 1).shape, "x without its last axis", x.shape[:-1])


GELU_APPROXIMATIONS = ("none", "tanh")


def gelu_inputs(x: object, approximate: object, dy: object = None) -> None:
    """Check a GELU forward (or backward, with dy)."""
    if not isinstance(approximate, str) or approximate not in GELU_APPROXIMATIONS:
        raise ValueError(f"approximate must be one of {GELU_APPROXIMATIONS}, got {approximate!r:.40}")
    x = _rank_at_least(x, "x", 0)
    if dy is not None:
        same_shape("dy", _rank_at_least(dy, "dy", 0).shape, "x", x.shape)


# ---- cross-entropy fused with the output projection ------------------------------------

DEFAULT_IGNORE_INDEX = -100  # torch.nn.functional.cross_entropy's


def _int_option(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r:.40}")
    return int(value)


def linear_cross_entropy_inputs(
    h: object, w: object, targets: object, bias: object, ignore_index: object, block: object
) -> tuple[np.ndarray, int, int]:
    """Check a linear_cross_entropy call (forward or backward).

    Returns the targets as (N,) int64 with -1 in the ignored rows (what the C
    kernel takes), the number of counted rows, and the vocabulary block size.
    """
    h = float_array(h, "h", 2)
    w = float_array(w, "w", 2)
    nonempty(h, "h")
    nonempty(w, "w")
    N, D = h.shape
    if w.shape[1] != D:
        raise ValueError(f"w must have shape (V, {D}) to match h {h.shape}, got {w.shape}")
    V = w.shape[0]
    if bias is not None:
        same_shape("bias", float_array(bias, "bias", 1).shape, "(V,) of w", (V,))
    ignore_index = _int_option(ignore_index, "ignore_index", -(2**63), 2**63 - 1)
    block = _int_option(block, "block", 1, MAX_DIM)
    if not isinstance(targets, np.ndarray):
        raise TypeError(f"targets must be a numpy array, got {type(targets).__name__}")
    if targets.dtype not in ID_DTYPES:
        raise TypeError(f"targets must have dtype int32 or int64, got {targets.dtype}")
    same_shape("targets", targets.shape, "(N,) of h", (N,))
    t = targets.astype(np.int64)
    ignored = t == ignore_index
    bad = ((t < 0) | (t >= V)) & ~ignored
    if bad.any():
        i = int(np.argmax(bad))
        raise IndexError(
            f"targets: class {int(t[i])} at position {i} is out of range for a vocabulary of {V} "
            f"(valid: 0..{V - 1}, or ignore_index={ignore_index})"
        )
    t[ignored] = -1
    return t, int(N - ignored.sum()), block


def loss_gradient(dloss: object) -> float:
    """The gradient reaching the mean loss: a finite float32 number."""
    if isinstance(dloss, bool) or not isinstance(dloss, (int, float, np.integer, np.floating)):
        raise ValueError(f"dloss must be a finite number, got {dloss!r:.40}")
    try:
        value = float(dloss)
    except OverflowError:
        value = math.inf
    if not abs(value) <= FLT_MAX:
        raise ValueError(f"dloss must be a finite float32 number, got {dloss!r:.40}")
    return value


def linear_cross_entropy_backward_inputs(h: np.ndarray, w: np.ndarray, bias: object, lse: object,
                                         dw_out: object, one_call: bool = False) -> None:
    """Check the backward's lse (N,) (not for the one-call form, which makes it) and, when given, dw_out:
    writable (V, D), sharing no memory with the inputs."""
    if not one_call:
        same_shape("lse", float_array(lse, "lse", 1).shape, "(N,) of h", h.shape[:1])
    if dw_out is None:
        return
    writable(float_array(dw_out, "dw_out", 2), "dw_out")
    same_shape("dw_out", dw_out.shape, "w", w.shape)
    for name, a in (("h", h), ("w", w), ("bias", bias), ("lse", lse)):
        if a is not None and np.may_share_memory(dw_out, a):
            raise ValueError(f"dw_out shares memory with {name}; the gradient would overwrite what it reads")


# ---- Adam ----------------------------------------------------------------------------------


def _real(value: object, name: str, rule: str, ok: Callable[[float], bool]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or \
            not (math.isfinite(float(value)) and ok(float(value))):
        raise ValueError(f"{name} must be a finite number {rule}, got {value!r:.40}")
    return float(value)


def adam_inputs(param: object, grad: object, m: object, v: object, lr: object, beta1: object, beta2: object,
                eps: object, t: object, weight_decay: object) -> tuple[float, ...]:
    """Check one Adam step; return (lr, beta1, beta2, eps, t, weight_decay) as Python numbers."""
    arrays = {"param": param, "grad": grad, "m": m, "v": v}
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
        writable(float_array(a, name, a.ndim), name)
        same_shape(name, a.shape, "param", param.shape)
    names = list(arrays)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if np.may_share_memory(arrays[a], arrays[b]):
                raise ValueError(f"{a} and {b} must not share memory: each is written in place")
    return (_real(lr, "lr", ">= 0", lambda x: x >= 0), _real(beta1, "beta1", "in [0, 1)", lambda x: 0 <= x < 1),
            _real(beta2, "beta2", "in [0, 1)", lambda x: 0 <= x < 1), _real(eps, "eps", "> 0", lambda x: x > 0),
            _int_option(t, "t", 1, 2**62), _real(weight_decay, "weight_decay", ">= 0", lambda x: x >= 0))
