"""Position information for sequence models: learned position vectors, and the fixed sinusoidal table."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from toolkit.nn.layer_configs import MAX_DIM, MAX_LEN, register_layer
from toolkit.nn.layers import Array, Backprop, Layer, as_rng, drawing_weights


@register_layer
class PositionalEmbedding(Layer):
    """Adds a learned position vector to each step of (B, T, dim); T <= max_len."""

    bounds = {"max_len": (1, MAX_LEN), "dim": (1, MAX_DIM)}

    def __init__(self, max_len: int, dim: int, seed: Any = None):
        super().__init__()
        self.max_len, self.dim = max_len, dim
        self.add_param("table", as_rng(seed).normal(0.0, 0.02, size=(max_len, dim)) if drawing_weights() else
                       np.zeros((max_len, dim), np.float32))

    def forward(self, x: Array, train: bool = False, offset: int = 0) -> tuple[Array, Backprop]:
        T = x.shape[1]
        if offset + T > self.max_len:
            raise ValueError(f"sequence of {offset + T} steps is longer than max_len={self.max_len}")
        y = x + self.params["table"][offset : offset + T]

        def backprop(dy: Array) -> Array:
            self.grads["table"][offset : offset + T] += dy.sum(axis=0)
            return dy

        return y, backprop

    def get_config(self) -> dict:
        return {"max_len": self.max_len, "dim": self.dim}

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        return {"table": (args["max_len"], args["dim"])}


def sinusoidal_positions(length: int, dim: int, halves: bool = False) -> Array:
    """The fixed sine/cosine position encodings of "Attention is all you need", (length, dim): sines and cosines
    interleaved, or with ``halves`` every sine before every cosine (MarianMT's layout)."""
    pos = np.arange(length)[:, None]
    rates = np.exp(-math.log(10000.0) * (np.arange(0, dim, 2) / dim))
    sines, cosines = np.sin(pos * rates), np.cos(pos * rates[: dim // 2])
    if halves:
        return np.concatenate([sines, cosines], axis=1).astype(np.float32)
    table = np.zeros((length, dim))
    table[:, 0::2], table[:, 1::2] = sines, cosines
    return table.astype(np.float32)
