"""The fused Adam step: compiled vs the float64 reference, thread independence, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import toolkit.kernels as K
import toolkit.numpy_kernels as N


def state(rng, h, shape):
    """param, grad, m, v of ``shape`` (arrays also for shape ()); v >= 0 as Adam keeps it."""
    arrays = (h.randn(rng, *shape), h.randn(rng, *shape), h.randn(rng, *shape, scale=0.1),
              np.abs(h.randn(rng, *shape, scale=0.01)))
    return [np.array(a, dtype=np.float32) for a in arrays]


# Sizes below, at and past the kernel's chunk of 16,384 floats and its parallel threshold (more than 4 chunks).
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5), (128, 129), (4, 4, 1025), (300, 1000)])
@pytest.mark.parametrize("weight_decay, decoupled", [(0.0, False), (0.1, False), (0.1, True)])
def test_steps_match_the_reference(rng, h, shape, weight_decay, decoupled):
    ours = state(rng, h, shape)
    ref = [a.copy() for a in ours]
    for t in range(1, 5):
        grad = h.randn(rng, *shape)
        ours[1][...] = grad
        ref[1][...] = grad
        K.adam_step(*ours, 1e-2, 0.9, 0.999, 1e-8, t, weight_decay, decoupled)
        N.adam_step(*ref, 1e-2, 0.9, 0.999, 1e-8, t, weight_decay, decoupled)
        for name, got, want in zip(("param", "m", "v"), (ours[0], ours[2], ours[3]), (ref[0], ref[2], ref[3])):
            np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7, err_msg=f"{name} at step {t}")
        assert not ours[1].any() and not ref[1].any(), "the gradient is left zeroed"


def test_first_step_moves_each_weight_by_lr_against_its_gradient_sign(rng, h):
    """At t = 1 bias correction makes the step lr * g / (|g| + eps): lr in the direction of -g."""
    param, grad, m, v = h.randn(rng, 50), h.randn(rng, 50), np.zeros(50, np.float32), np.zeros(50, np.float32)
    start, g = param.copy(), grad.copy()
    K.adam_step(param, grad, m, v, 0.01, 0.9, 0.999, 1e-8, 1)
    np.testing.assert_allclose(param - start, -0.01 * np.sign(g), rtol=1e-4)


def test_one_thread_and_two_give_the_same_bits(rng, h):
    runs = []
    for threads in (1, 2):
        arrays = state(np.random.default_rng(5), h, (200_000,))
        with threadpool_limits(threads, user_api="openmp"):
            K.adam_step(*arrays, 3e-4, 0.9, 0.98, 1e-6, 7, 0.01, True)
        runs.append(arrays)
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


def test_nan_gradient_stays_in_its_element(rng, h):
    param, grad, m, v = state(rng, h, (10,))
    grad[3] = np.nan
    K.adam_step(param, grad, m, v, 1e-3, 0.9, 0.999, 1e-8, 1)
    assert np.isnan(param[3]) and np.isfinite(np.delete(param, 3)).all()


def bad_calls(h):
    rng = np.random.default_rng(0)
    good = state(rng, h, (4, 3))
    scalars = (1e-3, 0.9, 0.999, 1e-8, 1)

    def with_array(i, value):
        arrays = [a.copy() for a in good]
        arrays[i] = value
        return (*arrays, *scalars)

    def with_scalar(i, value):
        values = list(scalars)
        values[i] = value
        return (*[a.copy() for a in good], *values)

    read_only = good[2].copy()
    read_only.flags.writeable = False
    shared = good[0].copy()
    yield "float64 param", with_array(0, good[0].astype(np.float64)), TypeError
    yield "list grad", with_array(1, good[1].tolist()), TypeError
    yield "non-contiguous m", with_array(2, np.zeros((3, 4), np.float32).T), ValueError
    yield "shape mismatch", with_array(3, np.zeros((3, 4), np.float32)), ValueError
    yield "read-only m", with_array(2, read_only), ValueError
    yield "grad is param", (shared, shared, good[2].copy(), good[3].copy(), *scalars), ValueError
    yield "m overlaps v", (good[0].copy(), good[1].copy(), shared[:2], shared[1:3], *scalars), ValueError
    yield "negative lr", with_scalar(0, -1e-3), ValueError
    yield "beta1 of 1", with_scalar(1, 1.0), ValueError
    yield "nan beta2", with_scalar(2, float("nan")), ValueError
    yield "zero eps", with_scalar(3, 0.0), ValueError
    yield "step 0", with_scalar(4, 0), ValueError
    yield "bool step", with_scalar(4, True), ValueError
    yield "float step", with_scalar(4, 1.0), ValueError


@pytest.mark.parametrize("backend", [K, N], ids=["compiled", "reference"])
def test_bad_input_is_a_python_exception(backend, h):
    for what, args, error in bad_calls(h):
        before = [a.copy() if isinstance(a, np.ndarray) else a for a in args[:4]]
        with pytest.raises(error):
            backend.adam_step(*args)
        for a, b in zip(args[:4], before):
            if isinstance(a, np.ndarray):
                assert np.array_equal(a, b, equal_nan=True), f"{what}: nothing is written"
    with pytest.raises(ValueError, match="weight_decay"):
        backend.adam_step(*state(np.random.default_rng(0), h, (2,)), 1e-3, 0.9, 0.999, 1e-8, 1, -0.5)
