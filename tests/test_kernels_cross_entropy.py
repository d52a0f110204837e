"""Softmax cross-entropy fused with the output projection: forward, backward, gradient check, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special

import toolkit.kernels as K
import toolkit.numpy_kernels as N


def ce_inputs(rng, h, n, d, v, bias=False, ignore=0.0, ignore_index=-100, scale=1.0):
    x, w = h.randn(rng, n, d, scale=scale), h.randn(rng, v, d, scale=0.5)
    t = rng.integers(0, v, n)
    t[rng.random(n) < ignore] = ignore_index
    return x, w, t, (h.randn(rng, v) if bias else None)


def plain_loss(x, w, t, b, ignore_index=-100):
    """Projection -> log-softmax -> NLL over the counted rows, in float64."""
    z = x.astype(np.float64) @ w.astype(np.float64).T + (0.0 if b is None else b.astype(np.float64))
    keep = t != ignore_index
    return float(-special.log_softmax(z, axis=1)[np.flatnonzero(keep), t[keep]].mean())


def compare(x, w, t, b, block, h, ignore_index=-100, dloss=1.0):
    loss, lse = K.linear_cross_entropy(x, w, t, b, ignore_index, block)
    loss_ref, lse_ref = N.linear_cross_entropy(x, w, t, b, ignore_index, block)
    assert isinstance(loss, float) and lse.dtype == np.float32 and lse.shape == (x.shape[0],)
    if (t != ignore_index).any():
        assert loss == pytest.approx(loss_ref, rel=1e-5, abs=1e-6)
        assert loss == pytest.approx(plain_loss(x, w, t, b, ignore_index), rel=1e-5, abs=1e-6)
    else:
        assert np.isnan(loss) and np.isnan(loss_ref)
    h.assert_close(lse, lse_ref, rtol=1e-5, what="lse")
    got = K.linear_cross_entropy_backward(x, w, t, lse, b, ignore_index, block, dloss)
    want = N.linear_cross_entropy_backward(x, w, t, lse_ref, b, ignore_index, block, dloss)
    # Each gradient entry sums softmax terms of size |dloss| / count times |x| or |w|.
    count = max(int((t != ignore_index).sum()), 1)
    for name, g, r, size in zip(("dh", "dw", "dbias"), got, want,
                                (np.abs(w).max(), np.abs(x).max(), 1.0)):
        if r is None:
            assert g is None, name
            continue
        assert g.dtype == np.float32 and g.shape == r.shape, name
        h.assert_close(g, r, rtol=1e-4, scale=float(size) * abs(dloss) / count, what=name)
    # The one-call form gives the same as the two calls (to float32 rounding: other tiles, same sums).
    one = K.linear_cross_entropy_with_grad(x, w, t, b, ignore_index, block, dloss)
    assert one[0] == pytest.approx(loss, rel=1e-6, abs=1e-7) or (np.isnan(one[0]) and np.isnan(loss))
    h.assert_close(one[1], lse, rtol=1e-6, what="one-call lse")
    for name, g, r, size in zip(("dh", "dw", "dbias"), one[2:], got, (np.abs(w).max(), np.abs(x).max(), 1.0)):
        if r is None:
            assert g is None, name
            continue
        h.assert_close(g, r, rtol=1e-5, scale=float(size) * abs(dloss) / count, what="one-call " + name)
    return got


SHAPES = [
    pytest.param(1, 3, 5, 2, id="N=1"),
    pytest.param(4, 8, 1, 1, id="V=1"),
    pytest.param(7, 5, 13, 4, id="V-not-multiple-of-block"),
    pytest.param(9, 16, 40, 512, id="block-above-V"),
    pytest.param(300, 24, 1001, 128, id="rows-beyond-one-tile"),
    pytest.param(70, 33, 2050, 64, id="many-blocks-and-slices"),
]


@pytest.mark.parametrize("n, d, v, block", SHAPES)
@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
def test_matches_reference(n, d, v, block, bias, rng, h):
    x, w, t, b = ce_inputs(rng, h, n, d, v, bias)
    compare(x, w, t, b, block, h)


@pytest.mark.parametrize("ignore_index", [-100, -1, 0, 3])
def test_ignore_index_rows_count_for_nothing(ignore_index, rng, h):
    x, w, t, b = ce_inputs(rng, h, 50, 12, 37, True, ignore=0.3, ignore_index=ignore_index)
    dh, dw, db = compare(x, w, t, b, 8, h, ignore_index, dloss=2.5)
    ignored = t == ignore_index
    assert ignored.any() and (~ignored).any()
    assert not dh[ignored].any()
    # The loss and the gradients are those of the counted rows alone.
    loss, _ = K.linear_cross_entropy(x, w, t, b, ignore_index, 8)
    keep = ~ignored
    alone, lse = K.linear_cross_entropy(x[keep], w, t[keep], b, ignore_index, 8)
    assert loss == pytest.approx(alone, rel=1e-6)
    dh2, dw2, db2 = K.linear_cross_entropy_backward(x[keep], w, t[keep], lse, b, ignore_index, 8, 2.5)
    np.testing.assert_allclose(dh[keep], dh2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dw, dw2, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(db, db2, rtol=1e-4, atol=1e-6)


def test_every_row_ignored_gives_nan_loss_and_zero_gradients(backend, rng, h):
    x, w, t, b = ce_inputs(rng, h, 6, 4, 9, True, ignore=1.0)
    loss, lse = backend.linear_cross_entropy(x, w, t, b)
    assert np.isnan(loss) and np.isfinite(lse).all()
    for g in backend.linear_cross_entropy_backward(x, w, t, lse, b):
        assert not g.any()


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    d=st.integers(1, 20),
    v=st.integers(1, 300),
    block=st.integers(1, 400),
    bias=st.booleans(),
    ignore=st.sampled_from([0.0, 0.2, 1.0]),
    scale=st.sampled_from([0.1, 1.0, 10.0]),
)
def test_property_matches_reference(seed, n, d, v, block, bias, ignore, scale, h):
    rng = np.random.default_rng(seed)
    x, w, t, b = ce_inputs(rng, h, n, d, v, bias, ignore, scale=scale)
    compare(x, w, t, b, block, h)


def test_large_logits_do_not_overflow(rng, h):
    x, w, t, _ = ce_inputs(rng, h, 20, 16, 300, scale=60.0)  # logits of several hundred
    compare(x, w, t, None, 64, h)


def test_gradient_check(backend, rng, h):
    x, w, t, b = ce_inputs(rng, h, 6, 5, 11, True, ignore=0.2)
    t[0] = 4  # at least one counted row

    def loss(x, w, b):
        return backend.linear_cross_entropy(x, w, t, b, block=4)[0] * 1.7

    _, lse = backend.linear_cross_entropy(x, w, t, b, block=4)
    dh, dw, db = backend.linear_cross_entropy_backward(x, w, t, lse, b, block=4, dloss=1.7)
    h.check_grads(loss, dict(x=x, w=w, b=b), dict(x=dh, w=dw, b=db), rng)


def test_dw_out_accumulates(backend, rng, h):
    x, w, t, _ = ce_inputs(rng, h, 30, 8, 50)
    _, lse = backend.linear_cross_entropy(x, w, t, block=16)
    _, dw, _ = backend.linear_cross_entropy_backward(x, w, t, lse, block=16)
    start = h.randn(rng, 50, 8)
    out = start.copy()
    dh, got, db = backend.linear_cross_entropy_backward(x, w, t, lse, block=16, dw_out=out)
    assert got is out and db is None
    np.testing.assert_allclose(out, start + dw, rtol=1e-5, atol=1e-7)


def test_deterministic_and_reads_read_only_inputs(rng, h):
    x, w, t, b = ce_inputs(rng, h, 600, 32, 3000, True, ignore=0.1)
    for a in (x, w, t, b):
        a.flags.writeable = False
    first = K.linear_cross_entropy(x, w, t, b, block=256)
    grads = K.linear_cross_entropy_backward(x, w, t, first[1], b, block=256)
    for _ in range(2):
        loss, lse = K.linear_cross_entropy(x, w, t, b, block=256)
        assert loss == first[0] and np.array_equal(lse, first[1])
        for g, g0 in zip(K.linear_cross_entropy_backward(x, w, t, lse, b, block=256), grads):
            assert np.array_equal(g, g0)


def test_one_call_accumulates_and_matches_reference(backend, rng, h):
    x, w, t, b = ce_inputs(rng, h, 40, 8, 700, True, ignore=0.2)
    start = h.randn(rng, 700, 8)
    out = start.copy()
    loss, lse, dh, dw, db = backend.linear_cross_entropy_with_grad(x, w, t, b, block=64, dloss=0.5, dw_out=out)
    want = N.linear_cross_entropy_with_grad(x, w, t, b, block=64, dloss=0.5)
    assert dw is out and loss == pytest.approx(want[0], rel=1e-5)
    h.assert_close(lse, want[1], rtol=1e-5, what="lse")
    h.assert_close(dh, want[2], rtol=1e-4, scale=float(np.abs(w).max()) / 32, what="dh")
    h.assert_close(out - start, want[3], rtol=1e-4, scale=float(np.abs(x).max()) / 32, what="dw")
    h.assert_close(db, want[4], rtol=1e-4, scale=1 / 32, what="dbias")


def test_one_call_many_chunks_of_rows(rng, h):
    """V large enough that a chunk holds fewer rows than N (16 Mi floats of logits / V rows, at least 16)."""
    x, w, t, b = ce_inputs(rng, h, 70, 4, 300_000, True, ignore=0.1)
    two = K.linear_cross_entropy(x, w, t, b, block=4096)
    grads = K.linear_cross_entropy_backward(x, w, t, two[1], b, block=4096)
    one = K.linear_cross_entropy_with_grad(x, w, t, b, block=4096)
    assert one[0] == pytest.approx(two[0], rel=1e-6)
    for g1, g2 in zip(one[1:], (two[1], *grads)):
        np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("case", ["first-block-minus-inf", "plus-inf-column", "nan-row"])
def test_one_call_non_finite_logits_as_two_calls(case, rng, h):
    """The one-call form keeps a tile's exponentials for its gradient; tiles left as logits (nothing finite
    seen yet, an inf, a NaN) take the two-call form's path: same NaN pattern, same values elsewhere."""
    x, w, t, b = ce_inputs(rng, h, 40, 8, 300, True)
    if case == "first-block-minus-inf":
        b[:64] = -np.inf  # every row's first block: -inf logits only
        t[t < 64] = 100
    elif case == "plus-inf-column":
        b[200] = np.inf
    else:
        x[3, 2] = np.nan
    loss, lse = K.linear_cross_entropy(x, w, t, b, block=64)
    two = K.linear_cross_entropy_backward(x, w, t, lse, b, block=64)
    one = K.linear_cross_entropy_with_grad(x, w, t, b, block=64)
    np.testing.assert_array_equal(np.isnan(one[1]), np.isnan(lse))
    for g1, g2 in zip(one[2:], two):
        np.testing.assert_array_equal(np.isnan(g1), np.isnan(g2))
        np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-7)
    if case == "first-block-minus-inf":
        assert np.isfinite(one[2]).all() and np.isfinite(one[0])


def test_int32_targets_as_int64(rng, h):
    x, w, t, _ = ce_inputs(rng, h, 10, 4, 20)
    assert K.linear_cross_entropy(x, w, t.astype(np.int32))[0] == K.linear_cross_entropy(x, w, t)[0]


def test_nan_input_gives_nan_not_a_crash(rng, h):
    x, w, t, _ = ce_inputs(rng, h, 5, 4, 700)
    x[2, 1] = np.nan
    loss, lse = K.linear_cross_entropy(x, w, t, block=64)
    assert np.isnan(loss) and np.isnan(lse[2]) and np.isfinite(np.delete(lse, 2)).all()


def f32(*shape):
    return np.ones(shape, np.float32)


def bad_calls():
    x, w, t, lse = f32(3, 4), f32(6, 4), np.array([0, 5, 2]), f32(3)
    fwd, bwd = "linear_cross_entropy", "linear_cross_entropy_backward"
    yield "h float64", fwd, (x.astype(np.float64), w, t), {}, TypeError
    yield "h list", fwd, (x.tolist(), w, t), {}, TypeError
    yield "h 1-D", fwd, (f32(4), w, t), {}, ValueError
    yield "h no rows", fwd, (f32(0, 4), w, np.zeros(0, np.int64)), {}, ValueError
    yield "h D=0", fwd, (f32(3, 0), f32(6, 0), t), {}, ValueError
    yield "h transposed", fwd, (f32(4, 3).T, w, t), {}, ValueError
    yield "w other D", fwd, (x, f32(6, 5), t), {}, ValueError
    yield "w empty", fwd, (x, f32(0, 4), np.array([-100] * 3)), {}, ValueError
    yield "w float16", fwd, (x, w.astype(np.float16), t), {}, TypeError
    yield "targets float", fwd, (x, w, t.astype(np.float32)), {}, TypeError
    yield "targets list", fwd, (x, w, [0, 1, 2]), {}, TypeError
    yield "targets short", fwd, (x, w, t[:2]), {}, ValueError
    yield "targets 2-D", fwd, (x, w, t[None]), {}, ValueError
    yield "target = V", fwd, (x, w, np.array([0, 6, 1])), {}, IndexError
    yield "target negative", fwd, (x, w, np.array([0, -1, 1])), {}, IndexError
    yield "target huge", fwd, (x, w, np.array([0, 2**40, 1])), {}, IndexError
    yield "bias short", fwd, (x, w, t), dict(bias=f32(5)), ValueError
    yield "bias int", fwd, (x, w, t), dict(bias=np.ones(6, np.int64)), TypeError
    yield "block 0", fwd, (x, w, t), dict(block=0), ValueError
    yield "block float", fwd, (x, w, t), dict(block=2.0), ValueError
    yield "block bool", fwd, (x, w, t), dict(block=True), ValueError
    yield "block beyond int32", fwd, (x, w, t), dict(block=2**31), ValueError
    yield "ignore_index str", fwd, (x, w, t), dict(ignore_index="-100"), ValueError
    yield "ignore_index beyond int64", fwd, (x, w, t), dict(ignore_index=2**64), ValueError
    yield "lse short", bwd, (x, w, t, f32(2)), {}, ValueError
    yield "lse float64", bwd, (x, w, t, lse.astype(np.float64)), {}, TypeError
    yield "lse None", bwd, (x, w, t, None), {}, TypeError
    yield "dloss nan", bwd, (x, w, t, lse), dict(dloss=float("nan")), ValueError
    yield "dloss beyond float32", bwd, (x, w, t, lse), dict(dloss=1e39), ValueError
    yield "dloss str", bwd, (x, w, t, lse), dict(dloss="1"), ValueError
    yield "dw_out other shape", bwd, (x, w, t, lse), dict(dw_out=f32(5, 4)), ValueError
    yield "dw_out float64", bwd, (x, w, t, lse), dict(dw_out=np.ones((6, 4))), TypeError
    ro = f32(6, 4)
    ro.flags.writeable = False
    yield "dw_out read-only", bwd, (x, w, t, lse), dict(dw_out=ro), ValueError
    yield "dw_out is w", bwd, (x, w, t, lse), dict(dw_out=w), ValueError


def all_bad_calls():
    yield from bad_calls()
    # The one-call form takes the forward's arguments and the backward's options.
    for name, fn, args, kwargs, error in bad_calls():
        if fn == "linear_cross_entropy" or not name.startswith("lse"):
            yield "one-call " + name, "linear_cross_entropy_with_grad", args[:3], kwargs, error


@pytest.mark.parametrize("name, fn, args, kwargs, error", list(all_bad_calls()), ids=[c[0] for c in all_bad_calls()])
def test_bad_input(backend, name, fn, args, kwargs, error):
    with pytest.raises(error):
        getattr(backend, fn)(*args, **kwargs)
