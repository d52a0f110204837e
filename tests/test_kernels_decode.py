"""Decode-step attention against a preallocated key/value cache, and the in-place cache write."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import toolkit.kernels as K
import toolkit.numpy_kernels as N


def caches(rng, h, B, H, L, D, Dv):
    return h.randn(rng, B, H, 1, D), h.randn(rng, B, H, L, D), h.randn(rng, B, H, L, Dv)


def compare(q, k, v, lengths, starts, scale, h):
    out = K.attention_decode(q, k, v, lengths, starts, scale)
    want = N.attention_decode(q, k, v, lengths, starts, scale)
    assert out.shape == q.shape[:3] + (v.shape[3],) and out.dtype == np.float32
    h.assert_close(out, want, scale=float(np.abs(v).max()), what="out")
    return out


# (B, H, L, D, Dv)
SHAPES = [
    pytest.param(1, 1, 1, 1, 1, id="all-1"),
    pytest.param(3, 2, 17, 5, 7, id="small"),
    pytest.param(2, 3, 257, 8, 4, id="one-past-the-key-block"),
    pytest.param(4, 12, 1024, 64, 64, id="gpt2-like"),
]


@pytest.mark.parametrize("B,H,L,D,Dv", SHAPES)
def test_matches_reference_lengths_1_to_Lmax(B, H, L, D, Dv, rng, h):
    q, k, v = caches(rng, h, B, H, L, D, Dv)
    lengths = rng.integers(1, L + 1, B)
    lengths[0] = L
    lengths[-1] = 1 if B > 1 else lengths[-1]
    compare(q, k, v, lengths, None, None, h)
    starts = rng.integers(0, lengths)  # 0 <= starts < lengths
    compare(q, k, v, lengths, starts, 0.3, h)
    compare(q, k, v, lengths.astype(np.int32), (lengths - 1).astype(np.int32), None, h)


@given(
    seed=st.integers(0, 2**32 - 1),
    B=st.integers(1, 3),
    H=st.integers(1, 3),
    L=st.integers(1, 600),
    D=st.integers(1, 9),
    Dv=st.integers(1, 9),
    with_starts=st.booleans(),
    scale=st.one_of(st.none(), st.floats(-2.0, 2.0)),
)
def test_property_matches_reference(seed, B, H, L, D, Dv, with_starts, scale, h):
    rng = np.random.default_rng(seed)
    q, k, v = caches(rng, h, B, H, L, D, Dv)
    lengths = rng.integers(1, L + 1, B)
    starts = rng.integers(0, lengths) if with_starts else None
    compare(q, k, v, lengths, starts, scale, h)


@pytest.mark.parametrize("backend_name", ["compiled", "numpy"])
def test_equals_full_attention_at_every_step_ragged(backend_name, rng, h):
    """Left-padded prompts of different lengths, then greedy steps: each step equals attention_forward
    over that sequence's real tokens so far (its prompt without padding, plus its generated steps)."""
    kern = K if backend_name == "compiled" else N
    B, H, L, D = 3, 2, 24, 8
    prompt_lens = np.array([5, 2, 7])
    P = int(prompt_lens.max())
    starts = P - prompt_lens  # left padding
    k_cache = np.full((B, H, L, D), np.nan, np.float32)  # never-written positions must not be read
    v_cache = np.full((B, H, L, D), np.nan, np.float32)
    k_prompt, v_prompt = h.randn(rng, B, H, P, D), h.randn(rng, B, H, P, D)
    kern.cache_write(k_cache, k_prompt, 0)
    kern.cache_write(v_cache, v_prompt, 0)
    # The padding positions hold garbage that must be ignored.
    for b in range(B):
        k_cache[b, :, : starts[b]] = 1e30
        v_cache[b, :, : starts[b]] = np.nan
    lengths = np.full(B, P, np.int64)
    for _ in range(L - P):
        k_new, v_new, q = h.randn(rng, B, H, 1, D), h.randn(rng, B, H, 1, D), h.randn(rng, B, H, 1, D)
        kern.cache_write(k_cache, k_new, lengths)
        kern.cache_write(v_cache, v_new, lengths)
        lengths += 1
        out = kern.attention_decode(q, k_cache, v_cache, lengths, starts)
        for b in range(B):
            lo, hi = starts[b], lengths[b]
            kb = np.ascontiguousarray(k_cache[b : b + 1, :, lo:hi])
            vb = np.ascontiguousarray(v_cache[b : b + 1, :, lo:hi])
            want, _ = N.attention_forward(q[b : b + 1], kb, vb, causal=True)
            h.assert_close(out[b : b + 1], want, what=f"step {hi}, sequence {b}")
    assert lengths.tolist() == [L] * B


def test_reads_nothing_outside_the_window(rng, h):
    B, H, L, D = 2, 3, 40, 6
    q, k, v = caches(rng, h, B, H, L, D, D)
    lengths, starts = np.array([30, 11]), np.array([4, 0])
    out = K.attention_decode(q, k, v, lengths, starts)
    for b in range(B):
        k[b, :, : starts[b]] = np.inf
        k[b, :, lengths[b] :] = np.nan
        v[b, :, : starts[b]] = np.nan
        v[b, :, lengths[b] :] = -np.inf
    assert np.array_equal(K.attention_decode(q, k, v, lengths, starts), out)


def test_huge_logits_and_max_in_a_later_block(backend, rng, h):
    B, H, L, D = 1, 2, 700, 8
    q, k, v = caches(rng, h, B, H, L, D, 3)
    k[:, :, 600] = q[:, :, 0] * 50  # the maximum in the third key block of 256
    q *= 1e3
    out = backend.attention_decode(q, k, v, np.array([L]))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[0, :, 0], v[0, :, 600], rtol=1e-5)


def test_nan_logit_gives_nan_row(backend, rng, h):
    q, k, v = caches(rng, h, 2, 1, 300, 4, 3)
    k[0, 0, 270, 1] = np.nan
    out = backend.attention_decode(q, k, v, np.array([300, 300]))
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()


def test_decode_does_not_write_its_inputs(rng, h):
    q, k, v = caches(rng, h, 2, 2, 9, 4, 4)
    for a in (q, k, v):
        a.flags.writeable = False  # read-only caches (mmap) are fine
    K.attention_decode(q, k, v, np.array([9, 3]), np.array([2, 0]))


# ---- cache_write ----------------------------------------------------------------


@pytest.mark.parametrize("T", [0, 1, 5])
def test_cache_write_matches_reference(backend, T, rng, h):
    B, H, L, D = 3, 2, 8, 5
    cache = h.randn(rng, B, H, L, D)
    want = cache.copy()
    new = h.randn(rng, B, H, T, D)
    positions = np.array([0, L - T, 1])
    backend.cache_write(cache, new, positions)
    for b in range(B):
        want[b, :, positions[b] : positions[b] + T] = new[b]
    assert np.array_equal(cache, want)
    assert backend.cache_write(cache, new, np.int64(2)) is None
    for b in range(B):
        want[b, :, 2 : 2 + T] = new[b]
    assert np.array_equal(cache, want)


def test_cache_write_from_a_view_of_itself(backend):
    flat = np.zeros(2 * 1 * 4 * 1, np.float32)
    cache, new = flat.reshape(2, 1, 4, 1), flat[:4].reshape(2, 1, 2, 1)  # new aliases cache's first rows
    flat[:] = np.arange(8)
    want = cache.copy()
    want[:, :, 1:3] = np.arange(4, dtype=np.float32).reshape(2, 1, 2, 1)
    backend.cache_write(cache, new, 1)
    assert np.array_equal(cache, want)


# ---- bad input: an exception, never a crash, the same from both back ends --------------------

GOOD = dict(q=np.zeros((2, 3, 1, 4), np.float32), k=np.zeros((2, 3, 6, 4), np.float32),
            v=np.zeros((2, 3, 6, 5), np.float32), lengths=np.array([6, 1]), starts=np.array([0, 0]))


def bad_decode_calls():
    g = GOOD
    yield "q float64", (g["q"].astype(np.float64), g["k"], g["v"], g["lengths"]), TypeError
    yield "k list", (g["q"], g["k"].tolist(), g["v"], g["lengths"]), TypeError
    yield "q two queries", (np.zeros((2, 3, 2, 4), np.float32), g["k"], g["v"], g["lengths"]), ValueError
    yield "q rank 3", (g["q"][0], g["k"], g["v"], g["lengths"]), ValueError
    yield "k other D", (g["q"], np.zeros((2, 3, 6, 3), np.float32), g["v"], g["lengths"]), ValueError
    yield "v other L", (g["q"], g["k"], np.zeros((2, 3, 5, 5), np.float32), g["lengths"]), ValueError
    yield "k other heads", (g["q"], np.zeros((2, 2, 6, 4), np.float32), g["v"], g["lengths"]), ValueError
    yield "k transposed", (g["q"], np.zeros((2, 3, 4, 6), np.float32).swapaxes(2, 3), g["v"], g["lengths"]), ValueError
    yield "empty cache", (g["q"], g["k"][:, :, :0], g["v"][:, :, :0], g["lengths"]), ValueError
    yield "lengths float", (g["q"], g["k"], g["v"], g["lengths"].astype(np.float64)), TypeError
    yield "lengths list", (g["q"], g["k"], g["v"], [6, 1]), TypeError
    yield "lengths bool", (g["q"], g["k"], g["v"], np.array([True, True])), TypeError
    yield "lengths shape", (g["q"], g["k"], g["v"], np.array([6, 1, 1])), ValueError
    yield "lengths 0", (g["q"], g["k"], g["v"], np.array([6, 0])), ValueError
    yield "lengths > Lmax", (g["q"], g["k"], g["v"], np.array([7, 1])), ValueError
    yield "lengths huge", (g["q"], g["k"], g["v"], np.array([2**40, 1])), ValueError
    yield "lengths negative", (g["q"], g["k"], g["v"], np.array([-(2**63), 1])), ValueError
    yield "starts = lengths", (g["q"], g["k"], g["v"], g["lengths"], np.array([0, 1])), ValueError
    yield "starts < 0", (g["q"], g["k"], g["v"], g["lengths"], np.array([-1, 0])), ValueError
    yield "starts int8", (g["q"], g["k"], g["v"], g["lengths"], np.array([0, 0], np.int8)), TypeError
    yield "starts rank 2", (g["q"], g["k"], g["v"], g["lengths"], np.zeros((2, 1), np.int64)), ValueError
    yield "scale inf", (g["q"], g["k"], g["v"], g["lengths"], None, float("inf")), ValueError
    yield "scale str", (g["q"], g["k"], g["v"], g["lengths"], None, "1"), ValueError


@pytest.mark.parametrize("name, args, error", list(bad_decode_calls()), ids=[c[0] for c in bad_decode_calls()])
def test_decode_bad_input(backend, name, args, error):
    with pytest.raises(error):
        backend.attention_decode(*args)


def bad_write_calls():
    cache, new = np.zeros((2, 3, 6, 4), np.float32), np.ones((2, 3, 2, 4), np.float32)
    ro = cache.copy()
    ro.flags.writeable = False
    yield "cache float64", (cache.astype(np.float64), new, 0), TypeError
    yield "new float16", (cache, new.astype(np.float16), 0), TypeError
    yield "cache read-only", (ro, new, 0), ValueError
    yield "cache strided", (np.zeros((2, 3, 12, 4), np.float32)[:, :, ::2], new, 0), ValueError
    yield "new other D", (cache, np.ones((2, 3, 2, 5), np.float32), 0), ValueError
    yield "new other B", (cache, np.ones((1, 3, 2, 4), np.float32), 0), ValueError
    yield "new rank 3", (cache, new[0], 0), ValueError
    yield "past the end", (cache, new, 5), ValueError
    yield "past the end one row", (cache, new, np.array([0, 5])), ValueError
    yield "negative", (cache, new, -1), ValueError
    yield "huge", (cache, new, 2**70), ValueError
    yield "positions float", (cache, new, 1.0), TypeError
    yield "positions bool", (cache, new, True), TypeError
    yield "positions shape", (cache, new, np.array([0, 0, 0])), ValueError
    yield "too long for the cache", (cache, np.ones((2, 3, 7, 4), np.float32), 0), ValueError


@pytest.mark.parametrize("name, args, error", list(bad_write_calls()), ids=[c[0] for c in bad_write_calls()])
def test_cache_write_bad_input_writes_nothing(backend, name, args, error):
    before = args[0].copy() if isinstance(args[0], np.ndarray) else None
    with pytest.raises(error):
        backend.cache_write(*args)
    if before is not None:
        assert np.array_equal(args[0], before)


# ---- hostile values: whatever lengths, starts and positions, both back ends agree or both refuse -----

ALLOWED = (TypeError, ValueError, IndexError)


def outcome(fn, *args):
    try:
        return fn(*args)
    except ALLOWED as err:
        return type(err)


@given(
    seed=st.integers(0, 2**32 - 1),
    B=st.integers(1, 3),
    L=st.integers(1, 12),
    lengths=st.lists(st.integers(-3, 15) | st.sampled_from([2**31, 2**62, -(2**63)]), min_size=1, max_size=4),
    starts=st.none() | st.lists(st.integers(-3, 15), min_size=1, max_size=4),
    dtype=st.sampled_from([np.int64, np.int64, np.int32, np.uint64, np.float64]),
)
def test_decode_hostile_lengths(seed, B, L, lengths, starts, dtype, h):
    rng = np.random.default_rng(seed)
    q, k, v = caches(rng, h, B, 2, L, 3, 4)
    lengths = np.array(lengths).astype(dtype) if dtype is not np.int32 else np.array(lengths).clip(-9, 99).astype(dtype)
    starts = None if starts is None else np.array(starts, dtype=np.int64)
    got, want = outcome(K.attention_decode, q, k, v, lengths, starts), outcome(N.attention_decode, q, k, v, lengths, starts)
    if isinstance(want, type):
        assert got is want
    else:
        h.assert_close(got, want, scale=float(np.abs(v).max()))


@given(
    B=st.integers(1, 3),
    L=st.integers(1, 8),
    T=st.integers(0, 9),
    positions=st.integers(-(2**63), 2**63 - 1) | st.integers(-2, 10) | st.lists(st.integers(-2, 10), min_size=1, max_size=4),
)
def test_cache_write_hostile_positions(B, L, T, positions):
    new = np.arange(B * 2 * T * 3, dtype=np.float32).reshape(B, 2, T, 3)
    if isinstance(positions, list):
        positions = np.array(positions, dtype=np.int64)
    caches_ = {name: np.zeros((B, 2, L, 3), np.float32) for name in ("compiled", "numpy")}
    got = outcome(K.cache_write, caches_["compiled"], new, positions)
    want = outcome(N.cache_write, caches_["numpy"], new, positions)
    assert got is want
    assert np.array_equal(caches_["compiled"], caches_["numpy"])
