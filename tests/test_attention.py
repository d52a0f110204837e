"""Scaled dot-product attention: forward, backward, masks, causal, numerics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import toolkit.kernels as K
import toolkit.numpy_kernels as N


def make_inputs(rng, h, B, H, Tq, Tk, D, Dv):
    return h.randn(rng, B, H, Tq, D), h.randn(rng, B, H, Tk, D), h.randn(rng, B, H, Tk, Dv)


def random_mask(rng, B, Tk, p=0.3):
    return rng.random((B, Tk)) < p


def visible(B, Tq, Tk, mask, causal):
    """(B, Tq, Tk) bool: which key each query may see."""
    vis = np.ones((B, Tq, Tk), bool)
    if mask is not None:
        vis &= ~mask[:, None, :]
    if causal:
        vis &= np.arange(Tk)[None, :] <= np.arange(Tq)[:, None] + (Tk - Tq)
    return vis


def term_sizes(q, k, v, dout, scale):
    """Sizes of the terms that out, lse, dq and dk are sums of.

    Through the softmax, dq and dk are differences of nearly equal products
    (dP - rowsum(P * dP)); float32 rounding is relative to those products,
    not to the difference, which may cancel to near zero.
    """
    D = q.shape[-1]
    scale = 1 / np.sqrt(D) if scale is None else scale
    # Sums of absolute products: a dot product's rounding is relative to these.
    dp = (np.abs(dout.astype(np.float64)) @ np.abs(np.swapaxes(v, -1, -2))).max()
    logits = abs(scale) * (np.abs(q.astype(np.float64)) @ np.abs(np.swapaxes(k, -1, -2))).max()
    return {
        "out": np.abs(v).max(),
        "lse": logits + np.log(k.shape[2]),
        "dq": abs(scale) * dp * np.abs(k).max(),
        "dk": abs(scale) * dp * np.abs(q).max(),
        "dv": None,
    }


def compare_all(q, k, v, mask, causal, scale, rng, h):
    """Forward and backward, compiled vs reference, on one set of inputs."""
    B, H, Tq, _ = q.shape
    out, lse = K.attention_forward(q, k, v, mask, causal, scale)
    out_ref, lse_ref = N.attention_forward(q, k, v, mask, causal, scale)
    assert out.shape == (B, H, Tq, v.shape[3]) and out.dtype == np.float32
    assert lse.shape == (B, H, Tq) and lse.dtype == np.float32
    dout = h.randn(rng, *out.shape)
    sizes = term_sizes(q, k, v, dout, scale)
    h.assert_close(out, out_ref, scale=sizes["out"], what="out")
    h.assert_close(lse, lse_ref, scale=sizes["lse"], what="lse")

    got = K.attention_backward(dout, q, k, v, out, lse, mask, causal, scale)
    want = N.attention_backward(dout, q, k, v, out_ref, lse_ref, mask, causal, scale)
    for name, g, w in zip(("dq", "dk", "dv"), got, want):
        assert g.dtype == np.float32
        h.assert_close(g, w, scale=sizes[name], what=name)


# (B, H, Tq, Tk, D, Dv, mask, causal, scale)
CASES = [
    pytest.param(1, 1, 1, 1, 1, 1, False, False, None, id="all-dims-1"),
    pytest.param(1, 2, 1, 9, 3, 5, False, True, None, id="one-query-causal-sees-all"),
    pytest.param(2, 3, 7, 7, 13, 13, True, False, None, id="mask"),
    pytest.param(2, 2, 9, 5, 7, 3, True, True, None, id="Tq>Tk-mask-causal"),
    pytest.param(2, 1, 5, 12, 17, 4, True, True, None, id="Tq<Tk-mask-causal"),
    pytest.param(3, 2, 16, 16, 16, 16, False, True, 0.3, id="causal-scale"),
    pytest.param(1, 1, 4, 6, 3, 2, False, False, 0.0, id="scale-zero"),
    # One past two 64-row causal query blocks and the 512-column key tile.
    pytest.param(1, 1, 129, 513, 3, 2, True, True, None, id="tile-edges"),
    # One past the 512-row query block and the 512-column key tile, odd widths.
    pytest.param(1, 1, 513, 513, 63, 65, False, False, None, id="tile-edges-full"),
    # Causal blocks end at their last row's diagonal: one past a 64-row block,
    # keys ahead of the queries (Tq < Tk) and behind them (Tq > Tk), odd D.
    pytest.param(1, 2, 65, 65, 33, 31, False, True, None, id="causal-block-edge"),
    pytest.param(2, 1, 65, 130, 7, 9, True, True, None, id="causal-block-edge-Tq<Tk"),
    pytest.param(1, 1, 130, 65, 9, 7, True, True, None, id="causal-block-edge-Tq>Tk"),
    # Tq - Tk = 130: the first two causal blocks see no key at all.
    pytest.param(1, 2, 200, 70, 5, 5, False, True, None, id="causal-blocks-that-see-nothing"),
    pytest.param(2, 2, 1, 1, 3, 3, True, True, None, id="T=1-causal"),
    # Several query tiles and several key tiles.
    pytest.param(1, 2, 600, 1100, 4, 3, False, False, None, id="long"),
    pytest.param(2, 1, 600, 1100, 5, 6, True, True, None, id="long-mask-causal"),
    pytest.param(1, 1, 1100, 600, 3, 3, False, True, None, id="long-Tq>Tk-causal"),
]


@pytest.mark.parametrize("B,H,Tq,Tk,D,Dv,use_mask,causal,scale", CASES)
def test_matches_reference(B, H, Tq, Tk, D, Dv, use_mask, causal, scale, rng, h):
    q, k, v = make_inputs(rng, h, B, H, Tq, Tk, D, Dv)
    mask = random_mask(rng, B, Tk) if use_mask else None
    compare_all(q, k, v, mask, causal, scale, rng, h)


@given(
    seed=st.integers(0, 2**32 - 1),
    B=st.integers(1, 2),
    H=st.integers(1, 2),
    Tq=st.integers(1, 9),
    Tk=st.integers(1, 9),
    D=st.integers(1, 8),
    Dv=st.integers(1, 8),
    use_mask=st.booleans(),
    causal=st.booleans(),
    scale=st.one_of(st.none(), st.floats(0.05, 2.0)),
)
def test_property_matches_reference(seed, B, H, Tq, Tk, D, Dv, use_mask, causal, scale, h):
    rng = np.random.default_rng(seed)
    q, k, v = make_inputs(rng, h, B, H, Tq, Tk, D, Dv)
    mask = random_mask(rng, B, Tk, p=0.4) if use_mask else None
    compare_all(q, k, v, mask, causal, scale, rng, h)


def test_int_mask_is_same_as_bool(backend, rng, h):
    q, k, v = make_inputs(rng, h, 2, 1, 3, 5, 4, 4)
    mask = random_mask(rng, 2, 5)
    out_b, lse_b = backend.attention_forward(q, k, v, mask)
    out_i, lse_i = backend.attention_forward(q, k, v, mask.astype(np.int32))
    assert np.array_equal(out_b, out_i) and np.array_equal(lse_b, lse_i)


@pytest.mark.parametrize("causal", [False, True])
def test_rows_that_see_no_key(backend, causal, rng, h):
    """Fully masked batch rows, and (causal, Tq > Tk) queries before the first key."""
    B, H, Tq, Tk, D, Dv = 3, 2, 7, 4, 5, 3
    q, k, v = make_inputs(rng, h, B, H, Tq, Tk, D, Dv)
    mask = random_mask(rng, B, Tk)
    mask[0, 0] = False  # at least one key seen in row 0, for contrast
    mask[1] = True
    out, lse = backend.attention_forward(q, k, v, mask, causal)
    blind = ~visible(B, Tq, Tk, mask, causal).any(axis=2)  # (B, Tq)
    assert blind[1].all() and not blind.all()
    blind4 = np.broadcast_to(blind[:, None, :], (B, H, Tq))
    assert (out[blind4] == 0).all(), "a query that sees no key must get zeros"
    assert (lse[blind4] == -np.inf).all()
    assert np.isfinite(out).all() and np.isfinite(lse[~blind4]).all()

    dout = h.randn(rng, *out.shape)
    dq, dk, dv = backend.attention_backward(dout, q, k, v, out, lse, mask, causal)
    for g in (dq, dk, dv):
        assert np.isfinite(g).all()
    assert (dq[blind4] == 0).all()
    unseen_key = np.broadcast_to(mask[:, None, :], (B, H, Tk))
    assert (dk[unseen_key] == 0).all() and (dv[unseen_key] == 0).all()
    assert (dk[1] == 0).all() and (dv[1] == 0).all()


def test_scale_zero_averages_visible_values(backend, rng, h):
    # With every logit 0 the softmax is uniform over what each query sees.
    B, Tq, Tk = 2, 5, 7
    q, k, v = make_inputs(rng, h, B, 1, Tq, Tk, 3, 4)
    mask = random_mask(rng, B, Tk)
    mask[:, -1] = False
    vis = visible(B, Tq, Tk, mask, True)[:, None]  # (B, 1, Tq, Tk)
    out, lse = backend.attention_forward(q, k, v, mask, True, 0.0)
    seen = vis.sum(axis=-1)
    want = np.where(seen[..., None] > 0, (vis @ v.astype(np.float64)) / np.maximum(seen, 1)[..., None], 0.0)
    h.assert_close(out, want, what="out")
    h.assert_close(lse, np.where(seen > 0, np.log(np.maximum(seen, 1)), -np.inf), what="lse")


def test_causal_last_query_sees_whole_cache(backend, rng, h):
    # Decoding one token against a key/value cache: causal must not hide anything.
    q, k, v = make_inputs(rng, h, 1, 2, 1, 10, 4, 3)
    assert np.array_equal(backend.attention_forward(q, k, v, None, True)[0], backend.attention_forward(q, k, v)[0])


def test_masked_keys_do_not_matter(backend, rng, h):
    q, k, v = make_inputs(rng, h, 2, 2, 4, 6, 3, 5)
    mask = np.zeros((2, 6), bool)
    mask[:, [1, 4]] = True
    out, lse = backend.attention_forward(q, k, v, mask)
    k2, v2 = k.copy(), v.copy()
    k2[:, :, [1, 4]] = 1e4
    v2[:, :, [1, 4]] = -1e4
    out2, lse2 = backend.attention_forward(q, k2, v2, mask)
    h.assert_close(out2, out)
    h.assert_close(lse2, lse)
    keep = [0, 2, 3, 5]
    out3, lse3 = backend.attention_forward(q, k[:, :, keep].copy(), v[:, :, keep].copy())
    h.assert_close(out3, out)
    h.assert_close(lse3, lse)


# ---- numerics ---------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_huge_logits_give_one_hot_softmax(backend, causal, rng, h):
    B, H, Tq, Tk, D, Dv = 1, 2, 5, 700, 8, 3  # 700 keys: the max may arrive in the second key tile
    q, k, v = make_inputs(rng, h, B, H, Tq, Tk, D, Dv)
    q *= 1e5  # logits of size ~1e5: exp overflows unless the max is subtracted
    out, lse = backend.attention_forward(q, k, v, None, causal)
    assert np.isfinite(out).all() and np.isfinite(lse).all()
    logits = (q.astype(np.float64) @ np.swapaxes(k, -1, -2).astype(np.float64)) / np.sqrt(D)
    logits = np.where(visible(B, Tq, Tk, None, causal)[:, None], logits, -np.inf)
    top = logits.argmax(axis=-1)
    assert np.abs(logits).max() > 1e4
    h.assert_close(out, np.take_along_axis(v, top[..., None], axis=2), what="out")
    h.assert_close(lse, logits.max(axis=-1), rtol=1e-5, what="lse")
    dout = h.randn(rng, *out.shape)
    dq, dk, dv = backend.attention_backward(dout, q, k, v, out, lse, None, causal)
    for g in (dq, dk, dv):
        assert np.isfinite(g).all()
    # One-hot softmax: all of dout goes to the chosen value rows, nothing to q or k.
    want_dv = np.zeros_like(v)
    for b in range(B):
        for hh in range(H):
            np.add.at(want_dv[b, hh], top[b, hh], dout[b, hh])
    h.assert_close(dv, want_dv, what="dv")
    sizes = term_sizes(q, k, v, dout, None)
    # Zero up to float32 rounding of terms that are themselves ~1e5.
    assert np.abs(dq).max() <= 1e-5 * sizes["dq"] and np.abs(dk).max() <= 1e-5 * sizes["dk"]


BAD_VALUES = [
    pytest.param("q", np.nan, id="q-nan"),
    pytest.param("k", np.nan, id="k-nan"),
    pytest.param("v", np.nan, id="v-nan"),
    pytest.param("q", np.inf, id="q-inf"),
    pytest.param("k", np.inf, id="k-inf"),
    pytest.param("v", np.inf, id="v-inf"),
]


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("where,value", BAD_VALUES)
def test_non_finite_input_is_not_silently_dropped(backend, where, value, rng, h):
    """A NaN/inf that reaches a query's logits or values must show in its output (or raise).

    What must not happen is the result of a query that sees no key: zeros and
    lse = -inf, which hides the bad input and zeroes its gradients.
    """
    B, H, Tq, Tk, D, Dv = 2, 2, 4, 6, 3, 3
    q, k, v = make_inputs(rng, h, B, H, Tq, Tk, D, Dv)
    # Logits through the bad key are +inf, not -inf (which would be a mask).
    q[..., 0] = np.abs(q[..., 0]) + 0.1
    k[..., 0] = np.abs(k[..., 0]) + 0.1
    clean_out, clean_lse = backend.attention_forward(q, k, v)
    arrays = {"q": q, "k": k, "v": v}
    spot = {"q": (1, 0, 2, 0), "k": (1, 0, 3, 0), "v": (1, 0, 3, 1)}[where]
    arrays[where][spot] = value
    try:
        out, lse = backend.attention_forward(q, k, v)
    except (ValueError, FloatingPointError):
        return
    # Affected (b, h, query, value-column) entries.
    hit = np.zeros(out.shape, bool)
    if where == "q":
        hit[1, 0, 2, :] = True
    elif where == "k":
        hit[1, 0, :, :] = True
    else:
        hit[1, 0, :, 1] = True
    n_finite = int(np.isfinite(out[hit]).sum())
    assert n_finite == 0, f"{n_finite} affected outputs are finite: {out[1, 0]}"
    h.assert_close(out[~hit], clean_out[~hit], what="unaffected outputs")
    rows = hit.any(axis=-1)
    if where != "v":
        bad_lse = lse[rows]
        assert not np.isfinite(bad_lse).any() and not (bad_lse == -np.inf).any(), (
            f"lse of affected queries is {bad_lse}: -inf claims they saw no key"
        )
        h.assert_close(lse[~rows], clean_lse[~rows], what="unaffected lse")
    else:
        h.assert_close(lse, clean_lse, what="lse (values do not enter it)")
    dq, dk, dv = backend.attention_backward(np.ones_like(out), q, k, v, out, lse)
    assert not np.isfinite(dq[1, 0]).all(), "the bad input vanished from the gradient"
    assert np.isfinite(dq[0]).all() and np.isfinite(dk[0]).all() and np.isfinite(dv[0]).all()


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(slice(0, 512), id="a-whole-key-tile"),
        pytest.param(slice(88, 600), id="across-key-tiles"),
        pytest.param(slice(3, 9), id="a-few"),
    ],
)
def test_minus_inf_logit_is_a_zero_weight(backend, keys, rng, h):
    """A logit of -inf is exp(-inf) = 0: that key gets no weight, wherever it sits.

    Only when a query sees nothing but -inf logits is its softmax undefined
    (0 / 0). Here every query also sees finite logits, so the result is the
    attention over the other keys, exactly as if the -inf keys were masked.
    """
    Tk = 600  # two key tiles of the compiled kernel
    q, k, v = make_inputs(rng, h, 1, 2, 3, Tk, 4, 3)
    q[..., 0] = np.abs(q[..., 0]) + 0.1
    k[:, :, keys, 0] = -np.inf  # logits of these keys: +q0 * -inf = -inf
    out, lse = backend.attention_forward(q, k, v)
    mask = np.zeros((1, Tk), bool)
    mask[:, keys] = True
    k_clean = k.copy()
    k_clean[:, :, keys, 0] = 0.0
    want_out, want_lse = backend.attention_forward(q, k_clean, v, mask)
    h.assert_close(out, want_out, what="out")
    h.assert_close(lse, want_lse, what="lse")


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_nan_in_masked_key_is_ignored(backend, rng, h):
    q, k, v = make_inputs(rng, h, 1, 1, 3, 5, 4, 2)
    mask = np.array([[False, False, True, False, False]])
    out, lse = backend.attention_forward(q, k, v, mask)
    # A masked key's logit is replaced, not added to: its NaN never reaches the softmax.
    k[0, 0, 2] = np.nan
    out2, lse2 = backend.attention_forward(q, k, v, mask)
    h.assert_close(out2, out)
    h.assert_close(lse2, lse)


# ---- finite-difference gradient checks ----------------------------------


@pytest.mark.parametrize(
    "B,H,Tq,Tk,D,Dv,use_mask,causal,scale",
    [
        pytest.param(2, 2, 4, 4, 3, 3, False, False, None, id="plain"),
        pytest.param(1, 2, 5, 5, 4, 2, False, True, None, id="causal"),
        pytest.param(2, 1, 4, 6, 3, 5, True, False, None, id="mask-Tq<Tk"),
        pytest.param(2, 2, 6, 4, 3, 2, True, True, None, id="mask-causal-Tq>Tk"),
        pytest.param(1, 1, 3, 7, 5, 4, True, True, 0.7, id="mask-causal-scale"),
    ],
)
def test_gradient_finite_differences(backend, B, H, Tq, Tk, D, Dv, use_mask, causal, scale, rng, h):
    q, k, v = make_inputs(rng, h, B, H, Tq, Tk, D, Dv)
    mask = None
    if use_mask:
        mask = random_mask(rng, B, Tk)
        mask[:, -1] = False
        if B > 1:
            mask[1] = True  # a fully masked row: its gradient is zero
    R = h.randn(rng, B, H, Tq, Dv)

    def loss(q, k, v):
        return h.weighted_sum(backend.attention_forward(q, k, v, mask, causal, scale)[0], R)

    out, lse = backend.attention_forward(q, k, v, mask, causal, scale)
    dq, dk, dv = backend.attention_backward(R, q, k, v, out, lse, mask, causal, scale)
    h.check_grads(loss, {"q": q, "k": k, "v": v}, {"q": dq, "k": dk, "v": dv}, rng, eps=3e-3)


# ---- layouts: (B, T, H, D) arrays read and written in place -----------------------------------------------------


def heads_of(x):
    """x (B, H, T, D) as a (B, H, T, D)-shaped view of a C-contiguous (B, T, H, D) array."""
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)


@pytest.mark.parametrize("B,H,Tq,Tk,D,Dv,use_mask,causal", [
    (2, 3, 7, 7, 5, 5, False, True),
    (2, 4, 130, 130, 16, 16, True, True),
    (1, 2, 9, 600, 8, 3, True, False),
    (3, 1, 600, 20, 4, 4, False, False),
])
def test_views_of_heads_give_the_same_bits_as_contiguous_arrays(B, H, Tq, Tk, D, Dv, use_mask, causal, rng, h):
    """q, k, v as views of one fused (B, T, 3, H, D) projection when self-attention, of (B, T, H, D) arrays
    otherwise; out and the gradients in both layouts. The products read the same numbers, so the bits agree."""
    mask = random_mask(rng, B, Tk) if use_mask else None
    if Tq == Tk and D == Dv:
        fused = h.randn(rng, B, Tq, 3, H, D).transpose(2, 0, 3, 1, 4)
        views = fused[0], fused[1], fused[2]
    else:
        views = tuple(heads_of(x) for x in make_inputs(rng, h, B, H, Tq, Tk, D, Dv))
    dense = tuple(np.ascontiguousarray(x) for x in views)
    out, lse = K.attention_forward(*dense, mask, causal)
    for layout in ("bhtd", "bthd"):
        got, got_lse = K.attention_forward(*views, mask, causal, layout=layout)
        assert np.array_equal(got, out) and np.array_equal(got_lse, lse)
        assert (got.transpose(0, 2, 1, 3) if layout == "bthd" else got).flags.c_contiguous
    dout = h.randn(rng, *out.shape)
    grads = K.attention_backward(dout, *dense, out, lse, mask, causal)
    for layout in ("bhtd", "bthd"):
        got = K.attention_backward(heads_of(dout), *views, heads_of(out), lse, mask, causal, layout=layout)
        for g, want in zip(got, grads):
            assert np.array_equal(g, want)
            assert (g.transpose(0, 2, 1, 3) if layout == "bthd" else g).flags.c_contiguous
    ref = N.attention_backward(heads_of(dout), *views, heads_of(out), lse, mask, causal, layout="bthd")
    for g, want in zip(ref, grads):
        assert g.transpose(0, 2, 1, 3).flags.c_contiguous
        np.testing.assert_allclose(g, want, rtol=1e-3, atol=1e-4)


def test_one_query_row_with_any_stride(rng, h):
    """A single time step's stride is never followed (a query of one position cut from a wider array)."""
    q, k, v = make_inputs(rng, h, 2, 3, 1, 9, 8, 8)
    odd = np.lib.stride_tricks.as_strided(q, shape=q.shape, strides=(*q.strides[:2], 0, 4))
    want, _ = K.attention_forward(q, k, v)
    for backend in (K, N):
        got, _ = backend.attention_forward(odd, k, v)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_keys_shared_by_every_head_through_a_zero_stride(rng, h):
    q, k, v = make_inputs(rng, h, 2, 4, 6, 9, 8, 8)
    k1, v1 = k[:, :1], v[:, :1]
    shared = np.broadcast_to(k1, k.shape), np.broadcast_to(v1, v.shape)
    repeated = np.repeat(k1, 4, axis=1), np.repeat(v1, 4, axis=1)
    for backend in (K, N):
        got, _ = backend.attention_forward(q, *shared)
        want, _ = backend.attention_forward(q, *repeated)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", [K, N], ids=["compiled", "reference"])
def test_layouts_that_cannot_be_read_in_place_are_refused(backend, rng, h):
    q, k, v = make_inputs(rng, h, 1, 2, 4, 4, 6, 6)
    out, lse = K.attention_forward(q, k, v)
    with pytest.raises(ValueError, match="non-negative strides"):
        backend.attention_forward(q[:, :, ::-1], k, v)
    with pytest.raises(ValueError, match="contiguous last axis"):
        backend.attention_forward(q, k[..., ::2].repeat(2, axis=-1)[..., ::2], v)
    with pytest.raises(ValueError, match="contiguous last axis"):
        backend.attention_backward(np.asfortranarray(out), q, k, v, out, lse)
    # One key broadcast over the time steps, and rows that overlap: BLAS cannot take such a leading dimension.
    with pytest.raises(ValueError, match="rows must not overlap"):
        backend.attention_forward(q, np.broadcast_to(k[:, :, :1], k.shape), v)
    overlapping = np.lib.stride_tricks.as_strided(v, shape=v.shape, strides=(*v.strides[:2], 4 * 3, 4))
    with pytest.raises(ValueError, match="rows must not overlap"):
        backend.attention_forward(q, k, overlapping)
    for layout in ("BTHD", None, "bhdt"):
        with pytest.raises(ValueError, match="layout"):
            backend.attention_forward(q, k, v, layout=layout)
        with pytest.raises(ValueError, match="layout"):
            backend.attention_backward(out, q, k, v, out, lse, layout=layout)
