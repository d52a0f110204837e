"""A decoder-only transformer language model in GPT-2's layout, with a key/value cache for decoding.

Token and learned position embeddings, pre-norm blocks (causal
self-attention on the attention kernel, GELU feed-forward), a final layer
norm and an output projection tied to the token embedding: GPT-2's
arrangement, so that GPT-2 checkpoints can be read into the same layers.

Training runs ``hidden(ids, train)`` + ``project_rows`` (or ``forward`` for
all logits). Decoding batches prompts of different lengths padded on the
*left*, so that every row's next token sits in the same column: ``start``
runs the prompts once and fills a :class:`KVCache`, then each ``step`` feeds
one token per row and costs one position, not the prefix. Left padding is
masked as keys, and each row's positions count from its first real token,
so a row's result does not depend on what it is batched with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit import kernels
from toolkit.nn.attention import MultiHeadAttention
from toolkit.nn.layer_configs import MAX_DIM, MAX_HEADS, MAX_LAYERS, MAX_LEN, MAX_VOCAB, check_size, nested, \
    register_layer
from toolkit.nn.layers import (Array, Backprop, Dense, Dropout, Embedding, Layer, LayerNorm, as_rng, drawing_weights,
                               f32, log_softmax)
from toolkit.nn.transformer import EncoderLayer


@dataclass
class KVCache:
    """Keys and values of every position fed so far, per layer, preallocated to the model's context.

    ``k[i]``/``v[i]``: (B, H, capacity, Dh); columns ``[0, length)`` are
    filled. ``starts[b]``: row b's first real column (its left padding
    before it is masked). ``qkv[i]``: block i's fused query/key/value
    weights, concatenated once per decoding rather than once per token.
    ``states``: the final states (B, T, dim) of the T columns the last
    start or step fed, which a continuous cache remembers.
    """

    k: list[Array]
    v: list[Array]
    starts: Array
    qkv: list[tuple[Array, Array]]
    length: int = 0
    states: Array | None = None

    @property
    def capacity(self) -> int:
        return self.k[0].shape[2] if self.k else 0

    def padding_mask(self, length: int) -> Array:
        """(B, length) bool: True at each row's left padding."""
        return np.arange(length)[None, :] < self.starts[:, None]

    def select(self, rows: Array) -> "KVCache":
        """The cache of batch rows ``rows`` only (finished rows leave the batch)."""
        take = lambda arrays: [np.ascontiguousarray(a[rows]) for a in arrays]  # noqa: E731
        return KVCache(take(self.k), take(self.v), self.starts[rows], self.qkv, self.length,
                       None if self.states is None else self.states[rows])


@register_layer
class DecoderLM(Layer):
    """GPT-2-style language model: ``vocab_size`` tokens, ``layers`` blocks of width ``dim``, ``max_len``
    positions. ``pad_id`` fills the left of short prompts (masked); ``eos_id`` ends a text."""

    bounds = {"vocab_size": (1, MAX_VOCAB), "dim": (1, MAX_DIM), "heads": (1, MAX_HEADS),
              "layers": (1, MAX_LAYERS), "ffn": (1, MAX_DIM), "max_len": (1, MAX_LEN)}

    def __init__(self, vocab_size: int, dim: int = 256, heads: int = 4, layers: int = 4, ffn: int = 1024,
                 dropout: float = 0.1, max_len: int = 256, pad_id: int = 0, eos_id: int = 3, seed: Any = None):
        super().__init__()
        self.vocab_size, self.dim, self.heads, self.n_layers = vocab_size, dim, heads, layers
        self.ffn, self.dropout, self.max_len, self.pad_id, self.eos_id = ffn, dropout, max_len, pad_id, eos_id
        rng = as_rng(seed)
        self.wte, self.wpe = Embedding(vocab_size, dim, seed=rng), Embedding(max_len, dim, seed=rng)
        self.blocks = [EncoderLayer(dim, heads, ffn, dropout, "gelu", rng, causal=True) for _ in range(layers)]
        self.ln_f = LayerNorm(dim)
        self.drop = Dropout(dropout, seed=rng)
        self._init_gpt2(rng)

    def _init_gpt2(self, rng: np.random.Generator) -> None:
        # GPT-2's initialisation: N(0, 0.02) weights, positions N(0, 0.01), and the projections that write
        # into the residual stream shrunk by sqrt(2 * layers) so that its variance does not grow with depth.
        if not drawing_weights():
            return
        self.wte.params["table"][...] = rng.normal(0.0, 0.02, self.wte.params["table"].shape)
        self.wpe.params["table"][...] = rng.normal(0.0, 0.01, self.wpe.params["table"].shape)
        residual = 0.02 / np.sqrt(2.0 * max(self.n_layers, 1))
        for block in self.blocks:
            for name in ("wq", "wk", "wv", "wo"):
                block.attn.params[name][...] = rng.normal(0.0, residual if name == "wo" else 0.02,
                                                          block.attn.params[name].shape)
            block.ff1.params["w"][...] = rng.normal(0.0, 0.02, block.ff1.params["w"].shape)
            block.ff2.params["w"][...] = rng.normal(0.0, residual, block.ff2.params["w"].shape)

    def children(self) -> list[Layer]:
        return [self.wte, self.wpe, *self.blocks, self.ln_f]

    def get_config(self) -> dict:
        return {"vocab_size": self.vocab_size, "dim": self.dim, "heads": self.heads, "layers": self.n_layers,
                "ffn": self.ffn, "dropout": self.dropout, "max_len": self.max_len, "pad_id": self.pad_id,
                "eos_id": self.eos_id}

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        for key in ("pad_id", "eos_id"):
            check_size(cls.__name__, key, args[key], 0, args["vocab_size"] - 1)
        dim, ffn = args["dim"], args["ffn"]
        block = nested(LayerNorm.param_shapes(args), MultiHeadAttention.param_shapes(args), LayerNorm.param_shapes(args),
                       Dense.param_shapes({"in_features": dim, "out_features": ffn}),
                       Dense.param_shapes({"in_features": ffn, "out_features": dim}))
        return nested({"table": (args["vocab_size"], dim)}, {"table": (args["max_len"], dim)},
                      *[block] * args["layers"], LayerNorm.param_shapes(args))

    # -- training ---------------------------------------------------------------

    def _embed(self, ids: Array, positions: Array, train: bool) -> tuple[Array, Backprop]:
        if positions.size and int(positions.max()) >= self.max_len:
            raise ValueError(f"position {int(positions.max())} is past the model's context of {self.max_len}")
        tokens, back_tokens = self.wte.forward(np.ascontiguousarray(ids, dtype=np.int64), train)
        where, back_where = self.wpe.forward(np.ascontiguousarray(positions, dtype=np.int64), train)
        x, back_drop = self.drop.forward(tokens + where, train)

        def backprop(dx: Array) -> None:
            dx = f32(back_drop(dx))
            back_tokens(dx)
            back_where(dx)

        return x, backprop

    def hidden(self, ids: Array, train: bool = False, starts: Array | None = None) -> tuple[Array, Backprop]:
        """Final states (B, T, dim) of ``ids`` (B, T) and backprop(dstates). ``starts`` (B,): each row's
        first real column, the columns before it being left padding (default: none)."""
        ids = np.asarray(ids)
        B, T = ids.shape
        starts = np.zeros(B, dtype=np.int64) if starts is None else np.asarray(starts, dtype=np.int64)
        columns = np.arange(T)[None, :]
        mask = columns < starts[:, None] if starts.any() else None
        x, back_embed = self._embed(ids, np.maximum(columns - starts[:, None], 0), train)
        backs = []
        for block in self.blocks:
            x, back = block.forward(x, train, mask)
            backs.append(back)
        h, back_norm = self.ln_f.forward(x, train)

        def backprop(dh: Array) -> None:
            dx = back_norm(f32(dh))
            for back in reversed(backs):
                dx = back(dx)
            back_embed(dx)

        return h, backprop

    def project_rows(self, h: Array) -> tuple[Array, Backprop]:
        """Logits (..., vocab_size) of states h (..., dim) through the tied token embedding."""
        table = self.wte.params["table"]
        rows = h.reshape(-1, self.dim)
        logits = rows @ table.T

        def backprop(dlogits: Array) -> Array:
            d2 = f32(dlogits).reshape(-1, self.vocab_size)
            self.wte.grads["table"] += d2.T @ rows
            return (d2 @ table).reshape(h.shape)

        return logits.reshape(*h.shape[:-1], self.vocab_size), backprop

    def forward(self, ids: Array, train: bool = False) -> tuple[Array, Backprop]:
        """Logits (B, T, vocab_size) of the token after each position of ``ids`` (B, T)."""
        h, back_hidden = self.hidden(ids, train)
        logits, back_project = self.project_rows(h)
        return logits, lambda dlogits: back_hidden(back_project(dlogits))

    # -- decoding ---------------------------------------------------------------

    def start(self, ids: Array, starts: Array, capacity: int | None = None) -> tuple[Array, KVCache]:
        """Run left-padded prompts ``ids`` (B, T) (row b's real tokens from column ``starts[b]``) once:
        the log-probabilities (B, vocab_size) of each row's next token, and the cache for :meth:`step`,
        room for ``capacity`` columns (default: the model's context)."""
        ids = np.asarray(ids, dtype=np.int64)
        B, T = ids.shape
        capacity = self.max_len if capacity is None else capacity
        if not 0 < T <= capacity:
            raise ValueError(f"a prompt of {T} columns does not fit a cache of {capacity}")
        shape = (B, self.heads, capacity, self.dim // self.heads)
        cache = KVCache([np.zeros(shape, np.float32) for _ in self.blocks],
                        [np.zeros(shape, np.float32) for _ in self.blocks], np.asarray(starts, dtype=np.int64),
                        [block.attn.fused_qkv() for block in self.blocks])
        return self._advance(ids, cache), cache

    def step(self, tokens: Array, cache: KVCache) -> Array:
        """Log-probabilities (B, vocab_size) of the token after ``tokens`` (B,), appended to the cache."""
        if cache.length >= cache.capacity:
            raise ValueError(f"the cache is full ({cache.capacity} columns)")
        return self._advance(np.asarray(tokens, dtype=np.int64)[:, None], cache)

    def _advance(self, ids: Array, cache: KVCache) -> Array:
        B, T = ids.shape
        first, end = cache.length, cache.length + T
        columns = np.arange(first, end)[None, :]
        x, _ = self._embed(ids, np.maximum(columns - cache.starts[:, None], 0), False)
        mask = cache.padding_mask(end) if cache.starts.any() and T > 1 else None
        # A step's products keep BLAS's threads, small as they are: on an idle machine that was faster at every
        # shape and batch measured (up to 1.37x at GPT-2 small, batch 8). Held to one thread they had been 4.7x
        # faster on a machine busy with other work, where each call waited for a core (docs/benchmarks.md,
        # "Where our decoding time goes"); an idle machine is the usual case.
        for i, block in enumerate(self.blocks):
            x = self._block_step(block, x, cache, i, first, end, mask)
        cache.length = end
        cache.states, _ = self.ln_f.forward(x)
        return log_softmax(cache.states[:, -1] @ self.wte.params["table"].T)

    @staticmethod
    def _block_step(block: EncoderLayer, x: Array, cache: KVCache, i: int, first: int, end: int,
                    mask: Array | None) -> Array:
        attn = block.attn
        h, _ = block.ln1.forward(x)
        q, k, v = attn.qkv(h, *cache.qkv[i])
        cache.k[i][:, :, first:end] = k
        cache.v[i][:, :, first:end] = v
        if x.shape[1] == 1:
            # One new token: the decode kernel reads the cache in place, up to each row's length.
            out = kernels.attention_decode(f32(q), cache.k[i], cache.v[i], np.full(len(x), end, dtype=np.int64),
                                           cache.starts)
        else:
            # Causal aligned at the end: new position j sees every earlier column and itself. The kernel reads
            # the cache's first columns in place.
            out, _ = kernels.attention_forward(q, cache.k[i][:, :, :end], cache.v[i][:, :, :end], mask, True,
                                               layout="bthd")
        a = attn._project(attn._merge(out), "o")
        # The residual add and ln2 in one pass, as in training (the same sums, bit for bit).
        h, rows, _ = block.ln2.add_forward(x.reshape(-1, x.shape[-1]), a.reshape(-1, a.shape[-1]))
        return (rows + block.ff2(block.ff1(h))).reshape(x.shape)

def train_step(model: DecoderLM, ids: Array) -> float:
    """Forward and backward on ``ids`` (B, T + 1): each of the first T columns predicts the next. The
    gradients of the mean token loss accumulate in the model; return that loss."""
    ids = np.asarray(ids, dtype=np.int64)
    h, back_hidden = model.hidden(ids[:, :-1], train=True)
    # The output projection and the softmax cross-entropy, forward and backward, in one kernel call: the
    # (tokens x vocabulary) logits, the largest matrix of the step, are never stored whole (a chunk of rows
    # at a time). Every target counts (an ignore_index no id can take); the table's gradient is added into
    # its accumulator in place.
    rows, table = h.reshape(-1, model.dim), model.wte.params["table"]
    loss, _, dh, _, _ = kernels.linear_cross_entropy_with_grad(rows, table, ids[:, 1:].reshape(-1),
                                                               ignore_index=-(2**63), dw_out=model.wte.grads["table"])
    back_hidden(dh.reshape(h.shape))
    return loss


def token_losses(model: DecoderLM, ids: Array) -> Array:
    """Negative log-likelihood (nats, float64) of each of ``ids[:, 1:]`` given what precedes it: (B, T)."""
    return scored_states(model, ids)[0]


def scored_states(model: DecoderLM, ids: Array) -> tuple[Array, Array]:
    """:func:`token_losses` of ``ids`` (B, T + 1), and the final states (B, T, dim) that predicted them."""
    ids = np.asarray(ids, dtype=np.int64)
    h, _ = model.hidden(ids[:, :-1])
    rows, table, targets = h.reshape(-1, model.dim), model.wte.params["table"], ids[:, 1:].reshape(-1)
    # Each row's log-sum-exp from the fused kernel (the logits in vocabulary blocks, never stored whole), less
    # its target's logit: twice as fast as the float64 log-softmax of the whole (tokens x vocabulary) matrix.
    _, lse = kernels.linear_cross_entropy(rows, table, targets, ignore_index=-(2**63))
    target_logits = np.einsum("nd,nd->n", rows.astype(np.float64), table[targets].astype(np.float64))
    return (lse.astype(np.float64) - target_logits).reshape(ids.shape[0], -1), h
