"""Multi-head attention on the attention kernel."""

from __future__ import annotations

from typing import Any

import numpy as np

from toolkit import kernels
from toolkit.nn.layer_configs import MAX_DIM, MAX_HEADS, check_size, register_layer
from toolkit.nn.layers import Array, Backprop, Layer, as_rng, f32, glorot_uniform, matmul_last


@register_layer
class MultiHeadAttention(Layer):
    """Self- or cross-attention with ``heads`` heads of size dim // heads.

    ``forward(x, train, context=None, key_padding_mask=None)``: queries come
    from x (B, Tq, dim); keys and values from ``context`` (B, Tk, context_dim)
    or, when it is None, from x itself. ``key_padding_mask`` (B, Tk) bool marks
    padding keys with True. ``causal=True`` lets each query see only keys up to
    its own position (aligned at the end, as the kernel does). Backprop returns
    dx for self-attention and (dx, dcontext) for cross-attention.
    """

    bounds = {"dim": (1, MAX_DIM), "heads": (1, MAX_HEADS)}

    def __init__(self, dim: int, heads: int, causal: bool = False, context_dim: int | None = None,
                 seed: Any = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads, self.causal = dim, heads, causal
        self.context_dim = context_dim or dim
        rng = as_rng(seed)
        for name, fan_in in (("q", dim), ("k", self.context_dim), ("v", self.context_dim), ("o", dim)):
            self.add_param("w" + name, glorot_uniform(rng, fan_in, dim, (fan_in, dim)))
            self.add_param("b" + name, np.zeros(dim))

    def _project(self, x: Array, name: str) -> Array:
        return matmul_last(x, self.params["w" + name]) + self.params["b" + name]

    def _project_back(self, x: Array, dy: Array, name: str) -> Array:
        """Accumulate the projection's gradients; return the gradient of its input."""
        w = self.params["w" + name]
        self.grads["w" + name] += x.reshape(-1, w.shape[0]).T @ dy.reshape(-1, w.shape[1])
        self.grads["b" + name] += dy.reshape(-1, w.shape[1]).sum(axis=0)
        return matmul_last(dy, w.T)

    def fused_qkv(self) -> tuple[Array, Array]:
        """[wq | wk | wv] (dim, 3 * dim) and its bias: self-attention's three projections as one product, one
        pass over x instead of three through a wider matrix, which BLAS runs faster (GPT-2's c_attn)."""
        p = self.params
        return (np.concatenate([p["wq"], p["wk"], p["wv"]], axis=1),
                np.concatenate([p["bq"], p["bk"], p["bv"]]))

    def qkv(self, x: Array, w_qkv: Array, b_qkv: Array) -> tuple[Array, Array, Array]:
        """Queries, keys and values (B, H, T, Dh) of x (B, T, dim) through :meth:`fused_qkv`'s weights: views
        of the one projection (B, T, 3 * dim), which the attention kernels read in place."""
        qkv = matmul_last(x, w_qkv)
        qkv += b_qkv
        B, T, _ = qkv.shape
        heads = qkv.reshape(B, T, 3, self.heads, self.dim // self.heads).transpose(2, 0, 3, 1, 4)
        return heads[0], heads[1], heads[2]

    def _qkv_back(self, x: Array, w_qkv: Array, dq: Array, dk: Array, dv: Array) -> Array:
        """Accumulate the three projections' gradients from one product; return the gradient of x."""
        d = self.dim
        rows = x.reshape(-1, d)
        # dq, dk, dv come in the "bthd" layout: merging their heads is free, and the concatenation is one copy.
        dqkv = np.concatenate([self._merge(dq), self._merge(dk), self._merge(dv)], axis=-1).reshape(-1, 3 * d)
        dw, db = rows.T @ dqkv, dqkv.sum(axis=0)
        for i, name in enumerate("qkv"):
            self.grads["w" + name] += dw[:, i * d:(i + 1) * d]
            self.grads["b" + name] += db[i * d:(i + 1) * d]
        return (dqkv @ w_qkv.T).reshape(x.shape)

    def _split(self, x: Array) -> Array:
        B, T, _ = x.shape
        return f32(x.reshape(B, T, self.heads, self.dim // self.heads).transpose(0, 2, 1, 3))

    def _merge(self, x: Array) -> Array:
        """(B, H, T, Dh) -> (B, T, H * Dh): a free reshape for the kernels' "bthd" layout, else a copy."""
        B, H, T, Dh = x.shape
        return x.transpose(0, 2, 1, 3).reshape(B, T, H * Dh)

    def forward(self, x: Array, train: bool = False, context: Array | None = None,
                key_padding_mask: Array | None = None) -> tuple[Any, Backprop]:
        x = f32(x)
        ctx = x if context is None else f32(context)
        if context is None:
            w_qkv, b_qkv = self.fused_qkv()
            q, k, v = self.qkv(x, w_qkv, b_qkv)
        else:
            q = self._split(self._project(x, "q"))
            k = self._split(self._project(ctx, "k"))
            v = self._split(self._project(ctx, "v"))
        out, lse = kernels.attention_forward(q, k, v, key_padding_mask, self.causal, layout="bthd")
        merged = self._merge(out)
        y = self._project(merged, "o")

        def backprop(dy: Array) -> Any:
            dmerged = self._project_back(merged, f32(dy), "o")
            B, T, _ = dmerged.shape
            dout = dmerged.reshape(B, T, self.heads, -1).transpose(0, 2, 1, 3)  # read in place
            dq, dk, dv = kernels.attention_backward(dout, q, k, v, out, lse, key_padding_mask, self.causal,
                                                    layout="bthd")
            if context is None:
                return self._qkv_back(x, w_qkv, dq, dk, dv)
            dx = self._project_back(x, self._merge(dq), "q")
            dctx = self._project_back(ctx, self._merge(dk), "k") + self._project_back(ctx, self._merge(dv), "v")
            return dx, dctx

        return y, backprop

    def get_config(self) -> dict:
        return {"dim": self.dim, "heads": self.heads, "causal": self.causal, "context_dim": self.context_dim}

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        dim, context = args["dim"], args.get("context_dim")
        if dim % args["heads"]:
            raise ValueError(f"dim {dim} is not divisible by heads {args['heads']}")
        if context is not None:
            check_size(cls.__name__, "context_dim", context, 1, MAX_DIM)
        shapes = {}
        for name, fan_in in (("q", dim), ("k", context or dim), ("v", context or dim), ("o", dim)):
            shapes["w" + name], shapes["b" + name] = (fan_in, dim), (dim,)
        return shapes
