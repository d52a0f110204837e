"""Layers of toolkit.nn: every backward against finite differences, and their semantics."""

from __future__ import annotations

import numpy as np
import pytest

import toolkit.nn as nn


def layer_grad_check(layer, x, rng, h, extra_inputs=None, forward_kwargs=None, eps=3e-3, rtol=1e-2):
    """Finite-difference check of dx (when x is float) and every parameter gradient of ``layer``."""
    forward_kwargs = forward_kwargs or {}
    extra_inputs = extra_inputs or {}
    y, backprop = layer.forward(x, train=True, **{**forward_kwargs, **extra_inputs})
    R = rng.standard_normal(np.shape(y)).astype(np.float32)
    layer.zero_grad()
    dinputs = backprop(R)
    names = list(layer.params)

    def loss(**inputs):
        for n in names:
            layer.params[n][...] = inputs[n]
        fx = inputs.get("x", x)
        extras = {k: inputs[k] for k in extra_inputs}
        out, _ = layer.forward(fx, train=True, **{**forward_kwargs, **extras})
        return h.weighted_sum(out, R)

    inputs = {n: layer.params[n].copy() for n in names}
    grads = {n: layer.grads[n].copy() for n in names}
    if x.dtype == np.float32:
        inputs["x"] = x
        grads["x"] = dinputs[0] if isinstance(dinputs, tuple) else dinputs
    for i, (k, v) in enumerate(extra_inputs.items(), start=1):
        inputs[k] = v
        grads[k] = dinputs[i]
    h.check_grads(loss, inputs, grads, rng, eps=eps, rtol=rtol)
    for n in names:  # leave the layer as it was
        layer.params[n][...] = inputs[n]


def test_embedding_gradient(rng, h):
    layer = nn.Embedding(11, 6, seed=1)
    layer_grad_check(layer, rng.integers(0, 11, (3, 7)).astype(np.int32), rng, h)


def test_embedding_padding_row_is_zero_and_never_trained(rng):
    layer = nn.Embedding(11, 6, padding_idx=0, seed=1)
    assert not layer.params["table"][0].any() and layer.params["table"][1:].all()
    ids = rng.integers(0, 11, (3, 7)).astype(np.int32)
    ids[0, :3] = 0
    y, back = layer.forward(ids, train=True)
    assert not y[0, :3].any()
    back(np.ones_like(y))
    assert not layer.grads["table"][0].any()
    counts = np.bincount(ids.ravel(), minlength=11)
    np.testing.assert_array_equal(layer.grads["table"][1:, 0], counts[1:])


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("activation", [None, "relu"])
def test_conv1d_gradient(padding, activation, rng, h):
    layer = nn.Conv1D(5, 7, 3, padding=padding, activation=activation, seed=2)
    layer_grad_check(layer, h.randn(rng, 2, 9, 5), rng, h)


@pytest.mark.parametrize("separate_relu", [False, True])
def test_conv1d_relu_then_maxpool_uses_fused_kernel_with_same_result(separate_relu, rng, h):
    conv = nn.Conv1D(16, 16, 5, activation=None if separate_relu else "relu", seed=3)
    x = h.randn(rng, 3, 20, 16)
    fused = nn.Sequential([conv, nn.ReLU(), nn.GlobalMaxPool1D()] if separate_relu else [conv, nn.GlobalMaxPool1D()])
    y_fused, back_fused = fused.forward(x, train=True)
    y_plain, back_plain = nn.GlobalMaxPool1D().forward(np.maximum(conv.forward(x)[0], 0))
    h.assert_close(y_fused, y_plain.astype(np.float64), what="fused vs unfused output")
    # The fused path runs the fused kernel: its backward ignores steps other than the argmax.
    calls = []
    original = nn.Conv1D.forward_relu_maxpool
    nn.Conv1D.forward_relu_maxpool = lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    try:
        fused.forward(x)
    finally:
        nn.Conv1D.forward_relu_maxpool = original
    assert calls == [1]
    layer_grad_check(fused, x, rng, h)


def test_global_max_pool_gradient_goes_to_argmax(h):
    x = np.array([[[1.0, 5.0], [3.0, 2.0], [3.0, 4.0]]], dtype=np.float32)
    y, back = nn.GlobalMaxPool1D().forward(x)
    np.testing.assert_array_equal(y, [[3.0, 5.0]])
    dx = back(np.array([[10.0, 20.0]], dtype=np.float32))
    np.testing.assert_array_equal(dx, [[[0, 20], [10, 0], [0, 0]]])


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "gelu", "silu"])
def test_dense_gradient(activation, rng, h):
    layer = nn.Dense(6, 4, activation=activation, seed=4)
    # Biases well away from 0 keep pre-activations off ReLU's kink, so the
    # finite differences never straddle it; half the units on, half off.
    layer.params["b"][...] = [1.5, -1.5, 1.5, -1.5]
    layer_grad_check(layer, h.randn(rng, 3, 5, 6, scale=0.2), rng, h)


@pytest.mark.parametrize("cls", [nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.SiLU])
def test_activation_gradients(cls, rng, h):
    x = h.randn(rng, 4, 9)
    x[np.abs(x) < 0.05] = 0.5  # keep away from ReLU's kink
    layer_grad_check(cls(), x, rng, h)


def test_activation_values():
    x = np.array([-1000.0, -1.0, 0.0, 2.0, 1000.0], dtype=np.float32)
    np.testing.assert_allclose(nn.Sigmoid()(x), [0.0, 0.26894142, 0.5, 0.8807971, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(nn.ReLU()(x), [0, 0, 0, 2, 1000])
    np.testing.assert_allclose(nn.GELU()(np.array([1.0], np.float32)), [0.8411920], rtol=1e-5)
    # x * sigmoid(x), without overflow at the ends.
    np.testing.assert_allclose(nn.SiLU()(x), [0.0, -0.26894142, 0.0, 1.7615942, 1000.0], rtol=1e-6, atol=1e-30)


def test_layer_norm_gradient_and_statistics(rng, h):
    layer = nn.LayerNorm(8)
    layer.params["gamma"][...] = h.randn(rng, 8)
    layer.params["beta"][...] = h.randn(rng, 8)
    x = h.randn(rng, 3, 4, 8, scale=3.0) + 2.0
    layer_grad_check(layer, x, rng, h)
    z = nn.LayerNorm(8)(x)
    np.testing.assert_allclose(z.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(-1), 1.0, rtol=1e-3)


def test_layer_norm_of_a_residual_sum_and_its_gradient(rng, h):
    """add_forward gives LN(x + r) and x + r; its backprop, given the gradient reaching the sum from elsewhere
    (ds), gives the whole gradient of x and of r: checked on loss = <LN(x + r), R1> + <x + r, R2>."""
    layer = nn.LayerNorm(8)
    layer.params["gamma"][...] = h.randn(rng, 8)
    layer.params["beta"][...] = h.randn(rng, 8)
    x, r = h.randn(rng, 3, 4, 8, scale=3.0), h.randn(rng, 3, 4, 8)
    y, s, backprop = layer.add_forward(x, r, train=True)
    plain, _ = layer.forward(x + r)
    assert np.array_equal(s, x + r) and np.array_equal(y, plain)
    R1, R2 = h.randn(rng, 3, 4, 8), h.randn(rng, 3, 4, 8)
    layer.zero_grad()
    dsum = backprop(R1, R2)

    def loss(x, r, gamma):
        layer.params["gamma"][...] = gamma
        out, total, _ = layer.add_forward(x, r)
        return h.weighted_sum(out, R1) + h.weighted_sum(total, R2)

    h.check_grads(loss, {"x": x, "r": r, "gamma": layer.params["gamma"].copy()},
                  {"x": dsum, "r": dsum, "gamma": layer.grads["gamma"].copy()}, rng)


def test_positional_embedding_gradient_and_limit(rng, h):
    layer = nn.PositionalEmbedding(10, 4, seed=5)
    layer_grad_check(layer, h.randn(rng, 2, 6, 4), rng, h)
    with pytest.raises(ValueError, match="max_len"):
        layer(h.randn(rng, 1, 11, 4))


def test_sinusoidal_positions_values():
    table = nn.sinusoidal_positions(5, 6)
    assert table.shape == (5, 6) and table.dtype == np.float32
    np.testing.assert_allclose(table[0], [0, 1, 0, 1, 0, 1])
    np.testing.assert_allclose(table[3, 0], np.sin(3.0), rtol=1e-6)
    np.testing.assert_allclose(table[3, 3], np.cos(3.0 / 10000 ** (2 / 6)), rtol=1e-6)
    # MarianMT's layout: the same sines, then the same cosines.
    halves = nn.sinusoidal_positions(5, 6, halves=True)
    np.testing.assert_array_equal(halves, np.concatenate([table[:, 0::2], table[:, 1::2]], axis=1))


def test_dropout_masks_in_training_only(rng, h):
    layer = nn.Dropout(0.25, seed=6)
    x = np.ones((400, 50), dtype=np.float32)
    np.testing.assert_array_equal(layer(x), x)
    y, back = layer.forward(x, train=True)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    dx = back(np.full_like(x, 2.0))
    np.testing.assert_array_equal(dx != 0, kept)
    with pytest.raises(ValueError):
        nn.Dropout(1.0)


@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_gradient(causal, rng, h):
    layer = nn.MultiHeadAttention(8, 2, causal=causal, seed=7)
    mask = np.zeros((2, 5), dtype=bool)
    mask[1, 3:] = True
    layer_grad_check(layer, h.randn(rng, 2, 5, 8), rng, h, forward_kwargs={"key_padding_mask": mask})


def test_cross_attention_gradient(rng, h):
    layer = nn.MultiHeadAttention(8, 4, context_dim=6, seed=8)
    x, ctx = h.randn(rng, 2, 3, 8), h.randn(rng, 2, 7, 6)
    layer_grad_check(layer, x, rng, h, extra_inputs={"context": ctx})


def test_causal_attention_does_not_look_ahead(rng, h):
    layer = nn.MultiHeadAttention(8, 2, causal=True, seed=9)
    x = h.randn(rng, 1, 6, 8)
    y = layer(x)
    x2 = x.copy()
    x2[0, 4:] += 10.0
    np.testing.assert_allclose(layer(x2)[0, :4], y[0, :4], rtol=1e-5, atol=1e-6)
    assert not np.allclose(layer(x2)[0, 4:], y[0, 4:])


def test_key_padding_mask_ignores_padded_keys(rng, h):
    layer = nn.MultiHeadAttention(8, 2, seed=10)
    x = h.randn(rng, 1, 6, 8)
    mask = np.array([[False, False, False, False, True, True]])
    y = layer.forward(x, key_padding_mask=mask)[0]
    x2 = x.copy()
    x2[0, 4:] = 99.0  # padded positions: their keys and values must not matter to real queries
    np.testing.assert_allclose(layer.forward(x2, key_padding_mask=mask)[0][0, :4], y[0, :4], rtol=1e-5, atol=1e-6)


def test_residual_and_sequential_gradient(rng, h):
    model = nn.Sequential([
        nn.Dense(6, 6, activation="tanh", seed=11),
        nn.Residual(nn.Sequential([nn.LayerNorm(6), nn.Dense(6, 6, activation="gelu", seed=12)])),
        nn.Dense(6, 2, seed=13),
    ])
    layer_grad_check(model, h.randn(rng, 4, 6), rng, h)


def test_whole_text_cnn_gradient(rng, h):
    """The design's model, small: every parameter's gradient through the whole stack."""
    model = nn.Sequential([
        nn.Embedding(20, 16, seed=14),
        nn.Conv1D(16, 16, 5, activation="relu", seed=15),
        nn.GlobalMaxPool1D(),
        nn.Dense(16, 8, activation="relu", seed=16),
        nn.Dense(8, 1, seed=17),
    ])
    ids = rng.integers(0, 20, (3, 12)).astype(np.int64)
    out, back = model.forward(ids, train=True)
    y = np.array([1.0, 0.0, 1.0], dtype=np.float32)
    _, g = nn.binary_cross_entropy_with_logits(out, y)
    model.zero_grad()
    back(g)
    params = {name: p for name, p, _ in model.named_parameters()}
    grads = {name: gr.copy() for name, _, gr in model.named_parameters()}

    def loss(**inputs):
        for name, value in inputs.items():
            params[name][...] = value
        return nn.binary_cross_entropy_with_logits(model(ids), y)[0]

    h.check_grads(loss, {n: p.copy() for n, p in params.items()}, grads, rng, eps=1e-3, rtol=2e-2)


def test_config_round_trip_rebuilds_the_same_architecture():
    model = nn.Sequential([nn.Embedding(9, 4, padding_idx=0), nn.Conv1D(4, 5, 3, padding="same", activation="relu"),
                           nn.GlobalMaxPool1D(), nn.Residual(nn.Dense(5, 5)), nn.Dropout(0.1),
                           nn.MultiHeadAttention(8, 2, causal=True)])
    rebuilt = nn.layer_from_config(model.to_config())
    assert rebuilt.to_config() == model.to_config()
    assert [n for n, _, _ in rebuilt.named_parameters()] == [n for n, _, _ in model.named_parameters()]
    with pytest.raises(ValueError, match="unknown layer"):
        nn.layer_from_config({"class": "os.system", "config": {}})


# -- recurrent layers -------------------------------------------------------------

@pytest.mark.parametrize("reverse", [False, True])
def test_gru_gradient_with_padding(reverse, rng, h):
    layer = nn.GRU(5, 4, reverse=reverse, seed=11)
    mask = np.zeros((3, 6), dtype=bool)
    mask[1, 4:] = True
    mask[2, 1:] = True
    layer_grad_check(layer, h.randn(rng, 3, 6, 5), rng, h, forward_kwargs={"key_padding_mask": mask})


def test_bigru_gradient_and_shape(rng, h):
    layer = nn.BiGRU(4, 3, seed=12)
    x = h.randn(rng, 2, 5, 4)
    assert layer(x).shape == (2, 5, 6)
    layer_grad_check(layer.forward_gru, x, rng, h)
    mask = np.array([[False] * 5, [False, False, False, True, True]])
    y, backprop = layer.forward(x, train=True, key_padding_mask=mask)
    layer.zero_grad()
    dx = backprop(np.ones_like(y))
    assert dx.shape == x.shape and not dx[1, 3:].any()  # padded steps get no gradient


@pytest.mark.parametrize("reverse", [False, True])
def test_gru_outputs_do_not_depend_on_padding_or_what_it_holds(reverse, rng, h):
    layer = nn.GRU(4, 3, reverse=reverse, seed=13)
    x = h.randn(rng, 1, 4, 4)
    alone = layer(x)
    padded = np.concatenate([x, 50.0 * h.randn(rng, 1, 3, 4)], axis=1)
    mask = np.array([[False] * 4 + [True] * 3])
    y = layer.forward(padded, key_padding_mask=mask)[0]
    np.testing.assert_allclose(y[:, :4], alone, rtol=1e-5, atol=1e-6)
    assert not y[:, 4:].any()


def test_gru_direction_decides_which_steps_an_output_sees(rng, h):
    x = h.randn(rng, 1, 6, 4)
    changed = x.copy()
    changed[0, 3] += 5.0
    left, right = nn.GRU(4, 3, seed=14), nn.GRU(4, 3, reverse=True, seed=14)
    # Left to right: outputs before step 3 are unchanged; right to left: outputs after it are.
    np.testing.assert_array_equal(left(changed)[0, :3], left(x)[0, :3])
    assert not np.allclose(left(changed)[0, 3:], left(x)[0, 3:])
    np.testing.assert_array_equal(right(changed)[0, 4:], right(x)[0, 4:])
    assert not np.allclose(right(changed)[0, :4], right(x)[0, :4])


def test_gru_refuses_bad_shapes_and_round_trips_its_config(rng, h):
    layer = nn.BiGRU(4, 3, seed=15)
    with pytest.raises(ValueError, match=r"expects \(batch, steps, 4\)"):
        layer(h.randn(rng, 2, 5, 3))
    with pytest.raises(ValueError, match="key_padding_mask must have shape"):
        layer.forward(h.randn(rng, 2, 5, 4), key_padding_mask=np.zeros((2, 4), dtype=bool))
    rebuilt = nn.layer_from_config(layer.to_config())
    assert isinstance(rebuilt, nn.BiGRU) and rebuilt.backward_gru.reverse
    for (name, a, _), (other, b, _) in zip(layer.named_parameters(), rebuilt.named_parameters()):
        assert name == other and a.shape == b.shape


def test_dense_exact_rows_makes_a_row_independent_of_its_batch():
    rng = np.random.default_rng(0)
    layer = nn.Dense(64, 48, activation="relu", seed=0)
    x = rng.standard_normal((37, 64)).astype(np.float32)
    plain = layer(x)
    layer.exact_rows = True
    full = layer(x)
    assert full.dtype == np.float32 and np.allclose(full, plain, atol=1e-5)
    for size in (1, 4, 16):
        parts = np.concatenate([layer(x[i : i + size]) for i in range(0, len(x), size)])
        assert np.array_equal(parts, full), size
    # Training is not affected: the float32 product, as before.
    assert np.array_equal(layer.forward(x, train=True)[0], plain)
