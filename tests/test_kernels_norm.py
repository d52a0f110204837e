"""Layer norm (plain and fused with the residual add) and GELU (tanh and exact): forward, backward, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import toolkit.kernels as K
import toolkit.numpy_kernels as N


def ln_inputs(rng, h, shape, offset=0.0):
    D = shape[-1]
    x = h.randn(rng, *shape, scale=2.0) + np.float32(offset)
    return x, h.randn(rng, *shape), h.randn(rng, D), h.randn(rng, D)


def compare_layer_norm(x, r, gamma, beta, eps, rng, h):
    """Forward and backward, compiled vs reference; r None for the plain form."""
    if r is None:
        got = K.layer_norm_forward(x, gamma, beta, eps)
        want = N.layer_norm_forward(x, gamma, beta, eps)
        s = x
    else:
        y, s, mean, rstd = K.add_layer_norm_forward(x, r, gamma, beta, eps)
        y_ref, s_ref, mean_ref, rstd_ref = N.add_layer_norm_forward(x, r, gamma, beta, eps)
        assert np.array_equal(s, s_ref) and np.array_equal(s, x + r)
        got, want = (y, mean, rstd), (y_ref, mean_ref, rstd_ref)
    for name, g, w in zip(("y", "mean", "rstd"), got, want):
        assert g.dtype == np.float32 and g.shape == w.shape, name
    y, mean, rstd = got
    h.assert_close(y, want[0], scale=float(np.abs(gamma).max() * 4 + np.abs(beta).max()), what="y")
    h.assert_close(mean, want[1], scale=float(np.abs(s).max()), what="mean")
    h.assert_close(rstd, want[2], what="rstd")

    dy = h.randn(rng, *x.shape)
    ds = h.randn(rng, *x.shape) if r is not None else None
    dx, dgamma, dbeta = K.layer_norm_backward(dy, s, gamma, mean, rstd, ds)
    dx_ref, dgamma_ref, dbeta_ref = N.layer_norm_backward(dy, s, gamma, mean, rstd, ds)
    # dx is a difference of terms of size rstd * |dy * gamma|: rounding is relative to those.
    term = float(np.abs(rstd).max() * np.abs(dy * gamma).max() * 3)
    h.assert_close(dx, dx_ref, scale=term + (0 if ds is None else float(np.abs(ds).max())), what="dx")
    rows = dy.reshape(-1, x.shape[-1])
    h.assert_close(dgamma, dgamma_ref, scale=float(np.abs(rows).sum(0).max() * 4), what="dgamma")
    h.assert_close(dbeta, dbeta_ref, scale=float(np.abs(rows).sum(0).max()), what="dbeta")


SHAPES = [
    pytest.param((1,), id="one-value"),
    pytest.param((5,), id="1-D"),
    pytest.param((3, 1), id="D=1"),
    pytest.param((4, 7), id="2-D"),
    pytest.param((2, 3, 33), id="3-D-odd"),
    pytest.param((64, 768), id="bert-rows"),
    pytest.param((2, 300, 64), id="many-rows-threads"),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fused", [False, True], ids=["plain", "fused-residual"])
def test_layer_norm_matches_reference(shape, fused, rng, h):
    x, r, gamma, beta = ln_inputs(rng, h, shape, offset=1.5)
    compare_layer_norm(x, r if fused else None, gamma, beta, 1e-5, rng, h)


@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.lists(st.integers(1, 40), min_size=1, max_size=3),
    fused=st.booleans(),
    eps=st.sampled_from([0.0, 1e-12, 1e-5, 0.1, 10.0]),
    offset=st.sampled_from([0.0, 3.0, -100.0]),
)
def test_layer_norm_property_matches_reference(seed, shape, fused, eps, offset, h):
    rng = np.random.default_rng(seed)
    x, r, gamma, beta = ln_inputs(rng, h, shape, offset)
    if shape[-1] == 1 and eps == 0.0:
        eps = 1e-5  # a constant row with eps 0 is 0 / 0: NaN by both, nothing to compare
    compare_layer_norm(x, r if fused else None, gamma, beta, eps, rng, h)


@pytest.mark.parametrize("fused", [False, True], ids=["plain", "fused-residual"])
def test_layer_norm_gradient_check(backend, fused, rng, h):
    """Finite differences of sum(y * R) (+ sum(s * Q) for the fused form) against the analytic backward."""
    x, r, gamma, beta = ln_inputs(rng, h, (3, 4, 6), offset=1.0)
    R, Q = h.randn(rng, 3, 4, 6), h.randn(rng, 3, 4, 6)

    if fused:
        def loss(x, r, gamma, beta):
            y, s, _, _ = backend.add_layer_norm_forward(x, r, gamma, beta)
            return h.weighted_sum(y, R) + h.weighted_sum(s, Q)

        y, s, mean, rstd = backend.add_layer_norm_forward(x, r, gamma, beta)
        dx, dgamma, dbeta = backend.layer_norm_backward(R, s, gamma, mean, rstd, ds=Q)
        inputs = dict(x=x, r=r, gamma=gamma, beta=beta)
        grads = dict(x=dx, r=dx, gamma=dgamma, beta=dbeta)
    else:
        def loss(x, gamma, beta):
            return h.weighted_sum(backend.layer_norm_forward(x, gamma, beta)[0], R)

        y, mean, rstd = backend.layer_norm_forward(x, gamma, beta)
        dx, dgamma, dbeta = backend.layer_norm_backward(R, x, gamma, mean, rstd)
        inputs, grads = dict(x=x, gamma=gamma, beta=beta), dict(x=dx, gamma=dgamma, beta=dbeta)
    h.check_grads(loss, inputs, grads, rng)


def test_layer_norm_statistics(backend, rng, h):
    x = h.randn(rng, 5, 40, scale=4.0) + 1e3  # a large offset: a one-pass variance would lose it
    y, mean, rstd = backend.layer_norm_forward(x, np.ones(40, np.float32), np.zeros(40, np.float32))
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(-1), rtol=1e-6)
    np.testing.assert_allclose(rstd, 1 / np.sqrt(x64.var(-1) + 1e-5), rtol=1e-4)
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(-1), 1.0, rtol=1e-3)
    constant = np.full((2, 3), 7.0, np.float32)  # variance 0: y = beta
    y, _, rstd = backend.layer_norm_forward(constant, np.ones(3, np.float32), np.arange(3, dtype=np.float32))
    assert np.array_equal(y, np.tile(np.arange(3, dtype=np.float32), (2, 1)))
    np.testing.assert_allclose(rstd, 1 / np.sqrt(np.float32(1e-5)), rtol=1e-6)


def test_layer_norm_backward_is_deterministic_and_ignores_read_only(rng, h):
    x, _, gamma, beta = ln_inputs(rng, h, (500, 96))
    y, mean, rstd = K.layer_norm_forward(x, gamma, beta)
    dy = h.randn(rng, *x.shape)
    for a in (dy, x, gamma, mean, rstd):
        a.flags.writeable = False
    first = K.layer_norm_backward(dy, x, gamma, mean, rstd)
    for _ in range(3):
        for a, b in zip(first, K.layer_norm_backward(dy, x, gamma, mean, rstd)):
            assert np.array_equal(a, b)


def f32(*shape):
    return np.ones(shape, np.float32)


def bad_layer_norm_calls():
    x, g = f32(2, 4), f32(4)
    mean, rstd = f32(2), f32(2)
    fwd, add, bwd = "layer_norm_forward", "add_layer_norm_forward", "layer_norm_backward"
    yield "x float64", fwd, (x.astype(np.float64), g, g), TypeError
    yield "x list", fwd, (x.tolist(), g, g), TypeError
    yield "x 0-d", fwd, (np.ones((), np.float32), g, g), ValueError
    yield "x empty rows", fwd, (f32(0, 4), g, g), ValueError
    yield "x D=0", fwd, (f32(2, 0), f32(0), f32(0)), ValueError
    yield "x transposed", fwd, (f32(4, 2).T, g, g), ValueError
    yield "gamma short", fwd, (x, f32(3), g), ValueError
    yield "beta 2-D", fwd, (x, g, f32(1, 4)), ValueError
    yield "beta None", fwd, (x, g, None), TypeError
    yield "gamma float16", fwd, (x, g.astype(np.float16), g), TypeError
    yield "eps negative", fwd, (x, g, g, -1e-5), ValueError
    yield "eps inf", fwd, (x, g, g, float("inf")), ValueError
    yield "eps nan", fwd, (x, g, g, float("nan")), ValueError
    yield "eps beyond float32", fwd, (x, g, g, 1e39), ValueError
    yield "eps str", fwd, (x, g, g, "1e-5"), ValueError
    yield "eps bool", fwd, (x, g, g, True), ValueError
    yield "residual other shape", add, (x, f32(2, 5), g, g), ValueError
    yield "residual float64", add, (x, x.astype(np.float64), g, g), TypeError
    yield "residual None", add, (x, None, g, g), TypeError
    yield "dy other shape", bwd, (f32(2, 5), x, g, mean, rstd), ValueError
    yield "dy float64", bwd, (x.astype(np.float64), x, g, mean, rstd), TypeError
    yield "dy None", bwd, (None, x, g, mean, rstd), TypeError
    yield "mean other shape", bwd, (x, x, g, f32(3), rstd), ValueError
    yield "mean 2-D", bwd, (x, x, g, f32(2, 1), rstd), ValueError
    yield "rstd int", bwd, (x, x, g, mean, np.ones(2, np.int64)), TypeError
    yield "gamma other D", bwd, (x, x, f32(5), mean, rstd), ValueError
    yield "ds other shape", bwd, (x, x, g, mean, rstd, f32(4, 2)), ValueError
    yield "ds strided", bwd, (x, x, g, mean, rstd, f32(2, 8)[:, ::2]), ValueError


@pytest.mark.parametrize("name, fn, args, error", list(bad_layer_norm_calls()),
                         ids=[c[0] for c in bad_layer_norm_calls()])
def test_layer_norm_bad_input(backend, name, fn, args, error):
    with pytest.raises(error):
        getattr(backend, fn)(*args)


# ---- GELU -------------------------------------------------------------------------

APPROX = ["none", "tanh"]


def wide_values(rng, n):
    """Normal values, a wide range, and the points where the float32 formulas switch branches."""
    edges = np.array([0.0, -0.0, 1e-30, -1e-30, 9.0, -9.0, 10.0, -10.0, 13.5, -13.5, 19.99, -19.99, 20.0, -20.0,
                      50.0, -50.0, 1e5, -1e5, 1e20, -1e20, 3e38, -3e38], np.float32)
    return np.concatenate([rng.standard_normal(n).astype(np.float32) * 3, np.linspace(-40, 40, 801, dtype=np.float32),
                           edges])


@pytest.mark.parametrize("approximate", APPROX)
def test_gelu_matches_reference(approximate, rng, h):
    x = wide_values(rng, 5000)
    y, y_ref = K.gelu_forward(x, approximate), N.gelu_forward(x, approximate)
    assert y.dtype == np.float32 and y.shape == x.shape
    # Values of y near 0 are tiny differences of the tails: compare them absolutely at float32 scale.
    # The exact form's rational erf is within about 2e-7 of erf, absolutely: y within 1.5e-6 (PyTorch's
    # float32 gelu is 1.1e-6 off here), and never of the wrong sign.
    np.testing.assert_allclose(y, y_ref, rtol=2e-6, atol=1e-7 if approximate == "tanh" else 1.5e-6)
    assert (y[x < 0] <= 0).all() and (y[x > 0] >= 0).all()
    dy = h.randn(rng, *x.shape)
    np.testing.assert_allclose(K.gelu_backward(dy, x, approximate), N.gelu_backward(dy, x, approximate),
                               rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("approximate", APPROX)
@pytest.mark.parametrize("shape", [(), (0,), (1,), (3, 0, 2), (7, 5), (2, 3, 40000)])
def test_gelu_any_shape(approximate, shape, rng, h):
    x, dy = np.asarray(h.randn(rng, *shape)), np.asarray(h.randn(rng, *shape))  # 0-d arrays, not scalars
    y = K.gelu_forward(x, approximate)
    assert y.shape == x.shape
    h.assert_close(y, N.gelu_forward(x, approximate), scale=1.0, what="y")
    h.assert_close(K.gelu_backward(dy, x, approximate), N.gelu_backward(dy, x, approximate), scale=2.0, what="dx")


@pytest.mark.parametrize("approximate", APPROX)
def test_gelu_special_values_as_reference(approximate):
    x = np.array([np.inf, -np.inf, np.nan, 0.0], np.float32)
    dy = np.ones_like(x)
    with np.errstate(all="ignore"):
        for got, want in ((K.gelu_forward(x, approximate), N.gelu_forward(x, approximate)),
                          (K.gelu_backward(dy, x, approximate), N.gelu_backward(dy, x, approximate))):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("approximate", APPROX)
def test_gelu_gradient_check(backend, approximate, rng, h):
    x = h.randn(rng, 4, 9, scale=2.0)
    R = h.randn(rng, 4, 9)

    def loss(x):
        return h.weighted_sum(backend.gelu_forward(x, approximate), R)

    h.check_grads(loss, dict(x=x), dict(x=backend.gelu_backward(R, x, approximate)), rng)


def test_gelu_known_values(backend):
    x = np.array([-3.0, -1.0, 0.0, 1.0, 3.0], np.float32)
    # torch.nn.functional.gelu(x) and gelu(x, approximate="tanh"), float64
    exact = [-0.0040496, -0.15865525, 0.0, 0.84134475, 2.9959504]
    tanh = [-0.00363739, -0.15880801, 0.0, 0.84119199, 2.99636261]
    np.testing.assert_allclose(backend.gelu_forward(x), exact, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(backend.gelu_forward(x, "tanh"), tanh, rtol=1e-5, atol=1e-7)


def bad_gelu_calls():
    x = np.ones((2, 3), np.float32)
    yield "float64", "gelu_forward", (x.astype(np.float64),), TypeError
    yield "list", "gelu_forward", (x.tolist(),), TypeError
    yield "strided", "gelu_forward", (np.ones((2, 6), np.float32)[:, ::2],), ValueError
    yield "approximate other", "gelu_forward", (x, "erf"), ValueError
    yield "approximate None", "gelu_forward", (x, None), ValueError
    yield "approximate bool", "gelu_backward", (x, x, True), ValueError
    yield "dy other shape", "gelu_backward", (np.ones((3, 2), np.float32), x), ValueError
    yield "dy int", "gelu_backward", (np.ones((2, 3), np.int32), x), TypeError
    yield "x None", "gelu_backward", (x, None), TypeError


@pytest.mark.parametrize("name, fn, args, error", list(bad_gelu_calls()), ids=[c[0] for c in bad_gelu_calls()])
def test_gelu_bad_input(backend, name, fn, args, error):
    with pytest.raises(error):
        getattr(backend, fn)(*args)
