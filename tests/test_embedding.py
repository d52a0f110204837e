"""Embedding lookup and its dense and row-sparse gradients."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import toolkit.kernels as K
import toolkit.numpy_kernels as N

# (V, D, ids shape): vocabulary of 1, widths off the 8/16 grid, ids of rank 1-3.
SHAPES = [
    (1, 1, (5,)),
    (1, 17, (2, 3)),
    (2, 3, (7,)),
    (7, 13, (3, 4)),
    (50, 7, (2, 3, 4)),
    (300, 16, (9, 31)),
    (1000, 33, (4, 700)),  # above the size where the kernels go parallel
]


def make_ids(rng, V, shape, dtype):
    ids = rng.integers(0, V, size=shape).astype(dtype)
    # Repeated ids are what makes the backward a scatter-add rather than a copy.
    ids.reshape(-1)[: min(3, ids.size)] = ids.reshape(-1)[0]
    return ids


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("V,D,shape", SHAPES)
def test_forward_matches_reference(V, D, shape, dtype, rng, h):
    table = h.randn(rng, V, D)
    ids = make_ids(rng, V, shape, dtype)
    out = K.embedding_forward(table, ids)
    assert out.shape == shape + (D,) and out.dtype == np.float32
    # A gather copies floats: exact, not approximately equal.
    assert np.array_equal(out, table[ids])
    assert np.array_equal(out, N.embedding_forward(table, ids))


@pytest.mark.parametrize("padding_idx", [None, 0, "last"])
@pytest.mark.parametrize("V,D,shape", SHAPES)
def test_backward_matches_reference(V, D, shape, padding_idx, rng, h):
    pad = V - 1 if padding_idx == "last" else padding_idx
    ids = make_ids(rng, V, shape, np.int64)
    if pad is not None:
        ids.reshape(-1)[-1] = pad
    grad_out = h.randn(rng, *shape, D)

    dense = K.embedding_backward(grad_out, ids, V, pad)
    assert dense.shape == (V, D) and dense.dtype == np.float32
    h.assert_close(dense, N.embedding_backward(grad_out, ids, V, pad), what="dense grad")
    if pad is not None:
        assert not dense[pad].any(), "the padding row must get no gradient"

    unique, rows = K.embedding_backward_sparse(grad_out, ids, V, pad)
    want_unique, want_rows = N.embedding_backward_sparse(grad_out, ids, V, pad)
    assert unique.dtype == np.int64 and rows.dtype == np.float32
    expected_ids = np.setdiff1d(np.unique(ids), [] if pad is None else [pad])
    assert np.array_equal(unique, expected_ids)
    assert np.array_equal(want_unique, expected_ids)
    assert rows.shape == (unique.size, D)
    h.assert_close(rows, want_rows, what="sparse rows")
    # The sparse form is the dense gradient restricted to the rows seen.
    h.assert_close(rows, dense[unique], what="sparse vs dense")


@pytest.mark.parametrize("padding_idx", [None, 2])
def test_backward_accumulates_into_out(backend, padding_idx, rng, h):
    V, D = 6, 5
    ids = np.array([[0, 2, 5], [2, 2, 1]], dtype=np.int32)
    grad_out = h.randn(rng, 2, 3, D)
    start = h.randn(rng, V, D)
    out = start.copy()
    returned = backend.embedding_backward(grad_out, ids, V, padding_idx, out=out)
    assert returned is out, "with out= the gradient must be added in place and out returned"
    fresh = backend.embedding_backward(grad_out, ids, V, padding_idx)
    h.assert_close(out, start + fresh, what="accumulated grad")
    if padding_idx is not None:
        # "Gets nothing" means left as it was, not zeroed.
        assert np.array_equal(out[padding_idx], start[padding_idx])
    untouched = np.setdiff1d(np.arange(V), ids)
    assert np.array_equal(out[untouched], start[untouched])


def test_padding_only_batch_has_empty_sparse_gradient(backend, h, rng):
    ids = np.full((3, 4), 1, dtype=np.int64)
    unique, rows = backend.embedding_backward_sparse(h.randn(rng, 3, 4, 2), ids, 5, padding_idx=1)
    assert unique.shape == (0,) and unique.dtype == np.int64
    assert rows.shape == (0, 2)


def test_empty_ids_give_empty_results(backend, rng, h):
    # An empty batch is a valid batch: empty lookups, zero gradient.
    table = h.randn(rng, 4, 3)
    ids = np.zeros((2, 0), dtype=np.int64)
    assert backend.embedding_forward(table, ids).shape == (2, 0, 3)
    grad = backend.embedding_backward(np.zeros((2, 0, 3), np.float32), ids, 4)
    assert grad.shape == (4, 3) and not grad.any()


def test_scalar_id_returns_one_row(backend, rng, h):
    """ids of shape () must give shape (D,), as ids.shape + (D,) says."""
    table = h.randn(rng, 5, 3)
    ids = np.array(3, dtype=np.int64)
    out = backend.embedding_forward(table, ids)
    assert out.shape == (3,)
    assert np.array_equal(out, table[3])
    # The backward takes grad_out of the forward's output shape.
    grad = backend.embedding_backward(np.ones(3, np.float32), ids, 5)
    assert np.array_equal(grad[3], np.ones(3)) and not np.delete(grad, 3, axis=0).any()


@given(
    seed=st.integers(0, 2**32 - 1),
    V=st.integers(1, 40),
    D=st.integers(1, 20),
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple),
    int32=st.booleans(),
    use_pad=st.booleans(),
)
def test_property_matches_reference(seed, V, D, shape, int32, use_pad, h):
    rng = np.random.default_rng(seed)
    table = h.randn(rng, V, D)
    ids = rng.integers(0, V, size=shape).astype(np.int32 if int32 else np.int64)
    pad = int(rng.integers(0, V)) if use_pad else None
    grad_out = h.randn(rng, *shape, D)
    assert np.array_equal(K.embedding_forward(table, ids), N.embedding_forward(table, ids))
    h.assert_close(K.embedding_backward(grad_out, ids, V, pad), N.embedding_backward(grad_out, ids, V, pad))
    (u, r), (u_ref, r_ref) = (
        K.embedding_backward_sparse(grad_out, ids, V, pad),
        N.embedding_backward_sparse(grad_out, ids, V, pad),
    )
    assert np.array_equal(u, u_ref)
    h.assert_close(r, r_ref)


def test_nan_and_inf_rows_are_copied_verbatim(backend, rng, h):
    table = h.randn(rng, 4, 3)
    table[1, 0] = np.nan
    table[2, 2] = -np.inf
    ids = np.array([1, 2, 0, 1])
    out = backend.embedding_forward(table, ids)
    assert np.array_equal(out, table[ids], equal_nan=True)
    grad_out = np.ones((4, 3), np.float32)
    grad_out[2, 1] = np.nan
    grad = backend.embedding_backward(grad_out, ids, 4)
    assert np.isnan(grad[0, 1]) and np.isfinite(np.delete(grad, 0, axis=0)).all()


# ---- finite-difference gradient checks ----------------------------------


@pytest.mark.parametrize("padding_idx", [None, "last"])
@pytest.mark.parametrize("V,D,shape", [(1, 3, (4,)), (9, 5, (3, 4)), (30, 7, (2, 3, 5))])
def test_dense_gradient_finite_differences(backend, V, D, shape, padding_idx, rng, h):
    pad = None if padding_idx is None else V - 1
    table = h.randn(rng, V, D)
    ids = make_ids(rng, V, shape, np.int64)
    if pad is not None:
        ids.reshape(-1)[-2:] = pad
    R = h.randn(rng, *shape, D)
    frozen = None if pad is None else table[pad].copy()

    def loss(table):
        # The padding row is frozen: its true gradient is zero, which is what
        # the backward must report.
        if pad is not None:
            table = table.copy()
            table[pad] = frozen
        return h.weighted_sum(backend.embedding_forward(table, ids), R)

    grad = backend.embedding_backward(R, ids, V, pad)
    h.check_grads(loss, {"table": table}, {"table": grad}, rng, eps=1e-2)


@pytest.mark.parametrize("padding_idx", [None, 0])
def test_sparse_gradient_finite_differences(backend, padding_idx, rng, h):
    V, D, shape = 12, 6, (3, 5)
    table = h.randn(rng, V, D)
    ids = make_ids(rng, V, shape, np.int32)
    if padding_idx is not None:
        ids[0, :2] = padding_idx
    R = h.randn(rng, *shape, D)
    frozen = None if padding_idx is None else table[padding_idx].copy()

    def loss(table):
        if padding_idx is not None:
            table = table.copy()
            table[padding_idx] = frozen
        return h.weighted_sum(backend.embedding_forward(table, ids), R)

    unique, rows = backend.embedding_backward_sparse(R, ids, V, padding_idx)
    dense = np.zeros((V, D), np.float32)
    dense[unique] += rows
    h.check_grads(loss, {"table": table}, {"table": dense}, rng, eps=1e-2)


# ---- reference shape ------------------------------------------------------


def test_reference_shape_smoke(rng, h):
    V, D = 20000, 128
    table = h.randn(rng, V, D)
    ids = rng.integers(0, V, size=(64, 400)).astype(np.int64)
    out = K.embedding_forward(table, ids)
    assert np.array_equal(out, table[ids])
    grad_out = h.randn(rng, 64, 400, D)
    h.assert_close(K.embedding_backward(grad_out, ids, V, 0), N.embedding_backward(grad_out, ids, V, 0))
    u, r = K.embedding_backward_sparse(grad_out, ids, V, 0)
    u_ref, r_ref = N.embedding_backward_sparse(grad_out, ids, V, 0)
    assert np.array_equal(u, u_ref)
    h.assert_close(r, r_ref)
