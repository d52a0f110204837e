"""top_k_log_softmax: a beam search step's log-softmax and selection in one kernel, against its numpy reference
and against log_softmax followed by a sort; edge rows and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toolkit.kernels as K
import toolkit.numpy_kernels as N
from toolkit.nn.layers import log_softmax


@pytest.mark.parametrize("R,V,k", [(1, 1, 1), (3, 17, 4), (5, 1000, 8), (32, 58101, 8), (2, 300, 300)])
def test_matches_the_reference_and_log_softmax_then_sort(R, V, k, rng):
    logits = (3 * rng.standard_normal((R, V))).astype(np.float32)
    values, indices = K.top_k_log_softmax(logits, k)
    want_values, want_indices = N.top_k_log_softmax(logits, k)
    assert values.shape == indices.shape == (R, k) and values.dtype == np.float32 and indices.dtype == np.int64
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_allclose(values, want_values, rtol=1e-5, atol=1e-5)
    logp = log_softmax(logits.copy())
    np.testing.assert_allclose(values, np.take_along_axis(logp, indices, axis=1), rtol=1e-5, atol=1e-5)
    assert (np.diff(values, axis=1) <= 0).all()


def test_banned_ids_are_never_chosen_but_count_in_the_normaliser(rng):
    logits = rng.standard_normal((4, 50)).astype(np.float32)
    logits[:, 7] = 30.0  # by far the most probable, and banned
    values, indices = K.top_k_log_softmax(logits, 49, np.array([7], dtype=np.int32))
    assert 7 not in indices and sorted(indices[0]) == [i for i in range(50) if i != 7]
    logp = log_softmax(logits.copy())
    np.testing.assert_allclose(values, np.take_along_axis(logp, indices, axis=1), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="k must be in \\[1, 48\\]"):
        K.top_k_log_softmax(logits, 49, np.array([7, 8]))


def test_equal_logits_give_the_lower_id_first_and_minus_infinity_comes_last():
    logits = np.array([[0.0, 1.0, 1.0, -np.inf, 1.0, 0.0],
                       [-np.inf, -np.inf, 2.0, -np.inf, -np.inf, -np.inf]], dtype=np.float32)
    values, indices = K.top_k_log_softmax(logits, 5)
    assert indices[0].tolist() == [1, 2, 4, 0, 5]
    assert indices[1].tolist()[:1] == [2] and values[1, 0] == 0.0 and np.isneginf(values[1, 1:]).all()
    np.testing.assert_array_equal(indices, N.top_k_log_softmax(logits, 5)[1])


def test_rows_without_a_distribution_give_minus_infinity_or_nan():
    logits = np.full((3, 6), -np.inf, dtype=np.float32)
    logits[1, 2] = np.nan
    logits[2] = 1.0
    logits[2, 4] = np.nan
    values, indices = K.top_k_log_softmax(logits, 3)
    assert np.isneginf(values[0]).all() and np.isnan(values[1]).all() and np.isnan(values[2]).all()
    assert ((indices >= 0) & (indices < 6)).all()
    want, _ = N.top_k_log_softmax(logits, 3)
    assert np.isneginf(want[0]).all() and np.isnan(want[1:]).all()


@settings(max_examples=60, deadline=None)
@given(R=st.integers(0, 6), V=st.integers(1, 70), data=st.data())
def test_random_shapes_and_banned_sets_match_the_reference(R, V, data):
    banned = np.array(sorted(data.draw(st.sets(st.integers(0, V - 1), max_size=V - 1))), dtype=np.int64)
    k = data.draw(st.integers(1, V - banned.size))
    seed = data.draw(st.integers(0, 2**31 - 1))
    # Few distinct values, so that ties are common.
    logits = np.random.default_rng(seed).integers(-3, 4, (R, V)).astype(np.float32)
    values, indices = K.top_k_log_softmax(logits, k, banned if banned.size else None)
    want_values, want_indices = N.top_k_log_softmax(logits, k, banned if banned.size else None)
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_allclose(values, want_values, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", [K, N])
@pytest.mark.parametrize("call,error,message", [
    (lambda b: b.top_k_log_softmax(np.zeros((2, 5)), 1), TypeError, "float32"),
    (lambda b: b.top_k_log_softmax(np.zeros(5, np.float32), 1), ValueError, "2 dimensions"),
    (lambda b: b.top_k_log_softmax(np.zeros((5, 4), np.float32)[:, ::2], 1), ValueError, "C-contiguous"),
    (lambda b: b.top_k_log_softmax(np.zeros((2, 5), np.float32), 0), ValueError, "k must be in"),
    (lambda b: b.top_k_log_softmax(np.zeros((2, 5), np.float32), 6), ValueError, "k must be in"),
    (lambda b: b.top_k_log_softmax(np.zeros((2, 5), np.float32), 2.0), TypeError, "k must be an int"),
    (lambda b: b.top_k_log_softmax(np.zeros((2, 5), np.float32), True), TypeError, "k must be an int"),
    (lambda b: b.top_k_log_softmax(np.zeros((2, 5), np.float32), 1, np.array([5])), ValueError, "banned ids"),
    (lambda b: b.top_k_log_softmax(np.zeros((2, 5), np.float32), 1, np.array([-1])), ValueError, "banned ids"),
    (lambda b: b.top_k_log_softmax(np.zeros((2, 5), np.float32), 1, [1]), TypeError, "banned must be"),
    (lambda b: b.top_k_log_softmax(np.zeros((2, 0), np.float32), 1), ValueError, "k must be in"),
])
def test_bad_input_is_a_python_exception(backend, call, error, message):
    with pytest.raises(error, match=message):
        call(backend)
