"""The neural span reader: question-passage attention with start and end pointers, on toolkit.nn.

Passage and question words are embedded from three sources: a learned
word vector (lower-cased vocabulary), the mean of hashed character n-gram
vectors (so unseen words and spelling variants still mean something), and,
for the passage, lexical-match features (the word appears in the question:
as is, lower-cased, or as the same stem; its frequency; capitalisation;
digits; nearness to a question word). No pre-trained vectors exist offline,
so these features carry much of what embeddings otherwise would; the word
vectors can start from PPMI + SVD vectors of the training text
(toolkit_plugins.qa.wordvectors, the ``word_vectors`` training option).

A shared encoder (convolution, then self-attention; or with ``encoder="gru"``
a bidirectional GRU; each residual with layer norm) reads both; the passage
then attends to the question (the attention kernel, question padding
masked), the three views [p, a, p*a] are fused, two self-attention +
feed-forward blocks (or two bidirectional GRUs) model the passage, and two
linear heads give start and end logits over the passage tokens.
"""

from __future__ import annotations

import functools
import zlib
from typing import Any, NamedTuple

import numpy as np

from toolkit_plugins.qa.common import ENCODERS
from toolkit_plugins.qa.passages import STOPWORDS, Token
from toolkit.nn import (
    BiGRU,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    Layer,
    LayerNorm,
    MultiHeadAttention,
    PositionalEmbedding,
)
from toolkit.nn.layer_configs import MAX_DIM, MAX_HEADS, MAX_LEN, MAX_VOCAB, nested, register_layer
from toolkit.nn.layers import f32

FEATURES = 8
CHAR_SLOTS = 8  # one whole-word hash + up to seven character trigrams
PAD, UNKNOWN = 0, 1
# Added to the logits of padding positions so that softmax gives them no weight.
MASKED = np.float32(-1e4)


class ReaderBatch(NamedTuple):
    p_words: np.ndarray  # (B, T) int64
    p_chars: np.ndarray  # (B, T, CHAR_SLOTS) int64
    p_feats: np.ndarray  # (B, T, FEATURES) float32
    p_pad: np.ndarray  # (B, T) bool, True = padding
    q_words: np.ndarray  # (B, Q)
    q_chars: np.ndarray  # (B, Q, CHAR_SLOTS)
    q_feats: np.ndarray  # (B, Q, FEATURES)
    q_pad: np.ndarray  # (B, Q)


@functools.lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """A crude English stem (plural and verb endings off), for the "same stem as a question word" feature."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


class Featurizer:
    """Turns token lists into the id and feature arrays of a :class:`ReaderBatch`."""

    def __init__(self, vocab: list[str], char_buckets: int) -> None:
        self.vocab = vocab
        self.index = {word: i for i, word in enumerate(vocab)}
        self.char_buckets = char_buckets
        self._cache: dict[str, tuple[int, tuple[int, ...]]] = {}

    def _ids(self, word: str) -> tuple[int, tuple[int, ...]]:
        found = self._cache.get(word)
        if found is None:
            lower = word.lower()
            marked = f"<{lower}>"
            grams = [marked[i : i + 3] for i in range(len(marked) - 2)]
            if len(grams) > CHAR_SLOTS - 1:
                grams = grams[:3] + grams[-(CHAR_SLOTS - 4) :]
            hashed = tuple(1 + zlib.crc32(g.encode("utf-8")) % (self.char_buckets - 1) for g in [marked, *grams])
            found = (self.index.get(lower, UNKNOWN), hashed)
            if len(self._cache) < 500_000:
                self._cache[word] = found
        return found

    def batch(self, pairs: list[tuple[list[Token], list[Token]]]) -> ReaderBatch:
        """Arrays for (question tokens, passage tokens) pairs, padded to the longest of each."""
        B = len(pairs)
        T = max(len(p) for _, p in pairs)
        Q = max(len(q) for q, _ in pairs)
        out = ReaderBatch(
            np.zeros((B, T), np.int64), np.zeros((B, T, CHAR_SLOTS), np.int64), np.zeros((B, T, FEATURES), np.float32),
            np.ones((B, T), bool), np.zeros((B, Q), np.int64), np.zeros((B, Q, CHAR_SLOTS), np.int64),
            np.zeros((B, Q, FEATURES), np.float32), np.ones((B, Q), bool),
        )
        for b, (question, passage) in enumerate(pairs):
            q_text = [t.text for t in question]
            p_text = [t.text for t in passage]
            q_exact, q_lower = set(q_text), {w.lower() for w in q_text}
            q_stems = {stem(w) for w in q_lower if w not in STOPWORDS}
            p_lower = [w.lower() for w in p_text]
            counts: dict[str, int] = {}
            for w in p_lower:
                counts[w] = counts.get(w, 0) + 1
            p_set = set(p_lower)
            matched = np.array([w in q_lower and w not in STOPWORDS for w in p_lower], dtype=np.float32)
            # A question word within three tokens either side.
            near = np.convolve(matched, np.ones(7, np.float32), mode="same") > 0
            for i, word in enumerate(p_text):
                lower = p_lower[i]
                out.p_words[b, i], hashed = self._ids(word)
                out.p_chars[b, i, : len(hashed)] = hashed
                out.p_feats[b, i] = (
                    word in q_exact, lower in q_lower, stem(lower) in q_stems, counts[lower] / len(p_text),
                    word[:1].isupper(), any(c.isdigit() for c in word), lower in STOPWORDS, near[i],
                )
            out.p_pad[b, : len(p_text)] = False
            for i, word in enumerate(q_text):
                lower = q_text[i].lower()
                out.q_words[b, i], hashed = self._ids(word)
                out.q_chars[b, i, : len(hashed)] = hashed
                out.q_feats[b, i] = (0, lower in p_set, 0, 0, word[:1].isupper(), any(c.isdigit() for c in word),
                                     lower in STOPWORDS, 0)
            out.q_pad[b, : len(q_text)] = False
        return out


def _concat_back(parts: list[int], dy: np.ndarray) -> list[np.ndarray]:
    """The gradient of a concatenation along the last axis, split back into its parts."""
    return np.split(dy, np.cumsum(parts)[:-1], axis=-1)


@register_layer
class SpanReader(Layer):
    """Start and end logits (B, T) over the passage tokens of a :class:`ReaderBatch`."""

    # char_buckets from 2: word hashes fall in buckets 1 .. char_buckets - 1.
    bounds = {"vocab_size": (1, MAX_VOCAB), "char_buckets": (2, MAX_VOCAB), "dim": (1, MAX_DIM),
              "heads": (1, MAX_HEADS), "word_dim": (1, MAX_DIM), "char_dim": (1, MAX_DIM), "max_len": (1, MAX_LEN),
              "max_question": (1, MAX_LEN)}

    def __init__(self, vocab_size: int, char_buckets: int, dim: int = 96, heads: int = 4, word_dim: int = 64,
                 char_dim: int = 32, max_len: int = 200, max_question: int = 64, dropout: float = 0.1,
                 encoder: str = "attention", seed: Any = None) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, not {encoder!r}")
        if encoder == "gru" and dim % 2:
            raise ValueError(f"the gru encoder needs an even dim (two directions of dim / 2), not {dim}")
        self.config = {"vocab_size": vocab_size, "char_buckets": char_buckets, "dim": dim, "heads": heads,
                       "word_dim": word_dim, "char_dim": char_dim, "max_len": max_len,
                       "max_question": max_question, "dropout": dropout}
        if encoder != "attention":  # files written before the option keep their config
            self.config["encoder"] = encoder
        self.encoder = encoder
        rng = np.random.default_rng(seed)
        d = dim
        self.words = Embedding(vocab_size, word_dim, padding_idx=PAD, seed=rng)
        self.chars = Embedding(char_buckets, char_dim, padding_idx=PAD, seed=rng)
        self.project = Dense(word_dim + char_dim + FEATURES, d, seed=rng)
        self.p_position = PositionalEmbedding(max_len, d, seed=rng)
        self.q_position = PositionalEmbedding(max_question, d, seed=rng)
        if encoder == "attention":
            self.conv = Conv1D(d, d, 5, padding="same", activation="relu", seed=rng)
            self.conv_norm = LayerNorm(d)
            self.self_attention = MultiHeadAttention(d, heads, seed=rng)
            self.attention_norm = LayerNorm(d)
            self.encoder_layers = [self.conv, self.conv_norm, self.self_attention, self.attention_norm]
        else:
            self.gru = BiGRU(d, d // 2, seed=rng)
            self.gru_norm = LayerNorm(d)
            self.encoder_layers = [self.gru, self.gru_norm]
        self.cross = MultiHeadAttention(d, heads, seed=rng)
        self.fuse = Dense(3 * d, d, activation="relu", seed=rng)
        self.fuse_norm = LayerNorm(d)
        if encoder == "attention":
            self.blocks = [
                (MultiHeadAttention(d, heads, seed=rng), LayerNorm(d), Dense(d, 2 * d, activation="relu", seed=rng),
                 Dense(2 * d, d, seed=rng), LayerNorm(d))
                for _ in range(2)
            ]
        else:
            self.blocks = [(BiGRU(d, d // 2, seed=rng), LayerNorm(d)) for _ in range(2)]
        self.start = Dense(2 * d, 1, seed=rng)
        self.end = Dense(2 * d, 1, seed=rng)
        self.drop = Dropout(dropout, seed=rng)

    def children(self) -> list[Layer]:
        return [self.words, self.chars, self.project, self.p_position, self.q_position, *self.encoder_layers,
                self.cross, self.fuse, self.fuse_norm, *(layer for block in self.blocks for layer in block),
                self.start, self.end]

    def get_config(self) -> dict:
        return dict(self.config)

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        d, heads, encoder = args["dim"], args["heads"], args["encoder"]
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, not {encoder!r}")
        if encoder == "gru" and d % 2:
            raise ValueError(f"the gru encoder needs an even dim (two directions of dim / 2), not {d}")

        def dense(n_in: int, n_out: int) -> dict:
            return Dense.param_shapes({"in_features": n_in, "out_features": n_out})

        norm = LayerNorm.param_shapes({"dim": d})
        attention = MultiHeadAttention.param_shapes({"dim": d, "heads": heads})
        gru = BiGRU.param_shapes({"input_dim": d, "hidden": d // 2})
        embeds = [Embedding.param_shapes({"vocab_size": args["vocab_size"], "dim": args["word_dim"],
                                          "padding_idx": PAD}),
                  Embedding.param_shapes({"vocab_size": args["char_buckets"], "dim": args["char_dim"],
                                          "padding_idx": PAD}),
                  dense(args["word_dim"] + args["char_dim"] + FEATURES, d),
                  PositionalEmbedding.param_shapes({"max_len": args["max_len"], "dim": d}),
                  PositionalEmbedding.param_shapes({"max_len": args["max_question"], "dim": d})]
        if encoder == "attention":
            conv = Conv1D.param_shapes({"in_channels": d, "filters": d, "width": 5, "padding": "same"})
            encoding = [conv, norm, attention, norm]
            blocks = [attention, norm, dense(d, 2 * d), dense(2 * d, d), norm] * 2
        else:
            encoding = [gru, norm]
            blocks = [gru, norm] * 2
        return nested(*embeds, *encoding, attention, dense(3 * d, d), norm, *blocks, dense(2 * d, 1), dense(2 * d, 1))

    # -- pieces --------------------------------------------------------------

    def _embed(self, words, chars, feats, pad, position, train):
        keep = (~pad)[..., None].astype(np.float32)
        w, back_w = self.words.forward(words, train)
        c, back_c = self.chars.forward(chars, train)
        count = np.maximum((chars > 0).sum(-1, keepdims=True), 1).astype(np.float32)
        c_mean = c.sum(axis=2) / count
        x, back_x = self.project.forward(np.concatenate([w, c_mean, feats], axis=-1), train)
        x, back_pos = position.forward(x, train)
        x, back_drop = self.drop.forward(x * keep, train)

        def backprop(dy):
            dx = back_x(back_pos(back_drop(dy) * keep))
            dw, dc, _ = _concat_back([w.shape[-1], c_mean.shape[-1], feats.shape[-1]], dx)
            back_w(dw)
            back_c(np.broadcast_to((dc / count)[:, :, None, :], c.shape))

        return x, backprop

    def _residual(self, x, fn, norm, train):
        h, back_h = fn(x)
        h, back_drop = self.drop.forward(h, train)
        y, back_norm = norm.forward(x + h, train)

        def backprop(dy):
            d = back_norm(dy)
            return d + back_h(back_drop(d))

        return y, backprop

    def _encode(self, x, pad, train):
        if self.encoder == "gru":
            return self._residual(x, lambda v: self.gru.forward(v, train, key_padding_mask=pad), self.gru_norm, train)
        keep = (~pad)[..., None].astype(np.float32)

        def conv(v):
            y, back = self.conv.forward(v * keep, train)
            return y, lambda dy: back(dy) * keep

        x, back1 = self._residual(x, conv, self.conv_norm, train)
        x, back2 = self._residual(
            x, lambda v: self.self_attention.forward(v, train, key_padding_mask=pad), self.attention_norm, train)
        return x, lambda dy: back1(back2(dy))

    def _block(self, block, x, pad, train):
        if self.encoder == "gru":
            gru, norm = block
            return self._residual(x, lambda v: gru.forward(v, train, key_padding_mask=pad), norm, train)
        attention, norm1, up, down, norm2 = block
        x, back1 = self._residual(x, lambda v: attention.forward(v, train, key_padding_mask=pad), norm1, train)

        def ffn(v):
            h, back_up = up.forward(v, train)
            y, back_down = down.forward(h, train)
            return y, lambda dy: back_up(back_down(dy))

        x, back2 = self._residual(x, ffn, norm2, train)
        return x, lambda dy: back1(back2(dy))

    # -- the whole model -----------------------------------------------------

    def forward(self, batch: ReaderBatch, train: bool = False) -> tuple[tuple[np.ndarray, np.ndarray], Any]:
        p, back_pe = self._embed(batch.p_words, batch.p_chars, batch.p_feats, batch.p_pad, self.p_position, train)
        q, back_qe = self._embed(batch.q_words, batch.q_chars, batch.q_feats, batch.q_pad, self.q_position, train)
        p, back_penc = self._encode(p, batch.p_pad, train)
        q, back_qenc = self._encode(q, batch.q_pad, train)
        a, back_cross = self.cross.forward(p, train, context=q, key_padding_mask=batch.q_pad)
        f, back_fuse = self.fuse.forward(np.concatenate([p, a, p * a], axis=-1), train)
        m0, back_fn = self.fuse_norm.forward(f, train)
        m1, back_b1 = self._block(self.blocks[0], m0, batch.p_pad, train)
        m2, back_b2 = self._block(self.blocks[1], m1, batch.p_pad, train)
        s, back_s = self.start.forward(np.concatenate([m0, m1], axis=-1), train)
        e, back_e = self.end.forward(np.concatenate([m0, m2], axis=-1), train)
        s = s[..., 0] + MASKED * batch.p_pad
        e = e[..., 0] + MASKED * batch.p_pad

        def backprop(grads):
            ds, de = grads
            d0s, d1 = _concat_back([m0.shape[-1]] * 2, back_s(f32(ds)[..., None]))
            d0e, d2 = _concat_back([m0.shape[-1]] * 2, back_e(f32(de)[..., None]))
            d1 = d1 + back_b2(d2)
            dm0 = d0s + d0e + back_b1(d1)
            dp, da, dpa = _concat_back([p.shape[-1]] * 3, back_fuse(back_fn(dm0)))
            dp_cross, dq = back_cross(da + dpa * p)
            dp = dp + dpa * a + dp_cross
            back_pe(back_penc(dp))
            back_qe(back_qenc(dq))

        return (s.astype(np.float32), e.astype(np.float32)), backprop
