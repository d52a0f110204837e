"""1-D convolution, its backward, and the fused conv -> ReLU -> max-pool."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import toolkit.kernels as K
import toolkit.numpy_kernels as N

# (B, T, C, K, F, padding, bias)
CASES = [
    pytest.param(1, 1, 1, 1, 1, "valid", True, id="all-dims-1"),
    pytest.param(1, 1, 3, 3, 2, "same", True, id="T1-same"),
    pytest.param(2, 5, 3, 5, 7, "valid", True, id="K=T"),
    pytest.param(2, 2, 7, 5, 3, "same", False, id="K>T-same"),
    pytest.param(3, 4, 13, 6, 1, "same", True, id="K>T-same-evenK"),
    pytest.param(2, 9, 17, 4, 13, "same", True, id="evenK-same"),
    pytest.param(4, 37, 8, 1, 9, "valid", True, id="K1"),
    pytest.param(1, 16, 16, 3, 16, "valid", False, id="multiple-of-16"),
    pytest.param(3, 61, 5, 7, 17, "same", True, id="odd-widths"),
    # Longer than the kernels' 512-step chunks, several times over.
    pytest.param(2, 3000, 3, 5, 7, "valid", True, id="longT-valid"),
    pytest.param(1, 3000, 2, 4, 5, "same", True, id="longT-same"),
    # K in (3, 5) with C, F >= 16 takes the Winograd F(2, K) path, which
    # makes outputs in pairs: odd output lengths, T = 1 and K > T matter there.
    pytest.param(2, 16, 16, 3, 16, "valid", True, id="wino3-evenTo"),
    pytest.param(2, 17, 16, 3, 16, "valid", True, id="wino3-oddTo"),
    pytest.param(3, 1, 16, 3, 17, "same", True, id="wino3-T1"),
    pytest.param(1, 5, 24, 5, 16, "valid", False, id="wino5-K=T"),
    pytest.param(2, 2, 16, 5, 17, "same", True, id="wino5-K>T"),
    pytest.param(2, 23, 17, 5, 20, "same", True, id="wino5-oddT"),
    pytest.param(2, 1100, 16, 5, 16, "same", True, id="wino5-longT"),
    pytest.param(1, 1027, 16, 3, 18, "valid", True, id="wino3-longT-oddTo"),
]


def make_inputs(rng, h, B, T, C, Kw, F, bias):
    x = h.randn(rng, B, T, C)
    w = h.randn(rng, Kw, C, F, scale=1 / np.sqrt(Kw * C))
    b = h.randn(rng, F) if bias else None
    return x, w, b


def out_len(T, Kw, padding):
    return T if padding == "same" else T - Kw + 1


def assert_argmax_equivalent(argmax, want, y):
    """argmax equal to the reference's, except where the two steps are a near-tie in y (B, To, F)."""
    assert argmax.dtype == np.int32 and argmax.shape == want.shape
    assert ((argmax >= 0) & (argmax < y.shape[1])).all()
    bi, fi = np.nonzero(argmax != want)
    gap = np.abs(y[bi, argmax[bi, fi], fi].astype(np.float64) - y[bi, want[bi, fi], fi])
    tol = 1e-5 * max(1.0, float(np.abs(y).max()))
    assert (gap <= tol).all(), f"argmax differs at (b, f) = {list(zip(bi, fi))[:5]} with gaps {gap[:5]}"


def compare_all(x, w, b, padding, rng, h):
    """Every conv kernel, compiled vs reference, on one set of inputs."""
    y = K.conv1d_forward(x, w, b, padding)
    y_ref = N.conv1d_forward(x, w, b, padding)
    assert y.shape == (x.shape[0], out_len(x.shape[1], w.shape[0], padding), w.shape[2])
    assert y.dtype == np.float32
    h.assert_close(y, y_ref, what="y")

    dy = h.randn(rng, *y.shape)
    grads, grads_ref = K.conv1d_backward(dy, x, w, padding), N.conv1d_backward(dy, x, w, padding)
    for name, got, want in zip(("dx", "dw", "db"), grads, grads_ref):
        assert got.dtype == np.float32
        h.assert_close(got, want, what=name)

    pooled, argmax = K.conv1d_relu_maxpool_forward(x, w, b, padding)
    pooled_ref, argmax_ref = N.conv1d_relu_maxpool_forward(x, w, b, padding)
    assert pooled.dtype == np.float32
    h.assert_close(pooled, pooled_ref, what="pooled")
    assert_argmax_equivalent(argmax, argmax_ref, y_ref)

    dpooled = h.randn(rng, *pooled.shape)
    # Same saved state for both, so that only the backward itself is compared.
    got = K.conv1d_relu_maxpool_backward(dpooled, x, w, pooled, argmax, padding)
    want = N.conv1d_relu_maxpool_backward(dpooled, x, w, pooled, argmax, padding)
    for name, g, r in zip(("dx", "dw", "db"), got, want):
        h.assert_close(g, r, what=f"fused {name}")


@pytest.mark.parametrize("B,T,C,Kw,F,padding,bias", CASES)
def test_matches_reference(B, T, C, Kw, F, padding, bias, rng, h):
    x, w, b = make_inputs(rng, h, B, T, C, Kw, F, bias)
    compare_all(x, w, b, padding, rng, h)


@given(
    seed=st.integers(0, 2**32 - 1),
    B=st.integers(1, 3),
    T=st.integers(1, 20),
    C=st.integers(1, 9),
    Kw=st.integers(1, 7),
    F=st.integers(1, 9),
    padding=st.sampled_from(["valid", "same"]),
    bias=st.booleans(),
)
def test_property_matches_reference(seed, B, T, C, Kw, F, padding, bias, h):
    rng = np.random.default_rng(seed)
    x, w, b = make_inputs(rng, h, B, T, C, Kw, F, bias)
    if padding == "valid" and Kw > T:
        for backend in (K, N):
            with pytest.raises(ValueError):
                backend.conv1d_forward(x, w, b, padding)
        return
    compare_all(x, w, b, padding, rng, h)


@given(
    seed=st.integers(0, 2**32 - 1),
    B=st.integers(1, 3),
    T=st.integers(1, 40),
    C=st.integers(16, 24),
    Kw=st.sampled_from([3, 5]),
    F=st.integers(16, 24),
    padding=st.sampled_from(["valid", "same"]),
    bias=st.booleans(),
)
def test_property_winograd_shapes_match_reference(seed, B, T, C, Kw, F, padding, bias, h):
    rng = np.random.default_rng(seed)
    if padding == "valid" and Kw > T:
        T = Kw
    compare_all(*make_inputs(rng, h, B, T, C, Kw, F, bias), padding, rng, h)


@pytest.mark.parametrize("Kw", [3, 5])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_non_centred_input_with_cancelling_taps(Kw, padding, rng, h):
    # x = 10 + noise and taps summing to zero: y is small next to its terms,
    # which is where a transformed (Winograd) product loses accuracy first.
    x = h.randn(rng, 2, 64, 32) + np.float32(10)
    w = h.randn(rng, Kw, 32, 32, scale=1 / np.sqrt(Kw * 32))
    w -= w.mean(axis=0, keepdims=True)
    h.assert_close(K.conv1d_forward(x, w, None, padding), N.conv1d_forward(x, w, None, padding), what="y")
    dy = h.randn(rng, 2, out_len(64, Kw, padding), 32)
    grads, grads_ref = K.conv1d_backward(dy, x, w, padding), N.conv1d_backward(dy, x, w, padding)
    for name, got, want in zip(("dx", "dw", "db"), grads, grads_ref):
        h.assert_close(got, want, what=name)


def test_same_padding_puts_extra_zero_on_the_right(backend):
    # Width 4 pads one zero on the left and two on the right: output step t
    # sees x[t-1 .. t+2]. A one-hot x reads the taps of w back in order.
    x = np.zeros((1, 5, 1), np.float32)
    x[0, 2, 0] = 1.0
    w = np.array([1, 10, 100, 1000], np.float32).reshape(4, 1, 1)
    y = backend.conv1d_forward(x, w, None, "same")[0, :, 0]
    assert np.array_equal(y, [1000, 100, 10, 1, 0])


def test_fused_argmax_takes_first_of_exact_ties(backend):
    # Small integers: every sum is exact in float32, so ties are exact ties.
    pattern = np.array([[1, -2], [3, 0], [-1, 2]], np.float32)
    x = np.tile(pattern, (4, 1))[None]  # period 3 in time
    w = np.array([[[1, -1], [2, 1]], [[0, 1], [-1, 2]]], np.float32)  # (K=2, C=2, F=2)
    y = N.conv1d_forward(x, w, None, "valid")[0]
    pooled, argmax = backend.conv1d_relu_maxpool_forward(x, w, None, "valid")
    assert np.array_equal(argmax[0], np.argmax(y, axis=0))
    assert np.array_equal(pooled[0], np.maximum(y.max(axis=0), 0))
    assert (np.sum(y == y.max(axis=0), axis=0) > 1).all(), "the test needs ties in every filter"


def test_fused_argmax_is_of_pre_relu_values(backend):
    # All pre-activations negative: pooled is 0 but argmax still marks the
    # largest (least negative) step.
    x = np.array([[[-3.0], [-1.0], [-2.0], [-5.0]]], np.float32)
    w = np.ones((1, 1, 1), np.float32)
    pooled, argmax = backend.conv1d_relu_maxpool_forward(x, w, None, "valid")
    assert pooled[0, 0] == 0.0 and argmax[0, 0] == 1
    dx, dw, db = backend.conv1d_relu_maxpool_backward(np.ones_like(pooled), x, w, pooled, argmax, "valid")
    assert not dx.any() and not dw.any() and not db.any()


# The reference's float64 matmul warns on NaN/inf operands; that is the point here.
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_input_propagates(backend, value, rng, h):
    x, w, b = make_inputs(rng, h, 2, 10, 3, 3, 4, True)
    x[0, 4, 1] = value
    y = backend.conv1d_forward(x, w, b, "same")
    assert not np.isfinite(y[0, 3:6]).any(), "every output step that reads the bad value must be non-finite"
    assert np.isfinite(y[0, :3]).all() and np.isfinite(y[0, 6:]).all() and np.isfinite(y[1]).all()
    pooled, argmax = backend.conv1d_relu_maxpool_forward(x, w, b, "same")
    if np.isnan(value):
        assert np.isnan(pooled[0]).all() and (argmax[0] == 3).all(), "NaN is the max, taken at its first step"
    assert np.isfinite(pooled[1]).all()
    dy = np.ones_like(y)
    dx, dw, db = backend.conv1d_backward(dy, x, w, "same")
    assert np.isfinite(dx).all() and np.isfinite(db).all()
    assert not np.isfinite(dw).all()


def assert_same_non_finite(got, want, h, what, spread_ok=False):
    """Non-finite where the reference is, NaN where it has NaN, close elsewhere.

    An inf may come back as NaN: a transformed (Winograd) product adds and
    subtracts it, and inf - inf is NaN. With ``spread_ok`` a NaN may also
    reach entries that share a Winograd tile with the bad input although
    they do not depend on it (IEEE arithmetic does not cancel infinities);
    a bad input still never turns into a finite number.
    """
    bad, bad_ref = ~np.isfinite(got), ~np.isfinite(want)
    assert bad[bad_ref].all(), f"{what}: a non-finite entry became finite"
    if spread_ok:
        assert np.isnan(got[bad & ~bad_ref]).all(), f"{what}: an inf appeared from finite terms"
    else:
        assert np.array_equal(bad, bad_ref), f"{what}: non-finite entries differ"
    assert np.isnan(got[np.isnan(want)]).all(), f"{what}: a NaN became an inf"
    inf = np.isinf(want)
    assert (np.isnan(got[inf]) | (got[inf] == want[inf])).all(), f"{what}: an inf changed sign"
    both = ~bad & ~bad_ref
    h.assert_close(got[both], want[both], what=what)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize(
    "C,Kw,F,wino",
    [
        pytest.param(4, 3, 5, False, id="taps"),
        pytest.param(16, 3, 16, True, id="wino3"),
        pytest.param(16, 5, 17, True, id="wino5"),
    ],
)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_non_finite_matches_reference(C, Kw, F, wino, padding, rng, h):
    x, w, b = make_inputs(rng, h, 3, 12, C, Kw, F, True)
    x[0, 4, 1] = np.nan
    x[1, 7, 2] = np.inf
    x[2, 2, 0] = -np.inf
    x[2, 9, 3] = np.inf
    y_ref = N.conv1d_forward(x, w, b, padding)
    assert_same_non_finite(K.conv1d_forward(x, w, b, padding), y_ref, h, "y")
    dy = h.randn(rng, *y_ref.shape)
    grads, grads_ref = K.conv1d_backward(dy, x, w, padding), N.conv1d_backward(dy, x, w, padding)
    for name, got, want in zip(("dx", "dw", "db"), grads, grads_ref):
        assert_same_non_finite(got, want, h, name, spread_ok=wino)

    pooled, argmax = K.conv1d_relu_maxpool_forward(x, w, b, padding)
    pooled_ref, argmax_ref = N.conv1d_relu_maxpool_forward(x, w, b, padding)
    # A -inf step that came back NaN wins the max: the spread again.
    assert_same_non_finite(pooled, pooled_ref, h, "pooled", spread_ok=wino)
    ok = np.isfinite(pooled)
    bi, fi = np.nonzero(~ok)
    # A non-finite max was taken at a step that the bad input reaches.
    assert not np.isfinite(y_ref[bi, argmax[bi, fi], fi]).any()
    assert_argmax_equivalent(np.where(ok, argmax, argmax_ref), argmax_ref, y_ref)


# ---- finite-difference gradient checks ----------------------------------


@pytest.mark.parametrize(
    "B,T,C,Kw,F,padding",
    [
        (2, 7, 3, 3, 4, "valid"),
        (1, 5, 2, 5, 3, "valid"),
        (2, 6, 3, 4, 5, "same"),
        (2, 3, 2, 5, 3, "same"),
        (2, 7, 16, 3, 16, "valid"),  # Winograd
        (1, 6, 16, 5, 17, "same"),  # Winograd
    ],
)
def test_conv_gradient_finite_differences(backend, B, T, C, Kw, F, padding, rng, h):
    x, w, b = make_inputs(rng, h, B, T, C, Kw, F, True)
    R = h.randn(rng, B, out_len(T, Kw, padding), F)

    def loss(x, w, b):
        return h.weighted_sum(backend.conv1d_forward(x, w, b, padding), R)

    dx, dw, db = backend.conv1d_backward(R, x, w, padding)
    h.check_grads(loss, {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, rng, eps=1e-2)


def separated_pool_inputs(rng, h, B, T, C, Kw, F, padding, dead, margin=0.2):
    """Inputs whose pooled maxima are unambiguous under a small perturbation.

    For every (b, f) the best step beats the runner-up by ``margin`` and the
    max sits at least ``margin`` away from the ReLU kink, so a finite
    difference never switches the argmax or the ReLU. Filters in ``dead``
    get a bias so negative that their ReLU is off everywhere. Filters do not
    interact, so each one is redrawn until it qualifies.
    """
    x, w, b = make_inputs(rng, h, B, T, C, Kw, F, True)
    b[dead] = -50.0
    for f in range(F):
        for _ in range(1000):
            y = np.sort(N.conv1d_forward(x, w[:, :, f : f + 1].copy(), b[f : f + 1], padding)[..., 0], axis=1)
            top = y[:, -1]
            gap = top - y[:, -2] if y.shape[1] > 1 else np.full_like(top, np.inf)
            if (gap >= margin).all() and (np.abs(top) >= margin).all():
                break
            w[:, :, f] = h.randn(rng, Kw, C, scale=1 / np.sqrt(Kw * C))
            b[f] = -50.0 if f in dead else h.randn(rng, 1)[0]
        else:
            raise AssertionError(f"could not draw a well-separated filter {f}; loosen the margin")
    return x, w, b


@pytest.mark.parametrize(
    "B,T,C,Kw,F,padding",
    [(2, 8, 3, 3, 4, "valid"), (2, 6, 2, 4, 5, "same"), (1, 3, 2, 5, 4, "same"), (1, 4, 16, 5, 16, "same")],
)
def test_fused_gradient_finite_differences(backend, B, T, C, Kw, F, padding, rng, h):
    dead = [1]
    x, w, b = separated_pool_inputs(rng, h, B, T, C, Kw, F, padding, dead)
    pooled, argmax = backend.conv1d_relu_maxpool_forward(x, w, b, padding)
    assert (pooled[:, dead] == 0).all()
    assert (pooled > 0).any(), "the test needs live filters too"
    R = h.randn(rng, B, F)

    def loss(x, w, b):
        p, a = backend.conv1d_relu_maxpool_forward(x, w, b, padding)
        # A switch would make the finite difference meaningless, not the kernel wrong.
        assert np.array_equal(a, argmax) and np.array_equal(p > 0, pooled > 0), "perturbation switched the argmax"
        return h.weighted_sum(p, R)

    dx, dw, db = backend.conv1d_relu_maxpool_backward(R, x, w, pooled, argmax, padding)
    # ReLU off: no gradient at all for that filter.
    assert not dw[:, :, dead].any() and not db[dead].any()
    h.check_grads(loss, {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, rng, eps=3e-3)


# ---- reference shape ------------------------------------------------------


def test_reference_shape_smoke(rng, h):
    B, T, C, Kw, F = 64, 400, 128, 5, 128
    x, w, b = make_inputs(rng, h, B, T, C, Kw, F, True)
    y = K.conv1d_forward(x, w, b, "same")
    dy = h.randn(rng, *y.shape)
    dx, dw, db = K.conv1d_backward(dy, x, w, "same")
    pooled, argmax = K.conv1d_relu_maxpool_forward(x, w, b, "same")
    fdx, fdw, fdb = K.conv1d_relu_maxpool_backward(pooled, x, w, pooled, argmax, "same")
    for a in (y, dx, dw, db, pooled, fdx, fdw, fdb):
        assert np.isfinite(a).all()

    # The reference is slow at this size: compare the rows that depend on the
    # first two sequences only, and the weight gradients of a two-sequence call.
    s = slice(0, 2)
    xs, dys = x[s].copy(), dy[s].copy()
    h.assert_close(y[s], N.conv1d_forward(xs, w, b, "same"), what="y")
    dx_ref, dw_ref, db_ref = N.conv1d_backward(dys, xs, w, "same")
    h.assert_close(dx[s], dx_ref, what="dx")
    dxs, dws, dbs = K.conv1d_backward(dys, xs, w, "same")
    h.assert_close(dws, dw_ref, what="dw")
    h.assert_close(dbs, db_ref, what="db")
    pooled_ref, argmax_ref = N.conv1d_relu_maxpool_forward(xs, w, b, "same")
    h.assert_close(pooled[s], pooled_ref, what="pooled")
    assert_argmax_equivalent(argmax[s], argmax_ref, N.conv1d_forward(xs, w, b, "same"))


# ---- the gradient check itself ---------------------------------------------


def _corrupt_scale(dx, dw, db):
    return dx, dw * np.float32(1.05), db


def _corrupt_largest(dx, dw, db):
    dw = dw.copy()
    dw.reshape(-1)[np.argmax(np.abs(dw))] = 0.0
    return dx, dw, db


def _corrupt_shift(dx, dw, db):
    # An off-by-one in time: the gradient of the neighbouring step.
    return np.roll(dx, 1, axis=1), dw, db


def _corrupt_drop_bias(dx, dw, db):
    return dx, dw, np.zeros_like(db)


@pytest.mark.parametrize("corrupt", [_corrupt_scale, _corrupt_largest, _corrupt_shift, _corrupt_drop_bias])
def test_gradient_check_rejects_wrong_gradients(corrupt, rng, h):
    """The finite-difference helper must fail on a slightly wrong gradient, or it proves nothing."""
    x, w, b = make_inputs(rng, h, 2, 7, 3, 3, 4, True)
    R = h.randn(rng, 2, 5, 4)

    def loss(x, w, b):
        return h.weighted_sum(N.conv1d_forward(x, w, b, "valid"), R)

    dx, dw, db = corrupt(*N.conv1d_backward(R, x, w, "valid"))
    with pytest.raises(AssertionError):
        h.check_grads(loss, {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, rng, eps=1e-2)
