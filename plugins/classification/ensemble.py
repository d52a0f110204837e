"""The "ensemble" engine: a weighted average of the ngram and cnn engines' probabilities.

The two models make different mistakes — the n-gram model sees every
phrase of the text but no word similarity, the CNN sees learned word
vectors but only the last ``maxlen`` words — so their average beats both.
Both live in one model file: the n-gram arrays under ``ngram.``, the CNN's
under ``cnn.`` (its layer tree is the file's architecture), both configs in
the metadata. Training uses ``valid`` (never fitted on) or, without it, holds out 10% of
the data to pick the CNN's best epoch and the averaging weight (lowest
log-loss); in the second case it then refits the n-gram model, which takes
seconds, on all the training records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toolkit_plugins.classification.cnn import CNN_TRAIN_OPTIONS, CnnModel, fit_network, network_arrays
from toolkit_plugins.classification.common import DEFAULT_MODEL_FILE, TRAINING_SCRIPT, ClassifierEngine, split_validation
from toolkit_plugins.classification.ngram import NGRAM_TRAIN_OPTIONS, NgramModel, fit_arrays
from toolkit.engine import DataError, Option

if TYPE_CHECKING:
    import numpy as np

WEIGHT_GRID = tuple(i / 20 for i in range(21))


class EnsembleModel:
    def __init__(self, ngram: NgramModel, cnn: CnnModel, ngram_weight: float) -> None:
        self.ngram, self.cnn, self.ngram_weight = ngram, cnn, ngram_weight

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        from toolkit.text import tokenize

        w, tokenizer = self.ngram_weight, self.cnn.tokenizer
        if (tokenizer.lower, tokenizer.cjk) != (True, "char"):
            return w * self.ngram.predict_proba(texts) + (1.0 - w) * self.cnn.predict_proba(texts)
        # Both models split text as toolkit.text.tokenize does by default: tokenize once.
        tokens = [tokenize(text) for text in texts]
        p_cnn = self.cnn.predict_proba_ids([tokenizer.tokens_to_ids(t) for t in tokens])
        return w * self.ngram.predict_proba_tokens(tokens) + (1.0 - w) * p_cnn


def hold_out(y: np.ndarray, classes: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out row indices (``split_validation``'s seeded 10%); DataError when the part left to fit
    on lacks a class, which the n-gram model cannot be fitted without."""
    train, held = split_validation(len(y), seed)
    missing = sorted(set(range(len(classes))) - set(y[train].tolist()))
    if missing:
        raise DataError(f"training data: too few records for the ensemble engine, which holds out 10% of them to"
                        f" choose its CNN epoch and averaging weight: no {', '.join(repr(classes[c]) for c in missing)}"
                        " record would be left to fit on; give more records, or validation data (--valid)")
    return train, held


def best_weight(p_ngram: np.ndarray, p_cnn: np.ndarray, y: np.ndarray) -> float:
    """The grid weight of the n-gram probabilities with the lowest validation log-loss."""
    import numpy as np

    rows = np.arange(len(y))

    def log_loss(w: float) -> float:
        p = w * p_ngram[rows, y] + (1.0 - w) * p_cnn[rows, y]
        return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())

    return min(WEIGHT_GRID, key=lambda w: (log_loss(w), abs(w - 0.5)))


class EnsembleClassifier(ClassifierEngine):
    name = "ensemble"
    description = "Average of the ngram and cnn engines' probabilities; the default English sentiment model."
    default_model = str(DEFAULT_MODEL_FILE)
    default_model_hint = f"train it with `python {TRAINING_SCRIPT}` or pass --model FILE"
    train_options = {
        **ClassifierEngine.train_options,
        **NGRAM_TRAIN_OPTIONS,
        **CNN_TRAIN_OPTIONS,
        "ngram_weight": Option(float, -1.0, "Weight of the n-gram probabilities, 0 to 1; negative: tuned on"
                               " validation data.", maximum=1),
    }

    @classmethod
    def _fit(cls, texts, y, classes, valid, seed, progress, settings):
        all_texts, all_y, held_out = texts, y, valid is None
        if held_out:
            train_rows, valid_rows = hold_out(y, classes, seed)
            valid = ([texts[i] for i in valid_rows], y[valid_rows])
            texts, y = [texts[i] for i in train_rows], y[train_rows]
        cnn, cnn_info = fit_network(texts, y, len(classes), valid, seed, progress, settings)
        ngram_arrays, ngram_info = fit_arrays(texts, y, len(classes), settings, seed)
        weight = settings["ngram_weight"]
        if weight < 0:
            ngram = NgramModel.from_arrays(ngram_arrays, ngram_info)
            weight = best_weight(ngram.predict_proba(valid[0]), cnn.predict_proba(valid[0]), valid[1])
        if held_out:
            # The weight is chosen; the n-gram model can now learn from the held-out records too.
            ngram_arrays, ngram_info = fit_arrays(all_texts, all_y, len(classes), settings, seed)
        arrays = {"ngram." + name: value for name, value in ngram_arrays.items()}
        arrays.update(network_arrays(cnn, "cnn.", float16=settings["float16"]))
        metadata: dict[str, Any] = {"ngram": ngram_info, "cnn": cnn_info, "ngram_weight": weight}
        return arrays, metadata, cnn.network.to_config()

    @classmethod
    def _build(cls, config, arrays):
        meta = config["metadata"]
        return EnsembleModel(
            NgramModel.from_arrays(arrays, meta["ngram"], prefix="ngram."),
            CnnModel.from_arrays(config["architecture"], arrays, meta["cnn"], prefix="cnn."),
            float(meta["ngram_weight"]),
        )
