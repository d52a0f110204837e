"""Bad input raises a Python exception of the right class, on both back ends, and never crashes.

Every case starts from a valid call and changes one argument, so that the
exception can only come from that change (test_valid_calls_succeed checks
the starting point).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import toolkit.kernels as compiled
import toolkit.numpy_kernels as reference

FUNCTIONS = [
    "embedding_forward",
    "embedding_backward",
    "embedding_backward_sparse",
    "conv1d_forward",
    "conv1d_backward",
    "conv1d_relu_maxpool_forward",
    "conv1d_relu_maxpool_backward",
    "attention_forward",
    "attention_backward",
]

V, D = 10, 4


def valid_kwargs(func: str) -> dict:
    rng = np.random.default_rng(0)

    def randn(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    ids = np.array([[1, 2, 3], [9, 0, 2]], dtype=np.int64)
    x, w, b = randn(2, 6, 3), randn(3, 3, 5), randn(5)  # valid: To = 4
    q, k, v = randn(2, 2, 3, 4), randn(2, 2, 5, 4), randn(2, 2, 5, 6)
    mask = np.array([[False, False, True, False, True], [False] * 5])
    # Saved state as a real forward makes it, so that valid calls agree across back ends.
    pooled, argmax = reference.conv1d_relu_maxpool_forward(x, w, b, "valid")
    out, lse = reference.attention_forward(q, k, v, mask, True)
    return {
        "embedding_forward": dict(table=randn(V, D), ids=ids),
        "embedding_backward": dict(
            grad_out=randn(2, 3, D), ids=ids, vocab_size=V, padding_idx=0, out=np.zeros((V, D), np.float32)
        ),
        "embedding_backward_sparse": dict(grad_out=randn(2, 3, D), ids=ids, vocab_size=V, padding_idx=0),
        "conv1d_forward": dict(x=x, w=w, b=b, padding="valid"),
        "conv1d_backward": dict(dy=randn(2, 4, 5), x=x, w=w, padding="valid"),
        "conv1d_relu_maxpool_forward": dict(x=x, w=w, b=b, padding="valid"),
        "conv1d_relu_maxpool_backward": dict(
            dpooled=randn(2, 5), x=x, w=w, pooled=pooled, argmax=argmax, padding="valid"
        ),
        "attention_forward": dict(q=q, k=k, v=v, key_padding_mask=mask, causal=True),
        "attention_backward": dict(
            dout=randn(2, 2, 3, 6), q=q, k=k, v=v, out=out, lse=lse,
            key_padding_mask=mask, causal=True,
        ),
    }[func]


FLOAT_ARGS = {
    "embedding_forward": ["table"],
    "embedding_backward": ["grad_out", "out"],
    "embedding_backward_sparse": ["grad_out"],
    "conv1d_forward": ["x", "w", "b"],
    "conv1d_backward": ["dy", "x", "w"],
    "conv1d_relu_maxpool_forward": ["x", "w", "b"],
    "conv1d_relu_maxpool_backward": ["dpooled", "x", "w", "pooled"],
    "attention_forward": ["q", "k", "v"],
    "attention_backward": ["dout", "q", "k", "v", "out", "lse"],
}
ID_FUNCTIONS = ["embedding_forward", "embedding_backward", "embedding_backward_sparse"]


def transposed(a):
    """Same shape and values, but a transposed (Fortran-ordered) view."""
    return np.ascontiguousarray(a.T).T if a.ndim > 1 else strided(a)


def strided(a):
    """Same shape and values, but a view with a step of 2 along the last axis."""
    return np.repeat(a, 2, axis=-1)[..., ::2]


def empty(a):
    return np.zeros((0,) + a.shape[1:], a.dtype)


# Mutations applicable to any float32 array argument: (name, change, exception).
FLOAT_MUTATIONS = [
    ("float64", lambda a: a.astype(np.float64), TypeError),
    ("float16", lambda a: a.astype(np.float16), TypeError),
    ("int32", lambda a: a.astype(np.int32), TypeError),
    ("list", lambda a: a.tolist(), TypeError),
    ("scalar", lambda a: 1.0, TypeError),
    ("none", lambda a: None, TypeError),
    ("extra-axis", lambda a: a[None], ValueError),
    ("missing-axis", lambda a: a[0], ValueError),
    ("transposed", transposed, ValueError),
    ("strided", strided, ValueError),
    ("empty", empty, ValueError),
]

SKIP = {
    # Tested on its own: test_empty_table_is_rejected.
    ("embedding_forward", "table", "empty"),
    # None is valid here: no bias, no accumulation buffer.
    ("conv1d_forward", "b", "none"),
    ("conv1d_relu_maxpool_forward", "b", "none"),
    ("embedding_backward", "out", "none"),
    # b[0] is a numpy scalar, not an array: covered by "scalar".
    ("conv1d_forward", "b", "missing-axis"),
    ("conv1d_relu_maxpool_forward", "b", "missing-axis"),
}


def replace(func, arg, value):
    kwargs = valid_kwargs(func)
    kwargs[arg] = value(kwargs.get(arg)) if callable(value) else value
    return kwargs


GENERIC = [
    pytest.param(func, arg, mutate, exc, id=f"{func}-{arg}-{name}")
    for func, args in FLOAT_ARGS.items()
    for arg in args
    for name, mutate, exc in FLOAT_MUTATIONS
    if (func, arg, name) not in SKIP
]


def as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("func", FUNCTIONS)
def test_valid_calls_succeed(func, h):
    got = as_tuple(getattr(compiled, func)(**valid_kwargs(func)))
    want = as_tuple(getattr(reference, func)(**valid_kwargs(func)))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        h.assert_close(g, w, what=func)


@pytest.mark.parametrize("func,arg,mutate,exc", GENERIC)
def test_bad_float_array(backend, func, arg, mutate, exc):
    kwargs = replace(func, arg, mutate)
    # The message names the argument, so the error is known to come from its check.
    with pytest.raises(exc, match=rf"\b{arg}\b"):
        getattr(backend, func)(**kwargs)


# Mutations of the ids argument.
ID_MUTATIONS = [
    pytest.param(lambda a: a.astype(np.float32), TypeError, id="float32"),
    pytest.param(lambda a: a.astype(np.int16), TypeError, id="int16"),
    pytest.param(lambda a: a.astype(np.uint64), TypeError, id="uint64"),
    pytest.param(lambda a: a.astype(bool), TypeError, id="bool"),
    pytest.param(lambda a: a.tolist(), TypeError, id="list"),
    pytest.param(lambda a: 3, TypeError, id="int"),
    pytest.param(transposed, ValueError, id="transposed"),
    pytest.param(strided, ValueError, id="strided"),
]


@pytest.mark.parametrize("func", ID_FUNCTIONS)
@pytest.mark.parametrize("mutate,exc", ID_MUTATIONS)
def test_bad_ids(backend, func, mutate, exc):
    kwargs = replace(func, "ids", mutate)
    with pytest.raises(exc, match=r"\bids\b"):
        getattr(backend, func)(**kwargs)


@pytest.mark.parametrize("func", ID_FUNCTIONS)
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("bad", [-1, -7, V, V + 5, 2**31 - 1])
def test_id_out_of_range_names_id_and_position(backend, func, dtype, bad):
    ids = np.array([[1, 2, 3], [9, 0, 2]], dtype=dtype)
    ids[1, 2] = bad
    ids_later = ids.copy()
    ids_later[1, 1] = V + 100  # only the first bad id in C order is reported
    kwargs = replace(func, "ids", ids)
    if func == "embedding_forward":
        kwargs["table"] = np.zeros((V, D), np.float32)
    with pytest.raises(IndexError) as info:
        getattr(backend, func)(**kwargs)
    message = str(info.value)
    assert re.search(rf"\bid {bad}\b", message), message
    assert "(1, 2)" in message, message
    with pytest.raises(IndexError, match=r"id 110 at position \(1, 1\)"):
        getattr(backend, func)(**replace(func, "ids", ids_later))


def test_id_out_of_range_in_flat_ids(backend):
    ids = np.array([0, 1, 2, 10, 3], dtype=np.int64)
    with pytest.raises(IndexError, match=r"id 10 at position \(3,\)"):
        backend.embedding_forward(np.zeros((V, D), np.float32), ids)


# Mutations of one argument with a fixed bad value: (func, arg, value, exception).
SPECIFIC = [
    # embedding
    ("embedding_backward", "grad_out", np.zeros((2, 4, D), np.float32), ValueError),
    ("embedding_backward", "grad_out", np.zeros((3, 3, D), np.float32), ValueError),
    ("embedding_backward_sparse", "grad_out", np.zeros((2, 4, D), np.float32), ValueError),
    ("embedding_backward", "vocab_size", 0, ValueError),
    ("embedding_backward", "vocab_size", -3, ValueError),
    ("embedding_backward", "vocab_size", 2.5, ValueError),
    ("embedding_backward", "vocab_size", None, ValueError),
    ("embedding_backward", "vocab_size", True, ValueError),
    ("embedding_backward_sparse", "vocab_size", 0, ValueError),
    ("embedding_backward", "padding_idx", -1, ValueError),
    ("embedding_backward", "padding_idx", V, ValueError),
    ("embedding_backward", "padding_idx", 1.0, TypeError),
    ("embedding_backward", "padding_idx", "0", TypeError),
    ("embedding_backward_sparse", "padding_idx", -1, ValueError),
    ("embedding_backward_sparse", "padding_idx", V + 3, ValueError),
    ("embedding_backward_sparse", "padding_idx", 1.5, TypeError),
    ("embedding_backward", "out", np.zeros((V + 1, D), np.float32), ValueError),
    ("embedding_backward", "out", np.zeros((V, D + 1), np.float32), ValueError),
    # conv: channel mismatch, bias length, padding, K > T
    ("conv1d_forward", "w", np.zeros((3, 4, 5), np.float32), ValueError),
    ("conv1d_forward", "b", np.zeros(4, np.float32), ValueError),
    ("conv1d_forward", "padding", "full", ValueError),
    ("conv1d_forward", "padding", "VALID", ValueError),
    ("conv1d_forward", "padding", None, ValueError),
    ("conv1d_forward", "padding", 0, ValueError),
    ("conv1d_forward", "w", np.zeros((7, 3, 5), np.float32), ValueError),
    ("conv1d_backward", "w", np.zeros((3, 4, 5), np.float32), ValueError),
    ("conv1d_backward", "dy", np.zeros((2, 5, 5), np.float32), ValueError),
    ("conv1d_backward", "dy", np.zeros((2, 4, 4), np.float32), ValueError),
    ("conv1d_backward", "dy", np.zeros((1, 4, 5), np.float32), ValueError),
    ("conv1d_backward", "padding", "causal", ValueError),
    ("conv1d_backward", "w", np.zeros((7, 3, 5), np.float32), ValueError),
    ("conv1d_relu_maxpool_forward", "w", np.zeros((3, 2, 5), np.float32), ValueError),
    ("conv1d_relu_maxpool_forward", "b", np.zeros(6, np.float32), ValueError),
    ("conv1d_relu_maxpool_forward", "padding", "same ", ValueError),
    ("conv1d_relu_maxpool_forward", "w", np.zeros((7, 3, 5), np.float32), ValueError),
    ("conv1d_relu_maxpool_backward", "dpooled", np.zeros((2, 4), np.float32), ValueError),
    ("conv1d_relu_maxpool_backward", "pooled", np.zeros((3, 5), np.float32), ValueError),
    ("conv1d_relu_maxpool_backward", "w", np.zeros((3, 4, 5), np.float32), ValueError),
    ("conv1d_relu_maxpool_backward", "padding", "", ValueError),
    # fused backward: the saved argmax
    ("conv1d_relu_maxpool_backward", "argmax", np.zeros((2, 5), np.int64), TypeError),
    ("conv1d_relu_maxpool_backward", "argmax", np.zeros((2, 5), np.float32), TypeError),
    ("conv1d_relu_maxpool_backward", "argmax", [[0] * 5] * 2, TypeError),
    ("conv1d_relu_maxpool_backward", "argmax", np.zeros((2, 4), np.int32), ValueError),
    ("conv1d_relu_maxpool_backward", "argmax", np.zeros((5, 2), np.int32).T, ValueError),
    ("conv1d_relu_maxpool_backward", "argmax", np.array([[0, 1, 2, 3, 0], [3, 3, 4, 0, 2]], np.int32), IndexError),
    ("conv1d_relu_maxpool_backward", "argmax", np.array([[0, 1, 2, 3, 0], [3, 3, 1, -1, 2]], np.int32), IndexError),
    ("conv1d_relu_maxpool_backward", "argmax", np.full((2, 5), 2**31 - 1, np.int32), IndexError),
    # attention: q/k/v shapes, mask, scale
    ("attention_forward", "k", np.zeros((2, 2, 5, 3), np.float32), ValueError),
    ("attention_forward", "k", np.zeros((1, 2, 5, 4), np.float32), ValueError),
    ("attention_forward", "k", np.zeros((2, 3, 5, 4), np.float32), ValueError),
    ("attention_forward", "v", np.zeros((2, 2, 4, 6), np.float32), ValueError),
    ("attention_forward", "v", np.zeros((2, 1, 5, 6), np.float32), ValueError),
    ("attention_forward", "key_padding_mask", np.zeros((2, 4), bool), ValueError),
    ("attention_forward", "key_padding_mask", np.zeros((1, 5), bool), ValueError),
    ("attention_forward", "key_padding_mask", np.zeros((2, 2, 5), bool), ValueError),
    ("attention_forward", "key_padding_mask", np.zeros((2, 5), np.float32), TypeError),
    ("attention_forward", "key_padding_mask", [[False] * 5] * 2, TypeError),
    ("attention_forward", "scale", float("nan"), ValueError),
    ("attention_forward", "scale", float("inf"), ValueError),
    ("attention_forward", "scale", "0.5", ValueError),
    ("attention_backward", "k", np.zeros((2, 2, 5, 3), np.float32), ValueError),
    ("attention_backward", "v", np.zeros((2, 2, 4, 6), np.float32), ValueError),
    ("attention_backward", "dout", np.zeros((2, 2, 3, 5), np.float32), ValueError),
    ("attention_backward", "dout", np.zeros((2, 2, 4, 6), np.float32), ValueError),
    ("attention_backward", "out", np.zeros((2, 2, 3, 5), np.float32), ValueError),
    ("attention_backward", "lse", np.zeros((2, 2, 4), np.float32), ValueError),
    ("attention_backward", "lse", np.zeros((2, 1, 3), np.float32), ValueError),
    ("attention_backward", "key_padding_mask", np.zeros((2, 6), bool), ValueError),
    ("attention_backward", "key_padding_mask", np.zeros((2, 5), np.float64), TypeError),
    ("attention_backward", "scale", float("-inf"), ValueError),
]


@pytest.mark.parametrize(
    "func,arg,value,exc",
    [pytest.param(*case, id=f"{case[0]}-{case[1]}-{i}") for i, case in enumerate(SPECIFIC)],
)
def test_bad_argument(backend, func, arg, value, exc):
    kwargs = replace(func, arg, lambda _: value)
    with pytest.raises(exc):
        getattr(backend, func)(**kwargs)


def test_read_only_out_is_rejected(backend):
    # out= is written into; a read-only buffer must be refused before any write.
    kwargs = valid_kwargs("embedding_backward")
    kwargs["out"].flags.writeable = False
    with pytest.raises(ValueError, match=r"\bout\b"):
        backend.embedding_backward(**kwargs)
    assert not kwargs["out"].any()


def test_argmax_error_names_step_and_position(backend):
    kwargs = valid_kwargs("conv1d_relu_maxpool_backward")
    kwargs["argmax"][1, 3] = 4  # To = 4: valid steps are 0..3
    with pytest.raises(IndexError, match=r"step 4 at position \(1, 3\)"):
        backend.conv1d_relu_maxpool_backward(**kwargs)


@pytest.mark.parametrize("func", ["conv1d_forward", "conv1d_relu_maxpool_forward"])
def test_kernel_longer_than_sequence_needs_same_padding(backend, func):
    x = np.zeros((1, 2, 3), np.float32)
    w = np.zeros((5, 3, 4), np.float32)
    with pytest.raises(ValueError, match="padding"):
        getattr(backend, func)(x, w, None, "valid")
    # The same pair is fine with 'same'.
    getattr(backend, func)(x, w, None, "same")


@pytest.mark.parametrize(
    "table",
    [np.zeros((0, D), np.float32), np.zeros((V, 0), np.float32)],
    ids=["no-rows", "no-columns"],
)
def test_empty_table_is_rejected(backend, table):
    """An empty table is no model: ValueError, as for every other empty array.

    Empty ids are a valid (empty) batch; an empty table is not.
    """
    ids = np.zeros((0,), np.int64) if table.shape[0] == 0 else np.array([1, 2])
    with pytest.raises(ValueError, match="table"):
        backend.embedding_forward(table, ids)


def test_empty_gradient_rows_are_rejected(backend):
    with pytest.raises(ValueError, match="grad_out"):
        backend.embedding_backward(np.zeros((2, 0), np.float32), np.array([1, 2]), V)


@pytest.mark.parametrize("func", FUNCTIONS)
def test_read_only_inputs_are_accepted(backend, func):
    """Weights loaded read-only (np.load(mmap_mode='r'), frozen arrays) are valid input."""
    writable = getattr(backend, func)(**valid_kwargs(func))
    kwargs = valid_kwargs(func)
    for name, value in kwargs.items():
        # out= of embedding_backward is written to, so it has to stay writable.
        if isinstance(value, np.ndarray) and not (func == "embedding_backward" and name == "out"):
            value.flags.writeable = False
    frozen = getattr(backend, func)(**kwargs)
    for a, b in zip(as_tuple(writable), as_tuple(frozen)):
        assert np.array_equal(a, b)
