"""The "ensemble" engine: a weighted average of the ngram and cnn engines' probabilities.

The two models make different mistakes — the n-gram model sees every
phrase of the text but no word similarity, the CNN sees learned word
vectors but only the last ``maxlen`` words — so their average beats both.
Both live in one model file: the n-gram arrays under ``ngram.``, the CNN's
under ``cnn.`` (its layer tree is the file's architecture), both configs in
the metadata. Training picks the CNN's best epoch and the averaging weight
(lowest log-loss) on the validation data (never fitted on); without any, the
CNN keeps its last epoch and the weight must be given (``ngram_weight``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toolkit_plugins.classification.cnn import CNN_TRAIN_OPTIONS, CnnModel, fit_network, network_arrays
from toolkit_plugins.classification.common import DEFAULT_MODEL_FILE, TRAINING_SCRIPT, ClassifierEngine
from toolkit_plugins.classification.ngram import NEGATED, NGRAM_TRAIN_OPTIONS, NgramModel, fit_arrays, text_tokens
from toolkit.engine import Option, OptionError

if TYPE_CHECKING:
    import numpy as np

WEIGHT_GRID = tuple(i / 20 for i in range(21))


class EnsembleModel:
    def __init__(self, ngram: NgramModel, cnn: CnnModel, ngram_weight: float) -> None:
        self.ngram, self.cnn, self.ngram_weight = ngram, cnn, ngram_weight

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        w, tokenizer = self.ngram_weight, self.cnn.tokenizer
        if (tokenizer.lower, tokenizer.cjk) != (True, self.ngram.cjk):
            return w * self.ngram.predict_proba(texts) + (1.0 - w) * self.cnn.predict_proba(texts)
        # Both models split text alike (always, for a model trained by this engine): tokenize once. Negation
        # marks only prefix the tokens of tokenize (ngram.negated_tokens): the CNN reads them unmarked.
        tokens = [text_tokens(text, self.ngram.cjk, self.ngram.negation) for text in texts]
        plain = ([[t.removeprefix(NEGATED) for t in words] for words in tokens] if self.ngram.negation else tokens)
        p_cnn = self.cnn.predict_proba_ids([tokenizer.tokens_to_ids(t) for t in plain])
        return w * self.ngram.predict_proba_tokens(tokens) + (1.0 - w) * p_cnn


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
                               " validation data (which training then needs).", maximum=1),
    }

    @classmethod
    def _fit(cls, texts, y, classes, valid, seed, progress, settings, output):
        weight = settings["ngram_weight"]
        if valid is None and weight < 0:
            raise OptionError("the ensemble engine tunes its n-gram weight on validation data: give validation data"
                              " (--valid, or a --valid-split above 0) or the weight (--ngram-weight 0.5)")
        cnn, cnn_info, trained = fit_network(texts, y, len(classes), valid, seed, progress, settings, output)
        ngram_arrays, ngram_info = fit_arrays(texts, y, len(classes), settings, seed)
        if weight < 0:
            ngram = NgramModel.from_arrays(ngram_arrays, ngram_info)
            weight = best_weight(ngram.predict_proba(valid[0]), cnn.predict_proba(valid[0]), valid[1])
        arrays = {"ngram." + name: value for name, value in ngram_arrays.items()}
        arrays.update(network_arrays(cnn, "cnn.", float16=settings["float16"]))
        metadata: dict[str, Any] = {"ngram": ngram_info, "cnn": cnn_info, "ngram_weight": weight}
        return arrays, metadata, cnn.network.to_config(), trained

    @classmethod
    def _build(cls, config, arrays):
        meta = config["metadata"]
        weight = meta["ngram_weight"]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
            raise ValueError(f"the n-gram weight must be a number from 0 to 1, not {weight!r}")
        return EnsembleModel(
            NgramModel.from_arrays(arrays, meta["ngram"], prefix="ngram."),
            CnnModel.from_arrays(config["architecture"], arrays, meta["cnn"], prefix="cnn."),
            float(weight),
        )
