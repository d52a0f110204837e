"""BERT and DistilBERT checkpoints (Hugging Face's layout) as encoders on our layers, with their task heads.

Both are post-norm encoders: a block adds self-attention to its input and
normalises, then adds the feed-forward network and normalises again.
BERT's embeddings add token types (0: the first segment, 1: the second)
and its sequence classifier reads a pooled first token (dense + tanh);
DistilBERT has neither and puts dense + ReLU before its classifier. The
question-answering head scores every token as an answer's start and end.
torch's ``Linear`` weights are (out, in): transposed to our (in, out) once,
at load. Tensor names may carry the ``bert.``/``distilbert.`` prefix of the
task models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit.errors import CheckpointError
from toolkit.nn.attention import MultiHeadAttention
from toolkit.nn.layer_configs import MAX_DIM, MAX_HEADS, MAX_LAYERS, MAX_LEN, MAX_VOCAB, check_size
from toolkit.nn.layers import Array, Dense, Embedding, LayerNorm, weights_to_come
from toolkit.nn.pretrained import Checkpoint, copy_attention, copy_layer_norm, copy_linear

KINDS = ("bert", "distilbert")
# The checkpoints' activation names, as our Dense layers call them.
ACTIVATIONS = {"gelu": "gelu_exact", "gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "relu": "relu"}
DISTILBERT_EPS = 1e-12  # fixed in DistilBERT's code, not in its config


@dataclass(frozen=True)
class BertArgs:
    """What a config.json says about the encoder."""

    kind: str
    vocab_size: int
    dim: int
    heads: int
    layers: int
    ffn: int
    max_len: int
    type_vocab: int  # 0: no token types (DistilBERT)
    eps: float
    activation: str


def bert_args(config: dict, where: str) -> BertArgs:
    """The encoder's numbers from a BERT or DistilBERT config.json; CheckpointError for one this code cannot run."""
    kind = config.get("model_type")
    if kind not in KINDS:
        raise CheckpointError(f"{where}: a {kind!r} model, not BERT or DistilBERT")
    names = ({"dim": "hidden_size", "heads": "num_attention_heads", "layers": "num_hidden_layers",
              "ffn": "intermediate_size", "activation": "hidden_act"} if kind == "bert" else
             {"dim": "dim", "heads": "n_heads", "layers": "n_layers", "ffn": "hidden_dim", "activation": "activation"})
    activation = config.get(names["activation"], "gelu")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise CheckpointError(f"{where}: activation {activation!r}; nlp-tool runs {kind} with"
                              f" {', '.join(ACTIVATIONS)}")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError(f"{where}: position_embedding_type {config['position_embedding_type']!r}; nlp-tool"
                              " runs absolute positions")
    try:
        dim, heads = check_size(kind, names["dim"], config[names["dim"]], 1, MAX_DIM), \
            check_size(kind, names["heads"], config[names["heads"]], 1, MAX_HEADS)
        args = BertArgs(
            kind=kind,
            vocab_size=check_size(kind, "vocab_size", config["vocab_size"], 1, MAX_VOCAB),
            dim=dim, heads=heads,
            layers=check_size(kind, names["layers"], config[names["layers"]], 1, MAX_LAYERS),
            ffn=check_size(kind, names["ffn"], config[names["ffn"]], 1, MAX_DIM),
            max_len=check_size(kind, "max_position_embeddings", config["max_position_embeddings"], 1, MAX_LEN),
            type_vocab=check_size(kind, "type_vocab_size", config.get("type_vocab_size", 2), 1, 1024)
            if kind == "bert" else 0,
            eps=float(config.get("layer_norm_eps", 1e-12)) if kind == "bert" else DISTILBERT_EPS,
            activation=ACTIVATIONS[activation])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{where}: not a usable {kind} config ({error})") from None
    if dim % heads:
        raise CheckpointError(f"{where}: {names['dim']} {dim} is not divisible by {names['heads']} {heads}")
    if not 0 < args.eps < 1:
        raise CheckpointError(f"{where}: layer_norm_eps {args.eps} is not a small positive number")
    return args


def _linear(d_in: int, d_out: int) -> dict[str, tuple[int, ...]]:
    return {"weight": (d_out, d_in), "bias": (d_out,)}


def _norm(d: int) -> dict[str, tuple[int, ...]]:
    return {"weight": (d,), "bias": (d,)}


def _names(args: BertArgs) -> dict[str, str]:
    """Our parts -> the checkpoint's module names, in block i (``{i}``) and outside."""
    if args.kind == "bert":
        block = "encoder.layer.{i}."
        return {"q": block + "attention.self.query", "k": block + "attention.self.key",
                "v": block + "attention.self.value", "o": block + "attention.output.dense",
                "ln1": block + "attention.output.LayerNorm", "ff1": block + "intermediate.dense",
                "ff2": block + "output.dense", "ln2": block + "output.LayerNorm"}
    block = "transformer.layer.{i}."
    return {"q": block + "attention.q_lin", "k": block + "attention.k_lin", "v": block + "attention.v_lin",
            "o": block + "attention.out_lin", "ln1": block + "sa_layer_norm", "ff1": block + "ffn.lin1",
            "ff2": block + "ffn.lin2", "ln2": block + "output_layer_norm"}


def head_modules(args: BertArgs, head: str, prefix: str) -> dict[str, str]:
    """A task head's layers -> their checkpoint module names: ``classify``'s "pool" (BERT's pooler, inside the
    encoder's ``prefix``, or DistilBERT's pre-classifier) and "out" (the classifier), ``qa``'s "out"."""
    if head == "qa":
        return {"out": "qa_outputs"}
    return {"pool": f"{prefix}pooler.dense" if args.kind == "bert" else "pre_classifier", "out": "classifier"}


def encoder_shapes(args: BertArgs, prefix: str) -> dict[str, tuple[int, ...]]:
    """Every tensor of the encoder, by checkpoint name (``prefix``: "bert.", "distilbert." or "")."""
    d, f = args.dim, args.ffn
    shapes = {f"{prefix}embeddings.word_embeddings.weight": (args.vocab_size, d),
              f"{prefix}embeddings.position_embeddings.weight": (args.max_len, d),
              **{f"{prefix}embeddings.LayerNorm.{k}": s for k, s in _norm(d).items()}}
    if args.type_vocab:
        shapes[f"{prefix}embeddings.token_type_embeddings.weight"] = (args.type_vocab, d)
    parts = {"q": _linear(d, d), "k": _linear(d, d), "v": _linear(d, d), "o": _linear(d, d), "ln1": _norm(d),
             "ff1": _linear(d, f), "ff2": _linear(f, d), "ln2": _norm(d)}
    names = _names(args)
    for i in range(args.layers):
        for part, tensors in parts.items():
            shapes.update({prefix + names[part].format(i=i) + "." + k: s for k, s in tensors.items()})
    return shapes


class PostNormBlock:
    """x = LN1(x + SelfAttention(x)); x = LN2(x + FFN(x)): BERT's block, and MarianMT's encoder layer."""

    def __init__(self, dim: int, heads: int, ffn: int, activation: str, eps: float) -> None:
        self.attn = MultiHeadAttention(dim, heads, seed=0)
        self.ln1, self.ln2 = LayerNorm(dim, eps=eps), LayerNorm(dim, eps=eps)
        self.ff1, self.ff2 = Dense(dim, ffn, activation, seed=0), Dense(ffn, dim, seed=0)

    def __call__(self, x: Array, padding: Array | None) -> Array:
        a, _ = self.attn.forward(x, key_padding_mask=padding)
        x, _, _ = self.ln1.add_forward(x, a)  # post-norm: the add and the norm in one pass
        h, _ = self.ff1.forward(x)
        y, _ = self.ff2.forward(h)
        out, _, _ = self.ln2.add_forward(x, y)
        return out


class BertEncoder:
    """A BERT or DistilBERT encoder at inference: ids (B, T) in, final states (B, T, dim) out."""

    def __init__(self, args: BertArgs) -> None:
        self.args = args
        self.words, self.positions = Embedding(args.vocab_size, args.dim, seed=0), Embedding(args.max_len, args.dim,
                                                                                               seed=0)
        self.types = Embedding(args.type_vocab, args.dim, seed=0) if args.type_vocab else None
        self.norm = LayerNorm(args.dim, eps=args.eps)
        self.blocks = [PostNormBlock(args.dim, args.heads, args.ffn, args.activation, args.eps)
                       for _ in range(args.layers)]

    def __call__(self, ids: Array, types: Array | None = None, padding: Array | None = None) -> Array:
        """``types`` (B, T): each token's segment (BERT); ``padding`` (B, T) bool: True at right padding."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.shape[1] > self.args.max_len:
            raise ValueError(f"{ids.shape[1]} tokens is past the model's {self.args.max_len} positions")
        x, _ = self.words.forward(ids)
        where, _ = self.positions.forward(np.broadcast_to(np.arange(ids.shape[1]), ids.shape).copy())
        x = x + where
        if self.types is not None:
            kinds = np.zeros_like(ids) if types is None else np.ascontiguousarray(types, dtype=np.int64)
            x += self.types.forward(kinds)[0]
        x, _ = self.norm.forward(x)
        padding = padding if padding is not None and padding.any() else None
        for block in self.blocks:
            x = block(x, padding)
        return x


def _prefix(checkpoint: Checkpoint, kind: str) -> str:
    return f"{kind}." if f"{kind}.embeddings.word_embeddings.weight" in checkpoint.tensors else ""


def bert_model(checkpoint: Checkpoint, head: str) -> tuple[BertEncoder, dict[str, Dense]]:
    """The checkpoint's encoder and its task head's layers (:func:`head_modules`), every tensor checked before
    any is read; CheckpointError for a checkpoint without the head (a base model, say)."""
    args = bert_args(checkpoint.config, str(checkpoint.folder))
    prefix = _prefix(checkpoint, args.kind)
    modules = head_modules(args, head, prefix)
    if modules["out"] + ".weight" not in checkpoint.tensors:
        task = "sequence-classification" if head == "classify" else "question-answering"
        raise CheckpointError(f"{checkpoint.folder}: no {task} head (tensor {modules['out'] + '.weight'!r} is"
                              f" missing): a base {args.kind} model, or one trained for another task")
    outputs = len(id2label(checkpoint.config, str(checkpoint.folder))) if head == "classify" else 2
    heads = {}
    for layer, module in modules.items():
        d_out = outputs if layer == "out" else args.dim
        heads.update({f"{module}.weight": (d_out, args.dim), f"{module}.bias": (d_out,)})
    shapes = {**encoder_shapes(args, prefix), **heads}
    checkpoint.check(shapes)
    t = checkpoint.load(list(shapes))
    with weights_to_come():
        encoder = BertEncoder(args)
    encoder.words.params["table"][...] = t[f"{prefix}embeddings.word_embeddings.weight"]
    encoder.positions.params["table"][...] = t[f"{prefix}embeddings.position_embeddings.weight"]
    if encoder.types is not None:
        encoder.types.params["table"][...] = t[f"{prefix}embeddings.token_type_embeddings.weight"]
    copy_layer_norm(encoder.norm, t, f"{prefix}embeddings.LayerNorm")
    names = _names(args)
    for i, block in enumerate(encoder.blocks):
        name = {part: prefix + module.format(i=i) for part, module in names.items()}
        copy_attention(block.attn, t, {part: name[part] for part in "qkvo"})
        copy_layer_norm(block.ln1, t, name["ln1"])
        copy_layer_norm(block.ln2, t, name["ln2"])
        copy_linear(block.ff1, t, name["ff1"])
        copy_linear(block.ff2, t, name["ff2"])
    layers: dict[str, Dense] = {}
    for layer, module in modules.items():
        activation = None if layer == "out" else "tanh" if args.kind == "bert" else "relu"
        d_out, d_in = heads[module + ".weight"]
        with weights_to_come():
            layers[layer] = Dense(d_in, d_out, activation, seed=0)
        copy_linear(layers[layer], t, module)
    return encoder, layers


def id2label(config: dict, where: str) -> list[str]:
    """The class names of a classification checkpoint, in the order of its outputs (config.json's id2label)."""
    table: Any = config.get("id2label")
    try:
        labels = [str(table[key]) for key in sorted(table, key=int)] if table else []
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{where}: id2label is not a table of class ids to names ({error})") from None
    if len(labels) < 2 or sorted(map(int, table)) != list(range(len(labels))) or len(set(labels)) != len(labels):
        raise CheckpointError(f"{where}: id2label must name 2 or more distinct classes, ids 0 to n-1")
    return labels


def _from_folder(folder: Any, head: str, stride: int | None = None) -> tuple[BertEncoder, dict[str, Dense], dict,
                                                                              Any]:
    """The encoder, head layers, config and tokenizer of the checkpoint ``folder``; CheckpointError for a padding
    id or a tokenizer the model cannot take."""
    from toolkit.nn.pretrained import open_checkpoint
    from toolkit.text.pretrained_tokenizer import EncoderTokenizer

    checkpoint = open_checkpoint(folder)
    encoder, layers = bert_model(checkpoint, head)
    vocab = encoder.args.vocab_size
    pad_id = checkpoint.config.get("pad_token_id", 0)
    if pad_id is None:
        pad_id = 0
    if isinstance(pad_id, bool) or not isinstance(pad_id, int) or not 0 <= pad_id < vocab:
        raise CheckpointError(f"{folder}: pad_token_id {pad_id!r} is not an id of the {vocab}-token vocabulary")
    window = None if stride is None else min(stride, encoder.args.max_len // 4)
    tokenizer = EncoderTokenizer(folder, encoder.args.max_len, pad_id, stride=window)
    if tokenizer.size > vocab:
        raise CheckpointError(f"{folder}: the tokenizer has {tokenizer.size} tokens, the model {vocab}: they do not"
                              " belong together")
    return encoder, layers, checkpoint.config, tokenizer


class BertClassifier:
    """A sequence-classification checkpoint: texts in, class probabilities out (columns in ``labels`` order)."""

    def __init__(self, encoder: BertEncoder, head: dict[str, Dense], labels: list[str], tokenizer: Any) -> None:
        self.encoder, self.head, self.labels, self.tokenizer = encoder, head, labels, tokenizer

    @classmethod
    def from_pretrained(cls, folder: Any) -> "BertClassifier":
        encoder, head, config, tokenizer = _from_folder(folder, "classify")
        return cls(encoder, head, id2label(config, str(folder)), tokenizer)

    def logits(self, ids: Array, types: Array | None = None, padding: Array | None = None) -> Array:
        """Class scores (B, classes) of token ids (B, T), read at the first token ([CLS])."""
        h = self.encoder(ids, types, padding)[:, 0]
        h, _ = self.head["pool"].forward(h)
        return self.head["out"].forward(h)[0]

    def predict(self, texts: list[str]) -> tuple[Array, list[bool]]:
        """Probabilities (N, classes) of ``texts``, and whether each was cut to the model's positions.

        One text at a time, unpadded: a float32 product's rows depend in their last bits on how many rows
        BLAS multiplies at once, and a result must not depend on its batch (6 decimals of probability moved
        when the same text was padded beside others). A text's tokens are the rows of every product.
        """
        encodings = self.tokenizer.encode(texts)
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        for row, encoding in enumerate(encodings):
            z = self.logits(*self.tokenizer.arrays([encoding]))[0].astype(np.float64)
            z = np.exp(z - z.max())
            probs[row] = z / z.sum()
        return probs, [bool(e.overflowing) for e in encodings]

    def predict_proba(self, texts: list[str]) -> Array:
        return self.predict(texts)[0]


class BertReader:
    """A question-answering checkpoint: a question and a context in, scored answer spans (character offsets in
    the context) out, as Hugging Face's question-answering pipeline scores them: per window of the context, the
    probability of the start token times that of the end token, each a softmax over the window's context
    tokens and its first token ([CLS], the "no answer" of SQuAD 2.0 models), whose own probability is then
    dropped."""

    #: Context tokens shared by consecutive windows of a context longer than the model's positions.
    STRIDE = 128

    def __init__(self, encoder: BertEncoder, head: dict[str, Dense], tokenizer: Any) -> None:
        self.encoder, self.head, self.tokenizer = encoder, head, tokenizer

    @classmethod
    def from_pretrained(cls, folder: Any) -> "BertReader":
        encoder, head, _, tokenizer = _from_folder(folder, "qa", stride=cls.STRIDE)
        return cls(encoder, head, tokenizer)

    def span_logits(self, ids: Array, types: Array | None = None, padding: Array | None = None) -> Array:
        """Start and end scores (B, T, 2) of every token of ``ids`` (B, T)."""
        return self.head["out"].forward(self.encoder(ids, types, padding))[0]

    def spans(self, question: str, context: str, max_tokens: int, top_k: int) -> list[tuple[int, int, float]]:
        """The ``top_k`` best answers to ``question`` in each window of ``context``: (start, end, score), with
        start and end character offsets in ``context`` and at most ``max_tokens`` tokens. One window at a time,
        unpadded, so that an answer does not depend on what it is batched with."""
        first = self.tokenizer.encode([(question, context)])[0]
        found = []
        for window in [first, *first.overflowing]:
            inside = np.array([kind == 1 for kind in window.sequence_ids])
            if not inside.any():
                continue  # the question alone fills the model's positions
            logits = self.span_logits(*self.tokenizer.arrays([window]))[0].astype(np.float64)
            softmax_over = inside.copy()
            softmax_over[0] = True
            p_start, p_end = (masked_softmax(logits[:, k], softmax_over) for k in (0, 1))
            p_start[0] = p_end[0] = 0.0
            scores = np.triu(np.outer(p_start, p_end))
            scores = np.tril(scores, max_tokens - 1)
            best = np.argsort(-scores, axis=None, kind="stable")[:top_k]
            for start, end in zip(*np.unravel_index(best, scores.shape)):
                if scores[start, end] > 0:
                    found.append((window.offsets[start][0], window.offsets[end][1], float(scores[start, end])))
        return found


def masked_softmax(z: Array, keep: Array) -> Array:
    """Softmax of ``z`` over the entries ``keep`` marks; 0 elsewhere."""
    out = np.zeros_like(z)
    kept = z[keep]
    e = np.exp(kept - kept.max())
    out[keep] = e / e.sum()
    return out
