"""The network of the trained summarizer: a sentence encoder plus document features -> one logit.

A module of its own because it imports numpy and the kernels: the engine
module (trained.py) is imported on every ``nlp-tool`` start and imports this
one only when a model is trained or loaded. This one never imports the
engine: the convolution width comes from features.py, below both. Importing
it registers the layer, so ``toolkit.nn.layer_from_config`` can rebuild it
from a model file.
"""

from __future__ import annotations

import numpy as np

from toolkit_plugins.summarization.features import WIDTH
from toolkit.nn.containers import Sequential
from toolkit.nn.layer_configs import MAX_DIM, MAX_LEN, MAX_VOCAB, nested, register_layer
from toolkit.nn.layers import Conv1D, Dense, Dropout, Embedding, GlobalMaxPool1D, Layer


@register_layer
class SentenceScorer(Layer):
    """Sentence encoder plus document features -> one logit per sentence.

    Input: one float32 row per sentence, ``maxlen`` word ids then the
    features. ``toolkit.nn.fit`` batches a single array, so the ids travel as
    floats beside the features (exact below 2**24) and are cast back here.
    Without the encoder (``filters`` 0) ``maxlen`` is 0: the features alone.
    """

    bounds = {"vocab_size": (1, MAX_VOCAB), "maxlen": (0, MAX_LEN), "features": (0, MAX_DIM), "dim": (1, MAX_DIM),
              "filters": (0, MAX_DIM), "hidden": (1, MAX_DIM)}

    def __init__(self, vocab_size: int, maxlen: int, features: int, dim: int, filters: int, hidden: int,
                 dropout: float = 0.0, seed: int | None = None):
        super().__init__()
        self.vocab_size, self.maxlen, self.features = vocab_size, maxlen, features
        self.dim, self.filters, self.hidden, self.dropout = dim, filters, hidden, dropout
        seed = 0 if seed is None else seed
        # filters = 0: no sentence encoder, the document features alone (no
        # tokenizing, no convolution: a summary in about 60% of the time).
        self.encoder = Sequential([
            Embedding(vocab_size, dim, padding_idx=0, seed=seed),
            Conv1D(dim, filters, WIDTH, activation="relu", seed=seed + 1),
            GlobalMaxPool1D(),
            # The encoder learns words by heart fast (a few thousand articles): dropping
            # part of its output in training keeps the document features in play.
            Dropout(dropout, seed=seed + 4),
        ]) if filters else None
        self.head = Sequential([
            Dense(filters + features, hidden, activation="relu", seed=seed + 2),
            Dense(hidden, 1, seed=seed + 3),
        ])

    def children(self) -> list[Layer]:
        return [self.head] if self.encoder is None else [self.encoder, self.head]

    def forward(self, x: np.ndarray, train: bool = False):
        if self.encoder is None:  # maxlen is 0: the rows hold the features only
            return self.head.forward(x, train)
        ids = x[:, : self.maxlen].astype(np.int32)
        # Ids are padded at the end; past the longest sentence plus one
        # window of padding, the convolution only repeats that window's
        # output, so cutting there changes no max-pooled value (most
        # sentences are far shorter than maxlen).
        used = np.flatnonzero(ids.any(axis=0))
        ids = np.ascontiguousarray(ids[:, : min(self.maxlen, (used[-1] + 1 if len(used) else 0) + WIDTH)])
        encoded, encoder_back = self.encoder.forward(ids, train)
        logits, head_back = self.head.forward(np.concatenate([encoded, x[:, self.maxlen :]], axis=1), train)

        def backprop(dy: np.ndarray) -> None:
            encoder_back(head_back(dy)[:, : self.filters])
            return None  # the inputs (ids, features) have no gradient

        return logits, backprop

    def get_config(self) -> dict:
        return {"vocab_size": self.vocab_size, "maxlen": self.maxlen, "features": self.features,
                "dim": self.dim, "filters": self.filters, "hidden": self.hidden, "dropout": self.dropout}

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        filters = args["filters"]
        head = nested(Dense.param_shapes({"in_features": filters + args["features"], "out_features": args["hidden"]}),
                      Dense.param_shapes({"in_features": args["hidden"], "out_features": 1}))
        if not filters:
            return nested(head)
        encoder = nested(Embedding.param_shapes({"vocab_size": args["vocab_size"], "dim": args["dim"],
                                                 "padding_idx": 0}),
                         Conv1D.param_shapes({"in_channels": args["dim"], "filters": filters, "width": WIDTH,
                                              "padding": "valid"}))
        return nested(encoder, head)

