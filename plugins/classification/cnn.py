"""The "cnn" engine: the design's text CNN on the compiled kernels.

WordTokenizer(num_words) -> pad to ``maxlen`` (Keras "pre" padding and
truncation) -> Embedding(dim, padding_idx 0) -> Conv1D(filters, 5, ReLU) ->
GlobalMaxPool1D (run as the fused conv/ReLU/max-pool kernel) ->
Dense(hidden, ReLU) -> Dense(C). Binary and multi-class alike use C output
units and softmax cross-entropy: one loss, one prediction path, and the
probabilities of all classes come straight out of the softmax. Training
(``toolkit.nn.fit``, the shared trainer) keeps the epoch with the best
validation accuracy; the model file holds the layer tree, the tokenizer config and
the labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toolkit_plugins.classification.common import CJK_OPTION, ClassifierEngine
from toolkit.engine import Option
from toolkit.training import trainer_options

if TYPE_CHECKING:
    import numpy as np

    import toolkit.nn as nn

WIDTH = 5
# Prediction pads a text to its length plus WIDTH rounded up to this (CnnModel.padded_width).
WIDTH_STEP = 16
CNN_TRAIN_OPTIONS = {
    **trainer_options(epochs=3, patience=2),
    "batch": Option(int, 128, "Examples per training step (mini-batch size).", minimum=1),
    "learning_rate": Option(float, 1e-3, "Adam learning rate.", minimum=0, min_open=True, deprecated=("lr",)),
    "max_len": Option(int, 400, f"Words kept per text (the last ones; shorter texts are padded); at least the"
                      f" convolution width {WIDTH}.", minimum=WIDTH, deprecated=("maxlen",)),
    "cjk": CJK_OPTION,
    "vocab_size": Option(int, 20000, "Vocabulary size (most frequent training words).", minimum=1,
                         deprecated=("num_words",)),
    "dim": Option(int, 128, "Embedding size.", minimum=1),
    "filters": Option(int, 128, f"Convolution filters (width {WIDTH}).", minimum=1),
    "hidden": Option(int, 128, "Units of the hidden dense layer.", minimum=1),
    "dropout": Option(float, 0.0, "Dropout rate on the pooled features during training (0: none).",
                      minimum=0, maximum=1, max_open=True),
    "word_vectors": Option(bool, False, "Start the embedding from word vectors learned from the training texts"
                           " (PPMI + SVD; about 30 s on IMDb) instead of random ones."),
}


def softmax(logits: np.ndarray) -> np.ndarray:
    import numpy as np

    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class CnnModel:
    """A loaded text CNN: tokenizer, padding length and layer tree."""

    def __init__(self, tokenizer: Any, maxlen: int, network: nn.Layer) -> None:
        from toolkit.nn import Dense

        self.tokenizer, self.maxlen, self.network = tokenizer, maxlen, network
        for layer in network.layers:
            if isinstance(layer, Dense):
                # A text's probabilities must not depend on its batch: they are rounded to 6 decimals.
                layer.exact_rows = True

    @classmethod
    def from_arrays(cls, architecture: dict, arrays: dict[str, np.ndarray], meta: dict, prefix: str = "") -> CnnModel:
        """Rebuild from a model file; arrays may be stored as float16 (they are used as float32).
        ValueError, TypeError or KeyError for a file whose numbers do not make a CNN, before it is built."""
        from toolkit.nn import Sequential
        from toolkit.nn.layer_configs import MAX_LEN, check_size, layer_from_arrays
        from toolkit.text import WordTokenizer

        maxlen = check_size("the CNN", "maxlen", meta["maxlen"], WIDTH, MAX_LEN)
        network = layer_from_arrays(architecture, arrays, prefix, kind=Sequential)
        return cls(WordTokenizer.from_config(meta["tokenizer"]), maxlen, network)

    def inputs(self, texts: list[str]) -> np.ndarray:
        from toolkit.text import pad_sequences

        return pad_sequences(self.tokenizer.texts_to_sequences(texts), maxlen=self.maxlen)

    def padded_width(self, length: int) -> int:
        """The width a text of ``length`` word ids is padded to: its length plus ``WIDTH``, rounded up to
        ``WIDTH_STEP`` (at most ``maxlen``, and of the same parity as ``maxlen``).

        It depends on the text alone, never on its batch: BLAS kernels pick their
        accumulation order by matrix shape, so on some CPUs (AMD Zen 5, where
        OpenBLAS runs its Haswell kernels) the convolution of one text padded to
        two widths differs in the last bits, and a text's rounded probabilities
        depended on the texts it was batched with.
        """
        width = min(self.maxlen, -(-(length + WIDTH) // WIDTH_STEP) * WIDTH_STEP)
        # The convolution computes outputs in pairs (Winograd tiles): the parity of maxlen pairs
        # the same positions as padding to maxlen.
        return width + (self.maxlen - width) % 2

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Class probabilities, those of texts padded to ``maxlen`` but much faster on short texts.

        Each text is padded only to :meth:`padded_width`, and texts of one width
        run in batches of up to ``batch_size``. That gives the max-pooled
        features of padding to ``maxlen`` up to float32 rounding (bit-equal where
        the BLAS accumulates alike for every shape): a window made only of padding
        gives the same output wherever it is, so one such window stands for all
        of them, and the windows overlapping the text's start see the same
        padding before it. The dense layers accumulate in float64
        (``Dense.exact_rows``), so a text's result does not depend on its batch.
        Small batches (32) keep a call with a few hundred texts padding little:
        with one width per 256 texts, the IMDb test set ran 1.65x slower.
        """
        return self.predict_proba_ids(self.tokenizer.texts_to_sequences(texts), batch_size)

    def predict_proba_ids(self, sequences: list[list[int]], batch_size: int = 32) -> np.ndarray:
        """:meth:`predict_proba` of texts already turned into word ids by the model's tokenizer."""
        import numpy as np

        from toolkit.text import pad_sequences

        widths = [self.padded_width(len(s)) for s in sequences]
        order = np.argsort(widths, kind="stable")
        # One all-padding row gives the number of classes when there are no texts.
        logits = self.network(np.zeros((1, WIDTH), dtype=np.int32))[:0]
        start = 0
        while start < len(order):
            width = widths[order[start]]
            end = start + 1
            while end < len(order) and end - start < batch_size and widths[order[end]] == width:
                end += 1
            rows = order[start:end]
            out = self.network(pad_sequences([sequences[i] for i in rows], maxlen=width))
            if start == 0:
                logits = np.empty((len(sequences), out.shape[1]), dtype=np.float32)
            logits[rows] = out
            start = end
        return softmax(logits)


def build_network(vocab_size: int, n_classes: int, settings: dict[str, Any], seed: int) -> nn.Sequential:
    import toolkit.nn as nn

    dim, filters, hidden = settings["dim"], settings["filters"], settings["hidden"]
    layers = [
        nn.Embedding(vocab_size, dim, padding_idx=0, seed=seed),
        nn.Conv1D(dim, filters, WIDTH, activation="relu", seed=seed + 1),
        nn.GlobalMaxPool1D(),
        nn.Dense(filters, hidden, activation="relu", seed=seed + 2),
        nn.Dense(hidden, n_classes, seed=seed + 3),
    ]
    if settings["dropout"]:
        layers.insert(3, nn.Dropout(settings["dropout"], seed=seed + 4))
    return nn.Sequential(layers)


def fit_network(texts: list[str], y: np.ndarray, n_classes: int, valid: tuple[list[str], np.ndarray] | None,
                seed: int, progress: bool | None, settings: dict[str, Any],
                output: str) -> tuple[CnnModel, dict, dict]:
    """Train the CNN (or resume its run, with the ``resume`` option) through the shared trainer; with ``valid``
    the model keeps the epoch of the best validation accuracy, without it the last one. Returns the model, its
    metadata and the trainer's report."""
    import toolkit.nn as nn
    from toolkit.text import WordTokenizer
    from toolkit.training import history_report, resumed, trainer_settings

    saved = resumed(settings, output, seed)
    if saved is None:
        tokenizer = WordTokenizer(num_words=settings["vocab_size"], cjk=settings["cjk"]).fit(texts)
    else:
        tokenizer = WordTokenizer.from_config(saved.setup["tokenizer"])
    model = CnnModel(tokenizer, settings["max_len"], build_network(tokenizer.vocab_size, n_classes, settings, seed))
    # A resumed run's vectors are in its checkpoint, already trained further.
    vectors_report = saved.setup.get("word_vectors") if saved is not None else \
        pretrain_embedding(model, texts, seed) if settings["word_vectors"] else None
    history = nn.fit(
        model.network, nn.softmax_cross_entropy, nn.Adam(model.network, settings["learning_rate"]),
        model.inputs(texts), y, batch_size=settings["batch"],
        validation=(model.inputs(valid[0]), valid[1]) if valid is not None else None,
        metrics={"accuracy": lambda t, out: float((out.argmax(axis=1) == t).mean())}, resume=saved,
        **trainer_settings(settings, output, seed, progress,
                           setup={"tokenizer": tokenizer.to_config(), "word_vectors": vectors_report}),
    )
    info = {
        "tokenizer": tokenizer.to_config(),
        # The model file keeps the key "maxlen" of the models already shipped; the option is max_len.
        "maxlen": settings["max_len"],
    }
    if vectors_report is not None:
        info["word_vectors"] = vectors_report
    return model, info, history_report(history)


def pretrain_embedding(model: CnnModel, texts: list[str], seed: int) -> dict:
    """Set the embedding rows of the words of ``texts`` to their PPMI + SVD vectors; the vectors' report.

    Whole texts are read, not only the last ``maxlen`` words. On IMDb the CNN
    alone went from 89.6 % to 90.1 % test accuracy (measured before the selection
    protocol, with the test split in view: docs/classification.md, history note).
    """
    from toolkit.text import FIRST_WORD_ID
    from toolkit.text.vectors import scale_like, word_vectors

    embedding = model.network.layers[0]
    table = embedding.params["table"]
    vectors, known, report = word_vectors(model.tokenizer.texts_to_sequences(texts), model.tokenizer.vocab_size,
                                          table.shape[1], first=FIRST_WORD_ID, seed=seed)
    table[...] = scale_like(vectors, known, table)
    return report


def network_arrays(model: CnnModel, prefix: str = "", float16: bool = False) -> dict[str, np.ndarray]:
    import numpy as np

    dtype = np.float16 if float16 else np.float32
    return {prefix + name: value.astype(dtype) for name, value, _ in model.network.named_parameters()}


class CnnClassifier(ClassifierEngine):
    name = "cnn"
    description = "Text CNN (embedding, convolution, max-pool, dense) on the compiled kernels."
    train_options = {**ClassifierEngine.train_options, **CNN_TRAIN_OPTIONS}

    @classmethod
    def _fit(cls, texts, y, classes, valid, seed, progress, settings, output):
        model, info, trained = fit_network(texts, y, len(classes), valid, seed, progress, settings, output)
        return network_arrays(model), info, model.network.to_config(), trained

    @classmethod
    def _build(cls, config, arrays):
        return CnnModel.from_arrays(config["architecture"], arrays, config["metadata"])
