"""The "ensemble" engine: a weighted average of the ngram and cnn engines' probabilities.

The two models make different mistakes — the n-gram model sees every
phrase of the text but no word similarity, the CNN sees learned word
vectors but only the last ``maxlen`` words — so their average beats both.
Both live in one model file: the n-gram arrays under ``ngram.``, the CNN's
under ``cnn.`` (its layer tree is the file's architecture), both configs in
the metadata. Training picks the CNN's best epoch and the averaging weight
(lowest log-loss) on the validation data (never fitted on); without any, the
CNN keeps its last epoch and the weight must be given (``ngram_weight``).

With ``cnn_members`` N above 1, N CNNs of the same recipe are trained with
different seeds (member k: ``seed + MEMBER_SEED_STEP * k``) and their
probabilities averaged before the n-gram weight is applied, meant to even
out the seed, which moves a CNN's validation score by about a point on a
small training set (on ChnSentiCorp three members scored below one: the
model card of chnsenticorp-sentiment). They share the tokenizer
and the architecture; member k > 0's arrays are under ``cnn<k+1>.``
(``cnn2.``, ``cnn3.``, ...) and the metadata says ``cnn_members``.
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
# Member k of cnn_members trains with seed + 5k: build_network seeds its layers seed .. seed + 4, so no two
# members draw a layer from the same random stream.
MEMBER_SEED_STEP = 5
MAX_CNN_MEMBERS = 16


class EnsembleModel:
    def __init__(self, ngram: NgramModel, cnns: list[CnnModel], ngram_weight: float) -> None:
        self.ngram, self.cnns, self.ngram_weight = ngram, cnns, ngram_weight

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        w, tokenizer = self.ngram_weight, self.cnns[0].tokenizer
        if (tokenizer.lower, tokenizer.cjk) != (True, self.ngram.cjk):
            return w * self.ngram.predict_proba(texts) + (1.0 - w) * cnn_mean(self.cnns, texts)
        # Both models split text alike (always, for a model trained by this engine): tokenize once. Negation
        # marks only prefix the tokens of tokenize (ngram.negated_tokens): the CNN reads them unmarked.
        tokens = [text_tokens(text, self.ngram.cjk, self.ngram.negation) for text in texts]
        plain = ([[t.removeprefix(NEGATED) for t in words] for words in tokens] if self.ngram.negation else tokens)
        ids = [tokenizer.tokens_to_ids(t) for t in plain]  # the members share the tokenizer
        p_cnn = sum(cnn.predict_proba_ids(ids) for cnn in self.cnns) / len(self.cnns)
        return w * self.ngram.predict_proba_tokens(tokens) + (1.0 - w) * p_cnn


def cnn_mean(cnns: list[CnnModel], texts: list[str]) -> np.ndarray:
    """The mean of the CNN members' probabilities of ``texts``."""
    return sum(cnn.predict_proba(texts) for cnn in cnns) / len(cnns)


def member_prefix(k: int) -> str:
    """Where member ``k`` (from 0) keeps its arrays: ``cnn.`` for the first (as in single-CNN files), then
    ``cnn2.``, ``cnn3.``, ..."""
    return "cnn." if k == 0 else f"cnn{k + 1}."


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
        "cnn_members": Option(int, 1, "CNNs trained with different seeds whose probabilities are averaged (their"
                              " mean is the CNN side of the ensemble); not with resume or max_minutes.",
                              minimum=1, maximum=MAX_CNN_MEMBERS),
        "ngram_weight": Option(float, -1.0, "Weight of the n-gram probabilities, 0 to 1; negative: tuned on"
                               " validation data (which training then needs).", maximum=1),
    }

    @classmethod
    def _fit(cls, texts, y, classes, valid, seed, progress, settings, output):
        weight = settings["ngram_weight"]
        if valid is None and weight < 0:
            raise OptionError("the ensemble engine tunes its n-gram weight on validation data: give validation data"
                              " (--valid, or a --valid-split above 0) or the weight (--ngram-weight 0.5)")
        members = settings["cnn_members"]
        if members > 1 and (settings["resume"] or settings["max_minutes"]):
            # Each member is a run of the trainer with its own checkpoint; one resume or time limit cannot
            # say which member to continue or how to share the minutes.
            raise OptionError("cnn_members above 1 trains the members one after the other and cannot resume or stop"
                              " at a time limit: drop resume and max_minutes, or train one member")
        cnns, reports = [], []
        for k in range(members):
            member_seed = seed + MEMBER_SEED_STEP * k
            cnn, cnn_info, report = fit_network(texts, y, len(classes), valid, member_seed, progress, settings, output)
            cnns.append(cnn)
            reports.append({"seed": member_seed, **report})
        ngram_arrays, ngram_info = fit_arrays(texts, y, len(classes), settings, seed)
        if weight < 0:
            ngram = NgramModel.from_arrays(ngram_arrays, ngram_info)
            weight = best_weight(ngram.predict_proba(valid[0]), cnn_mean(cnns, valid[0]), valid[1])
        arrays = {"ngram." + name: value for name, value in ngram_arrays.items()}
        for k, cnn in enumerate(cnns):
            arrays.update(network_arrays(cnn, member_prefix(k), float16=settings["float16"]))
        # The tokenizer is fitted on the same texts by every member: the first one's info (cnn_info) is theirs.
        metadata: dict[str, Any] = {"ngram": ngram_info, "cnn": cnn_info, "ngram_weight": weight}
        # The report (and the file's "training") keeps the first member's epochs where a single CNN's go; the
        # training seed is the first member's already.
        trained = {key: value for key, value in reports[0].items() if key != "seed"}
        if members > 1:
            metadata["cnn_members"] = members
            trained["cnn_members"] = reports
        return arrays, metadata, cnns[0].network.to_config(), trained

    @classmethod
    def _build(cls, config, arrays):
        meta = config["metadata"]
        weight = meta["ngram_weight"]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
            raise ValueError(f"the n-gram weight must be a number from 0 to 1, not {weight!r}")
        # Files written before the option hold one CNN.
        members = meta.get("cnn_members", 1)
        if isinstance(members, bool) or not isinstance(members, int) or not 1 <= members <= MAX_CNN_MEMBERS:
            raise ValueError(f"cnn_members must be a whole number from 1 to {MAX_CNN_MEMBERS}, not {members!r}")
        return EnsembleModel(
            NgramModel.from_arrays(arrays, meta["ngram"], prefix="ngram."),
            [CnnModel.from_arrays(config["architecture"], arrays, meta["cnn"], prefix=member_prefix(k))
             for k in range(members)],
            float(weight),
        )
