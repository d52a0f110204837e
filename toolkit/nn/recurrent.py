"""Recurrent layers: a GRU over padded batches, and its bidirectional pair.

Readers trained from scratch on a few tens of thousands of questions (the
SQuAD readers of the literature: BiDAF, DrQA) encode passages with
bidirectional recurrent layers, whose order bias a self-attention encoder
has to learn from data. The step loop is numpy (one (B, H) x (H, 3H)
product per step); the input projections of all steps are one product
before the loop, and their gradients one product after it.

GRU (Cho et al. 2014), gates in the order z, r, n:

    z = sigmoid(x Wz + h Uz + bz)
    r = sigmoid(x Wr + h Ur + br)
    n = tanh(x Wn + r * (h Un) + bn)
    h' = (1 - z) * n + z * h

At padded steps (``key_padding_mask`` True) the state passes through
unchanged and the output is zero, so a sequence's outputs do not depend on
how much padding follows it, read in either direction: with padding at the
end, a reversed GRU starts from the zero state at each sequence's last
real step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toolkit.nn.layer_configs import MAX_DIM, nested, register_layer
from toolkit.nn.layers import Array, Backprop, Layer, as_rng, drawing_weights, f32, glorot_uniform, matmul_last


@register_layer
class GRU(Layer):
    """(B, T, input_dim) -> (B, T, hidden); ``reverse`` reads each sequence right to left."""

    bounds = {"input_dim": (1, MAX_DIM), "hidden": (1, MAX_DIM)}

    def __init__(self, input_dim: int, hidden: int, reverse: bool = False, seed: Any = None):
        super().__init__()
        self.input_dim, self.hidden, self.reverse = input_dim, hidden, reverse
        rng = as_rng(seed)
        self.add_param("w", glorot_uniform(rng, input_dim, 3 * hidden, (input_dim, 3 * hidden)))
        # Orthogonal recurrent weights per gate keep the state's scale over long sequences.
        self.add_param("u", np.concatenate([np.linalg.qr(rng.standard_normal((hidden, hidden)))[0]
                                            for _ in range(3)], axis=1) if drawing_weights() else
                       np.zeros((hidden, 3 * hidden), np.float32))
        self.add_param("b", np.zeros(3 * hidden))

    def forward(self, x: Array, train: bool = False, key_padding_mask: Array | None = None) -> tuple[Array, Backprop]:
        x = f32(x)
        if x.ndim != 3 or x.shape[2] != self.input_dim:
            raise ValueError(f"GRU expects (batch, steps, {self.input_dim}) inputs, got shape {x.shape}")
        B, T, H = x.shape[0], x.shape[1], self.hidden
        keep = np.ones((B, T), dtype=np.float32)
        if key_padding_mask is not None:
            if np.shape(key_padding_mask) != (B, T):
                raise ValueError(f"key_padding_mask must have shape {(B, T)}, got {np.shape(key_padding_mask)}")
            keep = (~np.asarray(key_padding_mask, dtype=bool)).astype(np.float32)
        w, u, b = self.params["w"], self.params["u"], self.params["b"]
        projected = matmul_last(x, w) + b  # (B, T, 3H): the input's part of every gate
        steps = range(T - 1, -1, -1) if self.reverse else range(T)
        h = np.zeros((B, H), dtype=np.float32)
        out = np.zeros((B, T, H), dtype=np.float32)
        saved = []
        for t in steps:
            hu = h @ u
            # Both gates in one call, as 0.5 + 0.5 tanh(x / 2) (the logistic function, without
            # overflow): the step loop is Python-bound at small batches, one question at a time.
            zr = np.tanh(0.5 * (projected[:, t, : 2 * H] + hu[:, : 2 * H]))
            zr *= 0.5
            zr += 0.5
            z, r = zr[:, :H], zr[:, H:]
            n = np.tanh(projected[:, t, 2 * H :] + r * hu[:, 2 * H :])
            m = keep[:, t, None]
            new = (1.0 - z) * n + z * h
            if train:
                saved.append((t, h, z, r, n, hu[:, 2 * H :], m))
            h = m * new + (1.0 - m) * h
            out[:, t] = m * new

        def backprop(dy: Array) -> Array:
            if not train:
                raise RuntimeError("GRU.forward(train=False) keeps nothing to backpropagate through")
            dy = f32(dy)
            dprojected = np.zeros_like(projected)
            du = np.zeros_like(u)
            dh = np.zeros((B, H), dtype=np.float32)
            for t, h_prev, z, r, n, hun, m in reversed(saved):
                dnew = m * (dh + dy[:, t])
                dh_prev = (1.0 - m) * dh + dnew * z
                dn = dnew * (1.0 - z) * (1.0 - n * n)
                dz = dnew * (h_prev - n) * z * (1.0 - z)
                dr = dn * hun * r * (1.0 - r)
                dhu = np.concatenate([dz, dr, dn * r], axis=1)
                dprojected[:, t] = np.concatenate([dz, dr, dn], axis=1)
                du += h_prev.T @ dhu
                dh = dh_prev + dhu @ u.T
            self.grads["u"] += du
            self.grads["w"] += x.reshape(-1, self.input_dim).T @ dprojected.reshape(-1, 3 * H)
            self.grads["b"] += dprojected.sum(axis=(0, 1))
            return matmul_last(dprojected, w.T)

        return out, backprop

    def get_config(self) -> dict:
        return {"input_dim": self.input_dim, "hidden": self.hidden, "reverse": self.reverse}

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        gates = 3 * args["hidden"]
        return {"w": (args["input_dim"], gates), "u": (args["hidden"], gates), "b": (gates,)}


@register_layer
class BiGRU(Layer):
    """A left-to-right and a right-to-left GRU over the same input, outputs joined: (B, T, 2 * hidden)."""

    bounds = GRU.bounds

    def __init__(self, input_dim: int, hidden: int, seed: Any = None):
        super().__init__()
        self.input_dim, self.hidden = input_dim, hidden
        rng = as_rng(seed)
        self.forward_gru = GRU(input_dim, hidden, seed=rng)
        self.backward_gru = GRU(input_dim, hidden, reverse=True, seed=rng)

    def children(self) -> list[Layer]:
        return [self.forward_gru, self.backward_gru]

    def forward(self, x: Array, train: bool = False, key_padding_mask: Array | None = None) -> tuple[Array, Backprop]:
        left, left_back = self.forward_gru.forward(x, train, key_padding_mask)
        right, right_back = self.backward_gru.forward(x, train, key_padding_mask)

        def backprop(dy: Array) -> Array:
            return left_back(dy[..., : self.hidden]) + right_back(dy[..., self.hidden :])

        return np.concatenate([left, right], axis=-1), backprop

    def get_config(self) -> dict:
        return {"input_dim": self.input_dim, "hidden": self.hidden}

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        return nested(GRU.param_shapes(args), GRU.param_shapes(args))
