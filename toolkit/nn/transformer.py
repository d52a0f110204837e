"""A pre-norm transformer encoder-decoder for sequence-to-sequence models (translation).

Training runs ``forward((src, tgt_in), train)`` (logits for every target
position) or, cheaper, ``hidden`` + ``project_rows`` on the positions that
carry a loss. Inference encodes once with :meth:`Seq2SeqTransformer.start`
and then feeds tokens to :meth:`Seq2SeqTransformer.step`, which keeps each
layer's self-attention keys/values and the projected encoder keys/values in
a :class:`DecoderCache`, so a new token costs one position, not the prefix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from toolkit import kernels
from toolkit.nn.attention import MultiHeadAttention
from toolkit.nn.layer_configs import (
    MAX_DIM,
    MAX_HEADS,
    MAX_LAYERS,
    MAX_LEN,
    MAX_POSITION_TABLE,
    MAX_VOCAB,
    check_size,
    nested,
    register_layer,
)
from toolkit.nn.layers import (
    Array,
    Backprop,
    Dense,
    Dropout,
    Embedding,
    Layer,
    LayerNorm,
    as_rng,
    drawing_weights,
    f32,
)
from toolkit.nn.positions import sinusoidal_positions


class EncoderLayer(Layer):
    """x + Dropout(SelfAttention(LN(x))), then + Dropout(FFN(LN(.))); with ``causal`` it is GPT-2's block
    (toolkit.nn.language_model)."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float, activation: str, rng: np.random.Generator,
                 causal: bool = False):
        super().__init__()
        self.ln1, self.attn = LayerNorm(dim), MultiHeadAttention(dim, heads, causal=causal, seed=rng)
        self.ln2, self.ff1 = LayerNorm(dim), Dense(dim, ffn, activation, seed=rng)
        self.ff2 = Dense(ffn, dim, seed=rng)
        self.drop = Dropout(dropout, seed=rng)

    def children(self) -> list[Layer]:
        return [self.ln1, self.attn, self.ln2, self.ff1, self.ff2]

    @staticmethod
    def param_shapes(args: dict) -> dict[str, tuple[int, ...]]:
        dim, ffn = args["dim"], args["ffn"]
        norm, attention = LayerNorm.param_shapes(args), MultiHeadAttention.param_shapes(args)
        return nested(norm, attention, norm, Dense.param_shapes({"in_features": dim, "out_features": ffn}),
                      Dense.param_shapes({"in_features": ffn, "out_features": dim}))

    def forward(self, x: Array, train: bool = False, mask: Array | None = None) -> tuple[Array, Backprop]:
        h, back_ln1 = self.ln1.forward(x, train)
        a, back_attn = self.attn.forward(h, train, key_padding_mask=mask)
        a, back_drop1 = self.drop.forward(a, train)
        y, back_ffn = _ffn(self, x, a, train)

        def backprop(dy: Array) -> Array:
            dx1 = back_ffn(dy)
            return back_ln1(back_attn(back_drop1(dx1)), dx1)

        return y, backprop


class DecoderLayer(Layer):
    """Causal self-attention, cross-attention on the encoder output, FFN; each pre-norm with a residual."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float, activation: str, rng: np.random.Generator):
        super().__init__()
        self.ln1, self.self_attn = LayerNorm(dim), MultiHeadAttention(dim, heads, causal=True, seed=rng)
        self.ln2, self.cross_attn = LayerNorm(dim), MultiHeadAttention(dim, heads, seed=rng)
        self.ln3, self.ff1 = LayerNorm(dim), Dense(dim, ffn, activation, seed=rng)
        self.ff2 = Dense(ffn, dim, seed=rng)
        self.drop = Dropout(dropout, seed=rng)

    def children(self) -> list[Layer]:
        return [self.ln1, self.self_attn, self.ln2, self.cross_attn, self.ln3, self.ff1, self.ff2]

    @staticmethod
    def param_shapes(args: dict) -> dict[str, tuple[int, ...]]:
        dim, ffn = args["dim"], args["ffn"]
        norm, attention = LayerNorm.param_shapes(args), MultiHeadAttention.param_shapes(args)
        return nested(norm, attention, norm, attention, norm,
                      Dense.param_shapes({"in_features": dim, "out_features": ffn}),
                      Dense.param_shapes({"in_features": ffn, "out_features": dim}))

    def forward(self, x: Array, train: bool = False, memory: Array | None = None,
                memory_mask: Array | None = None) -> tuple[Array, Backprop]:
        h, back_ln1 = self.ln1.forward(x, train)
        a, back_self = self.self_attn.forward(h, train)
        a, back_drop1 = self.drop.forward(a, train)
        h, x1, back_ln2 = self.ln2.add_forward(x, a, train)
        c, back_cross = self.cross_attn.forward(h, train, context=memory, key_padding_mask=memory_mask)
        c, back_drop2 = self.drop.forward(c, train)
        y, back_ffn = _ffn(self, x1, c, train, self.ln3)

        def backprop(dy: Array) -> tuple[Array, Array]:
            dx2 = back_ffn(dy)
            dh, dmemory = back_cross(back_drop2(dx2))
            dx1 = back_ln2(dh, dx2)
            return back_ln1(back_self(back_drop1(dx1)), dx1), dmemory

        return y, backprop


def _ffn(layer: Any, x: Array, residual: Array, train: bool, norm: LayerNorm | None = None
         ) -> tuple[Array, Backprop]:
    """s + Dropout(ff2(act(ff1(LN(s))))) with s = x + residual (the sum and its norm in one kernel pass), and
    its backprop, which gives the gradient of s (the identity path included).

    Runs on (B*T, dim) rows: numpy multiplies a 2-D matrix in one BLAS call,
    a 3-D stack by a matrix slice by slice, several times slower.
    """
    shape = x.shape
    h, s, back_ln = (norm or layer.ln2).add_forward(x.reshape(-1, shape[-1]), residual.reshape(-1, shape[-1]),
                                                    train)
    f, back_f1 = layer.ff1.forward(h, train)
    f, back_f2 = layer.ff2.forward(f, train)
    f, back_drop = layer.drop.forward(f, train)

    def backprop(dy: Array) -> Array:
        rows = dy.reshape(s.shape)
        return back_ln(back_f1(back_f2(back_drop(rows))), rows).reshape(shape)

    return (s + f).reshape(shape), backprop


def _heads(mha: MultiHeadAttention, x: Array, name: str) -> Array:
    """x projected by one of the attention's q/k/v weights and split into heads (B, H, T, Dh)."""
    return mha._split(mha._project(x, name))


@dataclass
class DecoderCache:
    """What incremental decoding keeps between steps, per decoder layer.

    ``self_k``/``self_v``: the keys and values of every target position fed
    so far (B, H, t, Dh); ``cross_k``/``cross_v``: the encoder output
    projected once for the cross-attention; ``length``: positions fed so far.
    ``beams``: consecutive rows that decode one source row (beam search), so
    hold the same cross-attention keys and values. ``order``: the rows the
    self-attention keys/values are still to be taken in (a pending
    :meth:`select`), applied by the next step as it appends its position.
    ``memory_lengths``: each row's unpadded source length when its padding
    is all at the end (then one new position reads the encoder output with
    the decode-step kernel), else None.
    """

    memory_mask: Array
    cross_k: list[Array]
    cross_v: list[Array]
    self_k: list[Array | None] = field(default_factory=list)
    self_v: list[Array | None] = field(default_factory=list)
    length: int = 0
    beams: int = 1
    order: Array | None = None
    memory_lengths: Array | None = None

    def select(self, rows: Array) -> "DecoderCache":
        """The cache of the batch rows ``rows`` (in that order, repeats allowed): beam reordering.

        The self-attention keys/values are not copied here but gathered by the
        next step, in the copy it makes anyway to append its position: a copy
        here too held a batch's cache twice at every step. The cross-attention
        arrays are copied only when the source rows change (rows finish):
        reordering the beams of one source row leaves them as they are, and
        they were the largest arrays copied at every step.
        """
        rows = np.asarray(rows, dtype=np.intp)
        order = rows if self.order is None else self.order[rows]
        sources = rows // self.beams
        if len(rows) == len(self.memory_mask) and np.array_equal(sources, np.arange(len(rows)) // self.beams):
            return replace(self, self_k=list(self.self_k), self_v=list(self.self_v), order=order)
        # Rows whose beams all come from one source row's keep its beam grouping; any other choice ends it.
        grouped = len(rows) % self.beams == 0 and bool(
            (sources.reshape(-1, self.beams) == sources[:: self.beams, None]).all())
        take = lambda arrays: [np.ascontiguousarray(a[rows]) for a in arrays]  # noqa: E731
        return DecoderCache(self.memory_mask[rows], take(self.cross_k), take(self.cross_v), list(self.self_k),
                            list(self.self_v), self.length, self.beams if grouped else 1, order,
                            None if self.memory_lengths is None else self.memory_lengths[rows])


def start_cache(decoder: list[Any], memory: Array, mask: Array, beams: int = 1) -> DecoderCache:
    """The cache of a decoder's layers (each with a ``cross_attn``) for the encoder output ``memory`` (B, Ts, dim)
    and its padding ``mask``, with ``beams`` rows per source row."""
    # Projected once per source row, then repeated for its beams: the attention kernel takes one row of keys per
    # query row.
    cross_k = [np.repeat(_heads(layer.cross_attn, memory, "k"), beams, axis=0) for layer in decoder]
    cross_v = [np.repeat(_heads(layer.cross_attn, memory, "v"), beams, axis=0) for layer in decoder]
    n = len(decoder)
    lengths = (~mask).sum(axis=1)
    # Padding only at the end of each row (every source ends with EOS, so none is empty).
    trailing = bool((lengths > 0).all() and (mask == (np.arange(mask.shape[1]) >= lengths[:, None])).all())
    return DecoderCache(np.repeat(mask, beams, axis=0), cross_k, cross_v, [None] * n, [None] * n, beams=beams,
                        memory_lengths=np.repeat(lengths, beams).astype(np.int64) if trailing else None)


def _appended(past: Array, new: Array, order: Array | None) -> Array:
    """``past`` (B, H, t, Dh) (its rows ``order``, if given: beams reordered) followed by ``new`` along the
    positions, written in one copy (a gather, then a concatenation, copied the past twice)."""
    t = past.shape[2]
    out = np.empty((len(past) if order is None else len(order), past.shape[1], t + new.shape[2], past.shape[3]),
                   dtype=past.dtype)
    if order is None:
        out[:, :, :t] = past
    else:
        np.take(past, order, axis=0, out=out[:, :, :t], mode="clip")  # "clip": unbuffered; the rows are valid
    out[:, :, t:] = new
    return out


def cross_attention(mha: MultiHeadAttention, h: Array, cache: DecoderCache, i: int) -> Array:
    """Decoder layer ``i``'s attention from its states ``h`` (B, t, dim) to the cached encoder output."""
    q = _heads(mha, h, "q")
    if q.shape[2] == 1 and cache.memory_lengths is not None:
        out = kernels.attention_decode(q, cache.cross_k[i], cache.cross_v[i], cache.memory_lengths)
    else:
        out, _ = kernels.attention_forward(q, cache.cross_k[i], cache.cross_v[i], cache.memory_mask, False)
    return mha._project(mha._merge(out), "o")


@register_layer
class Seq2SeqTransformer(Layer):
    """Encoder-decoder transformer with tied target embeddings and output projection.

    ``shared_vocab=True`` uses one embedding table for source, target and
    output (a joint subword vocabulary). Token embeddings are scaled by
    sqrt(dim) and added to fixed sinusoidal positions; both stacks end with a
    LayerNorm (pre-norm). Ids: ``pad_id`` pads batches (masked in the
    encoder, ignored by the loss), ``bos_id`` starts every target, ``eos_id``
    ends it. ``activation`` is the feed-forward blocks' ("relu" or "gelu").
    """

    #: Whether decoding must end with EOS at its last step (checkpoints of transformers may ask it; ours stop there).
    forced_eos = False
    bounds = {"src_vocab": (1, MAX_VOCAB), "tgt_vocab": (1, MAX_VOCAB), "dim": (1, MAX_DIM),
              "heads": (1, MAX_HEADS), "encoder_layers": (0, MAX_LAYERS), "decoder_layers": (0, MAX_LAYERS),
              "ffn": (1, MAX_DIM), "max_len": (1, MAX_LEN)}

    def __init__(self, src_vocab: int, tgt_vocab: int, dim: int = 256, heads: int = 4, encoder_layers: int = 3,
                 decoder_layers: int = 3, ffn: int = 1024, dropout: float = 0.1, max_len: int = 256,
                 shared_vocab: bool = False, pad_id: int = 0, bos_id: int = 2, eos_id: int = 3,
                 activation: str = "relu", seed: Any = None):
        super().__init__()
        if shared_vocab and src_vocab != tgt_vocab:
            raise ValueError(f"a shared vocabulary needs src_vocab == tgt_vocab, got {src_vocab} and {tgt_vocab}")
        self.src_vocab, self.tgt_vocab, self.dim, self.heads = src_vocab, tgt_vocab, dim, heads
        self.n_encoder, self.n_decoder, self.ffn, self.dropout = encoder_layers, decoder_layers, ffn, dropout
        self.max_len, self.shared_vocab = max_len, shared_vocab
        self.pad_id, self.bos_id, self.eos_id, self.activation = pad_id, bos_id, eos_id, activation
        rng = as_rng(seed)
        # Tied with the output projection: N(0, dim^-1/2) keeps logits O(1) at the start (drawn in this order,
        # so that a seed gives the models it gave).
        self.tgt_embed = Embedding(tgt_vocab, dim, seed=rng)
        if drawing_weights():
            self.tgt_embed.params["table"][...] = rng.normal(0.0, dim**-0.5, size=(tgt_vocab, dim))
        if shared_vocab:
            self.src_embed = self.tgt_embed
        else:
            self.src_embed = Embedding(src_vocab, dim, seed=rng)
            if drawing_weights():
                self.src_embed.params["table"][...] = rng.normal(0.0, dim**-0.5, size=(src_vocab, dim))
        self.encoder = [EncoderLayer(dim, heads, ffn, dropout, activation, rng) for _ in range(encoder_layers)]
        self.decoder = [DecoderLayer(dim, heads, ffn, dropout, activation, rng) for _ in range(decoder_layers)]
        self.encoder_norm, self.decoder_norm = LayerNorm(dim), LayerNorm(dim)
        self.embed_drop = Dropout(dropout, seed=rng)
        self.positions = sinusoidal_positions(max_len, dim)
        self.scale = np.float32(math.sqrt(dim))

    def children(self) -> list[Layer]:
        embeds = [self.tgt_embed] if self.shared_vocab else [self.tgt_embed, self.src_embed]
        return [*embeds, *self.encoder, *self.decoder, self.encoder_norm, self.decoder_norm]

    def get_config(self) -> dict:
        return {"src_vocab": self.src_vocab, "tgt_vocab": self.tgt_vocab, "dim": self.dim, "heads": self.heads,
                "encoder_layers": self.n_encoder, "decoder_layers": self.n_decoder, "ffn": self.ffn,
                "dropout": self.dropout, "max_len": self.max_len, "shared_vocab": self.shared_vocab,
                "pad_id": self.pad_id, "bos_id": self.bos_id, "eos_id": self.eos_id,
                "activation": self.activation}

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        if args["shared_vocab"] and args["src_vocab"] != args["tgt_vocab"]:
            raise ValueError(f"a shared vocabulary needs src_vocab == tgt_vocab, got {args['src_vocab']} and"
                             f" {args['tgt_vocab']}")
        for key in ("pad_id", "bos_id", "eos_id"):
            check_size(cls.__name__, key, args[key], 0, args["tgt_vocab"] - 1)
        # The sinusoidal table is built whole by the constructor, and no stored array backs its size.
        check_size(cls.__name__, "max_len * dim", args["max_len"] * args["dim"], 1, MAX_POSITION_TABLE)
        embeds = [Embedding.param_shapes({"vocab_size": args["tgt_vocab"], "dim": args["dim"], "padding_idx": None})]
        if not args["shared_vocab"]:
            embeds.append(Embedding.param_shapes({"vocab_size": args["src_vocab"], "dim": args["dim"],
                                                  "padding_idx": None}))
        norm = LayerNorm.param_shapes(args)
        return nested(*embeds, *[EncoderLayer.param_shapes(args)] * args["encoder_layers"],
                      *[DecoderLayer.param_shapes(args)] * args["decoder_layers"], norm, norm)

    # -- pieces ---------------------------------------------------------------

    def _embed(self, embed: Embedding, ids: Array, train: bool, offset: int = 0) -> tuple[Array, Backprop]:
        T = ids.shape[1]
        if offset + T > self.max_len:
            raise ValueError(f"sequence of {offset + T} tokens is longer than the model's max_len={self.max_len}")
        e, back_embed = embed.forward(np.ascontiguousarray(ids), train)
        x = e * self.scale
        x += self.positions[offset : offset + T]
        x, back_drop = self.embed_drop.forward(x, train)
        return x, lambda dy: back_embed(back_drop(dy) * self.scale)

    def encode(self, src: Array, train: bool = False) -> tuple[Array, Array, Backprop]:
        """Encoder output (B, Ts, dim), its padding mask (B, Ts) and backprop(dmemory)."""
        src = np.asarray(src)
        mask = src == self.pad_id
        x, back_embed = self._embed(self.src_embed, src, train)
        backs = []
        for layer in self.encoder:
            x, back = layer.forward(x, train, mask)
            backs.append(back)
        memory, back_norm = self.encoder_norm.forward(x, train)

        def backprop(dmemory: Array) -> None:
            dx = back_norm(dmemory)
            for back in reversed(backs):
                dx = back(dx)
            back_embed(dx)

        return memory, mask, backprop

    def hidden(self, src: Array, tgt_in: Array, train: bool = False) -> tuple[Array, Backprop]:
        """Final decoder states (B, Tt, dim) for teacher-forced ``tgt_in``, and backprop(dstates)."""
        memory, mask, back_encoder = self.encode(src, train)
        x, back_embed = self._embed(self.tgt_embed, np.asarray(tgt_in), train)
        backs = []
        for layer in self.decoder:
            x, back = layer.forward(x, train, memory, mask)
            backs.append(back)
        h, back_norm = self.decoder_norm.forward(x, train)

        def backprop(dh: Array) -> None:
            dx = back_norm(f32(dh))
            dmemory = np.zeros_like(memory)
            for back in reversed(backs):
                dx, dm = back(dx)
                dmemory += dm
            back_embed(dx)
            back_encoder(dmemory)

        return h, backprop

    def project_rows(self, h: Array) -> tuple[Array, Backprop]:
        """Logits (..., tgt_vocab) of decoder states h (..., dim) through the tied embedding table."""
        table = self.tgt_embed.params["table"]
        logits = h @ table.T

        def backprop(dlogits: Array) -> Array:
            d2 = f32(dlogits).reshape(-1, self.tgt_vocab)
            self.tgt_embed.grads["table"] += d2.T @ h.reshape(-1, self.dim)
            return d2.reshape(dlogits.shape) @ table

        return logits, backprop

    def forward(self, x: tuple[Array, Array], train: bool = False) -> tuple[Array, Backprop]:
        """(src (B, Ts), tgt_in (B, Tt)) ids -> logits (B, Tt, tgt_vocab); backprop(dlogits) -> None."""
        src, tgt_in = x
        h, back_hidden = self.hidden(src, tgt_in, train)
        logits, back_project = self.project_rows(h)
        return logits, lambda dlogits: back_hidden(back_project(dlogits))

    # -- incremental decoding -------------------------------------------------

    def start(self, src: Array, beams: int = 1) -> DecoderCache:
        """Encode ``src`` (B, Ts) and project its keys/values for every decoder layer, once; with ``beams``
        rows per source row (B * beams rows, each source row's ``beams`` in a row) for beam search."""
        memory, mask, _ = self.encode(src)
        return start_cache(self.decoder, memory, mask, beams)

    def step(self, tokens: Array, cache: DecoderCache) -> Array:
        """Logits (B, tgt_vocab) of the token after ``tokens`` (B, t), given the cache.

        The new positions' keys and values are appended to the cache; the
        result equals the full forward's last position (tested).
        """
        tokens = np.asarray(tokens)
        x, _ = self._embed(self.tgt_embed, tokens, False, offset=cache.length)
        for i, layer in enumerate(self.decoder):
            h, _ = layer.ln1.forward(x)
            # Each residual add and the next norm in one pass, as in training (the same sums, bit for bit).
            h, x, _ = layer.ln2.add_forward(x, self._cached_self_attention(layer.self_attn, h, cache, i))
            h, x, _ = layer.ln3.add_forward(x, cross_attention(layer.cross_attn, h, cache, i))
            x = x + layer.ff2(layer.ff1(h))
        cache.length += tokens.shape[1]
        cache.order = None
        h, _ = self.decoder_norm.forward(x[:, -1])
        return h @ self.tgt_embed.params["table"].T

    @staticmethod
    def _cached_self_attention(mha: MultiHeadAttention, h: Array, cache: DecoderCache, i: int) -> Array:
        k, v = _heads(mha, h, "k"), _heads(mha, h, "v")
        if cache.self_k[i] is not None:
            k, v = _appended(cache.self_k[i], k, cache.order), _appended(cache.self_v[i], v, cache.order)
        cache.self_k[i], cache.self_v[i] = k, v
        q = _heads(mha, h, "q")
        if q.shape[2] == 1:
            # One new position sees every key: the decode-step kernel, several times faster on so small a query.
            out = kernels.attention_decode(q, k, v, np.full(len(q), k.shape[2], dtype=np.int64))
        else:
            # Causal aligned at the end: new query j sees every cached key and the new ones up to itself.
            out, _ = kernels.attention_forward(q, k, v, None, True)
        return mha._project(mha._merge(out), "o")
