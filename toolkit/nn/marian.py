"""MarianMT checkpoints (OPUS-MT; Hugging Face's layout) as an encoder-decoder on our layers.

Marian's layers are post-norm in both stacks (add, then normalise, as in
BERT). Token embeddings are scaled by sqrt(d_model) when the config says
``scale_embedding`` and added to fixed sinusoidal positions laid out as
every sine, then every cosine (not stored in the file). The output is the
decoder's embedding table (tied) plus ``final_logits_bias``; decoding
starts from ``decoder_start_token_id`` (the padding id) and, when the
config has ``forced_eos_token_id``, ends with EOS at the last step allowed.
Tensor names carry the ``model.`` prefix of ``MarianMTModel``; one shared
embedding is saved as ``model.shared.weight``, or under the encoder's and
decoder's names by older conversions. torch's ``Linear`` weights are
(out, in): transposed to ours once, at load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.errors import CheckpointError
from toolkit.nn.attention import MultiHeadAttention
from toolkit.nn.bert import PostNormBlock
from toolkit.nn.layer_configs import MAX_DIM, MAX_HEADS, MAX_LAYERS, MAX_LEN, MAX_VOCAB, check_size
from toolkit.nn.layers import Array, Dense, Embedding, LayerNorm, weights_to_come
from toolkit.nn.positions import sinusoidal_positions
from toolkit.nn.pretrained import Checkpoint, Tensors, copy_attention, copy_layer_norm, copy_linear
from toolkit.nn.transformer import DecoderCache, Seq2SeqTransformer, cross_attention, start_cache

# The checkpoints' activation names, as our Dense layers call them (OPUS-MT's models use swish).
ACTIVATIONS = {"swish": "silu", "silu": "silu", "gelu": "gelu_exact", "gelu_new": "gelu", "relu": "relu"}
EPS = 1e-5  # torch's LayerNorm default, which Marian's code keeps
ATTENTION = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "out_proj"}


@dataclass(frozen=True)
class MarianArgs:
    """What a config.json says about the model."""

    vocab_size: int
    target_vocab: int
    dim: int
    encoder_layers: int
    decoder_layers: int
    encoder_heads: int
    decoder_heads: int
    encoder_ffn: int
    decoder_ffn: int
    max_len: int
    activation: str
    scale: float
    pad_id: int
    eos_id: int
    start_id: int
    forced_eos: bool
    shared: bool
    tied: bool


def _id(config: dict, key: str, vocab: int, default: int | None = None) -> int:
    value = config.get(key, default)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < vocab:
        raise ValueError(f"{key} {value!r} is not an id of the {vocab}-token vocabulary")
    return value


def marian_args(config: dict, where: str) -> MarianArgs:
    """The model's numbers from a MarianMT config.json; CheckpointError for one this code cannot run."""
    if config.get("model_type") != "marian":
        raise CheckpointError(f"{where}: a {config.get('model_type')!r} model, not MarianMT")
    activation = config.get("activation_function", "gelu")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise CheckpointError(f"{where}: activation {activation!r}; nlp-tool runs MarianMT with"
                              f" {', '.join(ACTIVATIONS)}")
    try:
        vocab = check_size("MarianMT", "vocab_size", config["vocab_size"], 1, MAX_VOCAB)
        shared = bool(config.get("share_encoder_decoder_embeddings", True))
        target = vocab if shared else check_size("MarianMT", "decoder_vocab_size",
                                                 config.get("decoder_vocab_size") or vocab, 1, MAX_VOCAB)
        dim = check_size("MarianMT", "d_model", config["d_model"], 1, MAX_DIM)
        sizes = {key: check_size("MarianMT", key, config[key], 1, bound) for key, bound in (
            ("encoder_layers", MAX_LAYERS), ("decoder_layers", MAX_LAYERS), ("encoder_attention_heads", MAX_HEADS),
            ("decoder_attention_heads", MAX_HEADS), ("encoder_ffn_dim", MAX_DIM), ("decoder_ffn_dim", MAX_DIM),
            ("max_position_embeddings", MAX_LEN))}
        pad = _id(config, "pad_token_id", target)
        ids = {"pad_id": pad, "eos_id": _id(config, "eos_token_id", target),
               "start_id": _id(config, "decoder_start_token_id", target, pad)}
        forced = config.get("forced_eos_token_id")
        if forced is not None and _id(config, "forced_eos_token_id", target) != ids["eos_id"]:
            raise ValueError("forced_eos_token_id is not eos_token_id")
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{where}: not a usable MarianMT config ({error})") from None
    for side in ("encoder", "decoder"):
        if dim % sizes[f"{side}_attention_heads"]:
            raise CheckpointError(f"{where}: d_model {dim} is not divisible by {side}_attention_heads"
                                  f" {sizes[f'{side}_attention_heads']}")
    return MarianArgs(vocab, target, dim, sizes["encoder_layers"], sizes["decoder_layers"],
                      sizes["encoder_attention_heads"], sizes["decoder_attention_heads"], sizes["encoder_ffn_dim"],
                      sizes["decoder_ffn_dim"], sizes["max_position_embeddings"], ACTIVATIONS[activation],
                      float(np.sqrt(dim)) if config.get("scale_embedding", False) else 1.0,
                      forced_eos=forced is not None,
                      shared=shared, tied=bool(config.get("tie_word_embeddings", True)), **ids)


class MarianDecoderLayer:
    """x = LN1(x + SelfAttention(x)); x = LN2(x + CrossAttention(x, memory)); x = LN3(x + FFN(x))."""

    def __init__(self, args: MarianArgs) -> None:
        d = args.dim
        self.self_attn = MultiHeadAttention(d, args.decoder_heads, causal=True, seed=0)
        self.cross_attn = MultiHeadAttention(d, args.decoder_heads, seed=0)
        self.ln1, self.ln2, self.ln3 = LayerNorm(d, eps=EPS), LayerNorm(d, eps=EPS), LayerNorm(d, eps=EPS)
        self.ff1, self.ff2 = Dense(d, args.decoder_ffn, args.activation, seed=0), Dense(args.decoder_ffn, d, seed=0)


class MarianMT:
    """A MarianMT checkpoint at inference: :meth:`start` and :meth:`step` for :mod:`toolkit.nn.decoding`,
    :meth:`logits` for whole target prefixes."""

    def __init__(self, args: MarianArgs) -> None:
        self.args = args
        self.src_embed = Embedding(args.vocab_size, args.dim, seed=0)
        self.tgt_embed = self.src_embed if args.shared else Embedding(args.target_vocab, args.dim, seed=0)
        self.output = self.tgt_embed.params["table"] if args.tied else np.empty((args.target_vocab, args.dim),
                                                                                np.float32)
        self.bias = np.zeros(args.target_vocab, np.float32)
        self.encoder = [PostNormBlock(args.dim, args.encoder_heads, args.encoder_ffn, args.activation, EPS)
                        for _ in range(args.encoder_layers)]
        self.decoder = [MarianDecoderLayer(args) for _ in range(args.decoder_layers)]
        self.positions = sinusoidal_positions(args.max_len, args.dim, halves=True)
        # What the searches of toolkit.nn.decoding read.
        self.pad_id, self.bos_id, self.eos_id = args.pad_id, args.start_id, args.eos_id
        self.tgt_vocab, self.max_len, self.forced_eos = args.target_vocab, args.max_len, args.forced_eos

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "MarianMT":
        """The model of the checkpoint folder ``folder``, every tensor checked before any is read."""
        from toolkit.nn.pretrained import open_checkpoint

        return marian_model(open_checkpoint(Path(folder)))

    def _embed(self, embed: Embedding, ids: Array, offset: int) -> Array:
        if offset + ids.shape[1] > self.max_len:
            raise ValueError(f"{offset + ids.shape[1]} tokens is past the model's {self.max_len} positions")
        x, _ = embed.forward(np.ascontiguousarray(ids, dtype=np.int64))
        if self.args.scale != 1.0:
            x *= np.float32(self.args.scale)
        x += self.positions[offset:offset + ids.shape[1]]
        return x

    def encode(self, src: Array) -> tuple[Array, Array]:
        """The encoder's output (B, Ts, dim) for source ids ``src`` (B, Ts), and its padding mask (B, Ts)."""
        src = np.asarray(src)
        mask = src == self.pad_id
        x = self._embed(self.src_embed, src, 0)
        padding = mask if mask.any() else None
        for layer in self.encoder:
            x = layer(x, padding)
        return x, mask

    def start(self, src: Array, beams: int = 1) -> DecoderCache:
        """Encode ``src`` and project its keys/values for every decoder layer, with ``beams`` rows per source row."""
        memory, mask = self.encode(src)
        return start_cache(self.decoder, memory, mask, beams)

    def _decode(self, tokens: Array, cache: DecoderCache) -> Array:
        """The decoder's states (B, t, dim) of ``tokens`` (B, t) after the cached positions, which they join."""
        x = self._embed(self.tgt_embed, np.asarray(tokens), cache.length)
        for i, layer in enumerate(self.decoder):
            # Post-norm: each residual add and its norm in one pass.
            x, _, _ = layer.ln1.add_forward(x, Seq2SeqTransformer._cached_self_attention(layer.self_attn, x, cache, i))
            x, _, _ = layer.ln2.add_forward(x, cross_attention(layer.cross_attn, x, cache, i))
            x, _, _ = layer.ln3.add_forward(x, layer.ff2(layer.ff1(x)))
        cache.length += tokens.shape[1]
        cache.order = None
        return x

    def step(self, tokens: Array, cache: DecoderCache) -> Array:
        """Logits (B, target vocabulary) of the token after ``tokens`` (B, t), given the cache."""
        logits = self._decode(tokens, cache)[:, -1] @ self.output.T
        logits += self.bias
        return logits

    def logits(self, src: Array, tokens: Array) -> Array:
        """Logits (B, t, target vocabulary) of every position of the target prefixes ``tokens`` (B, t), which start
        with the decoder's start id, for sources ``src``: what transformers' model returns."""
        h = self._decode(tokens, self.start(src))
        return h @ self.output.T + self.bias


def _embeddings(checkpoint: Checkpoint, args: MarianArgs) -> dict[str, str]:
    """The prefix of the checkpoint's tensor names, and the names of its source and target embeddings and output
    projection."""
    prefix = "model." if any(name.startswith("model.") for name in checkpoint.tensors) else ""
    shared = f"{prefix}shared.weight" if f"{prefix}shared.weight" in checkpoint.tensors else None
    src = shared or f"{prefix}encoder.embed_tokens.weight"
    names = {"prefix": prefix, "src": src, "tgt": src if args.shared else f"{prefix}decoder.embed_tokens.weight"}
    if not args.tied:
        names["output"] = "lm_head.weight"
    return names


def marian_shapes(args: MarianArgs, names: dict[str, str]) -> dict[str, tuple[int, ...]]:
    """Every tensor a MarianMT of ``args`` needs, by checkpoint name (``final_logits_bias`` aside: optional)."""
    d, p = args.dim, names["prefix"]
    shapes = {names["src"]: (args.vocab_size, d), names["tgt"]: (args.target_vocab, d)}
    if "output" in names:
        shapes[names["output"]] = (args.target_vocab, d)

    def linear(name: str, d_in: int, d_out: int) -> None:
        shapes.update({name + ".weight": (d_out, d_in), name + ".bias": (d_out,)})

    def norm(name: str) -> None:
        shapes.update({name + ".weight": (d,), name + ".bias": (d,)})

    for side, layers, ffn, attentions in (("encoder", args.encoder_layers, args.encoder_ffn, ("self_attn",)),
                                          ("decoder", args.decoder_layers, args.decoder_ffn,
                                           ("self_attn", "encoder_attn"))):
        for i in range(layers):
            block = f"{p}{side}.layers.{i}."
            for attention in attentions:
                for module in ATTENTION.values():
                    linear(f"{block}{attention}.{module}", d, d)
                norm(f"{block}{attention}_layer_norm")
            linear(block + "fc1", d, ffn)
            linear(block + "fc2", ffn, d)
            norm(block + "final_layer_norm")
    return shapes


def marian_model(checkpoint: Checkpoint) -> MarianMT:
    """The checkpoint's MarianMT, every tensor checked before any is read."""
    args = marian_args(checkpoint.config, str(checkpoint.folder))
    names = _embeddings(checkpoint, args)
    shapes = marian_shapes(args, names)
    checkpoint.check(shapes)
    bias = "final_logits_bias" if "final_logits_bias" in checkpoint.tensors else None
    if bias:
        checkpoint.check({bias: (1, args.target_vocab)})
    t = checkpoint.load(list(shapes) + ([bias] if bias else []))
    with weights_to_come():
        model = MarianMT(args)
    model.src_embed.params["table"][...] = t[names["src"]]
    if model.tgt_embed is not model.src_embed:
        model.tgt_embed.params["table"][...] = t[names["tgt"]]
    if not args.tied:
        model.output[...] = t[names["output"]]
    if bias:
        model.bias[...] = t[bias][0]
    _copy_layers(model, t, names["prefix"])
    return model


def _copy_layers(model: MarianMT, t: Tensors, prefix: str) -> None:
    for i, block in enumerate(model.encoder):
        name = f"{prefix}encoder.layers.{i}."
        copy_attention(block.attn, t, {part: f"{name}self_attn.{module}" for part, module in ATTENTION.items()})
        copy_layer_norm(block.ln1, t, name + "self_attn_layer_norm")
        copy_linear(block.ff1, t, name + "fc1")
        copy_linear(block.ff2, t, name + "fc2")
        copy_layer_norm(block.ln2, t, name + "final_layer_norm")
    for i, layer in enumerate(model.decoder):
        name = f"{prefix}decoder.layers.{i}."
        for attention, mha, norm in (("self_attn", layer.self_attn, layer.ln1),
                                     ("encoder_attn", layer.cross_attn, layer.ln2)):
            copy_attention(mha, t, {part: f"{name}{attention}.{module}" for part, module in ATTENTION.items()})
            copy_layer_norm(norm, t, f"{name}{attention}_layer_norm")
        copy_linear(layer.ff1, t, name + "fc1")
        copy_linear(layer.ff2, t, name + "fc2")
        copy_layer_norm(layer.ln3, t, name + "final_layer_norm")
