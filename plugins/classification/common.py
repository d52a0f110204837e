"""What every classification engine shares: options, results, data checks, metrics, lazy model loading.

An engine trained here subclasses ``ClassifierEngine`` and provides
``_fit`` (train on texts and class ids, return the arrays, metadata and
architecture of one model file) and ``_build`` (turn a read model file into
an object with ``predict_proba(texts)``); one that loads its predictor
otherwise (another tool's checkpoint) subclasses ``Classifier`` and provides
``_load``. Everything else — result dicts, top-k and threshold, checks of
training records, evaluation with scikit-learn, stamps, pickling — lives
here.
numpy and scikit-learn are imported inside functions: the plugin module is
imported on every ``nlp-tool`` start and must stay cheap.
"""

from __future__ import annotations

import abc
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from toolkit.engine import DataError, Engine, LoadsModel, Option, RecordError, train_settings
from toolkit.contracts import TaskContract
from toolkit.records import check_records
from toolkit.text import CJK_MODES
from toolkit.training import NAME_OPTION, model_header

if TYPE_CHECKING:
    import numpy as np

TASK = "classify"
MODEL_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL_FILE = MODEL_DIR / "imdb-sentiment.nlpt"
TRAINING_SCRIPT = "scripts/train_default_classifier.py"
CJK_OPTION = Option(str, "char", "Tokens of Chinese and Japanese text: char (one per character), bigram"
                    " (overlapping character pairs) or jieba (Chinese words, segmented by jieba); kept in the"
                    " model file.", choices=CJK_MODES)
# Probabilities are rounded so that a result does not depend on the batch it
# was computed in (BLAS may sum in another order for another batch size).
DECIMALS = 6


def texts_and_labels(records: list[dict], what: str = "training data") -> tuple[list[str], list[str]]:
    """Texts and labels (as str) of ``records``; DataError naming the record for a bad one."""
    texts, labels = [], []
    for number, record in enumerate(check_records(records, ("text",), what), 1):
        text, label = record["text"], record.get("label")
        if label is None:
            raise RecordError(what, number, " has no 'label'")
        if isinstance(label, (dict, list)):
            raise RecordError(what, number, f": label {label!r} is not a single class"
                              " (multi-label data is not supported)")
        if not str(label).strip():
            raise RecordError(what, number, " has an empty label")
        texts.append(text)
        # JSONL labels may be numbers; a model's labels are strings.
        labels.append(str(label).strip())
    return texts, labels


def check_classes(labels: list[str], what: str = "training data") -> list[str]:
    """The sorted classes of ``labels``; DataError if there are fewer than two."""
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise DataError(
            f"{what}: the label column holds a single class ({classes[0]!r} in all {len(labels)} records);"
            " a classifier needs at least two"
        )
    return classes


def encode_labels(labels: list[str], classes: list[str], what: str) -> np.ndarray:
    import numpy as np

    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DataError(f"{what}: labels {unknown} are not among the model's classes {classes}")
    return np.array([index[label] for label in labels], dtype=np.int64)


def metrics(y_true: list[str], y_pred: list[str], classes: list[str]) -> dict:
    """Accuracy, per-class and macro precision/recall/F1 and the confusion matrix (scikit-learn)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    macro = precision_recall_fscore_support(y_true, y_pred, labels=classes, average="macro", zero_division=0)
    return {
        "records": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, support)
        },
        "macro": {"precision": float(macro[0]), "recall": float(macro[1]), "f1": float(macro[2])},
        "confusion_matrix": {
            "labels": list(classes),
            "matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        },
    }


def _labels_are_its_classes(text: str, result: dict) -> str | None:
    classes = result["probabilities"]
    if result["label"] not in classes:
        return f"the label {result['label']!r} is not among the probabilities' classes"
    for item in result["labels"]:
        if not (isinstance(item, dict) and item.get("label") in classes and isinstance(item.get("score"), (int, float))):
            return f"the listed label {item!r:.60} is not a {{'label', 'score'}} of a class"
    if not all(isinstance(p, (int, float)) and 0.0 <= p <= 1.0 for p in classes.values()):
        return "a probability is not a number from 0 to 1"
    return None


CONTRACT = TaskContract(
    task=TASK,
    inputs="text",
    description="Text classification: the most probable label, the top labels and every class's probability.",
    results={"label": "str", "score": "number", "labels": "list", "probabilities": "object"},
    options={
        "top_k": Option(int, 1, "Number of labels listed per input, best first.", minimum=1),
        "threshold": Option(float, 0.0, "Drop listed labels below this probability (the best is always kept).",
                            minimum=0, maximum=1),
    },
    check=_labels_are_its_classes,
)


class Classifier(LoadsModel, Engine):
    """Base of the classification engines: a loaded predictor (``_load`` gives it and the metadata, whose
    "labels" name its columns) in, label + probabilities out; evaluation on labelled records."""

    task = TASK
    inputs = "text"
    version = "1.0"
    record_fields: ClassVar[tuple[str, ...]] = ("text", "label")
    contract = CONTRACT
    options = dict(CONTRACT.options)

    @property
    def labels(self) -> list[str]:
        return list(self._loaded()[1]["labels"])

    def loaded_metadata(self) -> dict:
        return self._loaded()[1]

    # -- prediction ----------------------------------------------------------

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Class probabilities (N, C), columns in the order of :attr:`labels`."""
        return self._loaded()[0].predict_proba(texts)

    def run(self, inputs: list) -> list[dict]:
        if not inputs:
            return []
        if not all(text.strip() for text in inputs):
            # Without words every model answers with its priors: a confident-looking guess about nothing.
            raise ValueError("an empty text: there is nothing to classify")
        labels = self.labels
        top_k, threshold = self.settings["top_k"], self.settings["threshold"]
        results = []
        rows, notes = self._predict(list(inputs))
        for row, note in zip(rows, notes):
            probs = [round(float(p), DECIMALS) for p in row]
            # Ties go to the earlier label, whatever the batch.
            ranked = sorted(range(len(labels)), key=lambda c: (-probs[c], c))
            listed = [c for c in ranked[:top_k] if probs[c] >= threshold] or ranked[:1]
            results.append({
                "label": labels[ranked[0]],
                "score": probs[ranked[0]],
                "labels": [{"label": labels[c], "score": probs[c]} for c in listed],
                "probabilities": dict(zip(labels, probs)),
                **note,
            })
        return results

    def _predict(self, texts: list[str]) -> tuple[np.ndarray, list[dict]]:
        """Class probabilities (N, C), and what each result says besides them (none here)."""
        return self.predict_proba(texts), [{} for _ in texts]

    def format_text(self, result: dict) -> str:
        return "\t".join(f"{item['label']}\t{item['score']:.4f}" for item in result["labels"])

    def evaluate(self, records: list[dict]) -> dict:
        """Metrics of the loaded model on ``records`` ({"text", "label"})."""
        texts, labels = texts_and_labels(records, "evaluation data")
        classes = self.labels
        encode_labels(labels, classes, "evaluation data")
        probs = self.predict_proba(texts)
        predicted = [classes[i] for i in probs.argmax(axis=1)]
        return {"engine": f"{TASK}:{self.name}", "model": self.model, **metrics(labels, predicted, classes)}


class ClassifierEngine(Classifier):
    """Base of the classification engines trained here: a model file in, label + probabilities out."""

    train_options: ClassVar[dict[str, Option]] = {"name": NAME_OPTION}
    default_model = None

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        self.model_metadata()

    # -- what subclasses provide ---------------------------------------------

    @classmethod
    @abc.abstractmethod
    def _fit(cls, texts: list[str], y: np.ndarray, classes: list[str], valid: tuple[list[str], np.ndarray] | None,
             seed: int, progress: bool | None, settings: dict[str, Any],
             output: str) -> tuple[dict, dict, dict | None, dict]:
        """Train (a trainer's checkpoint goes beside ``output``); return the model file's arrays, metadata and
        architecture, and what the trainer reported (``toolkit.training.history_report``; {} without one)."""

    @classmethod
    @abc.abstractmethod
    def _build(cls, config: dict, arrays: dict[str, np.ndarray]) -> Any:
        """An object with ``predict_proba(texts) -> (N, C)`` from a read model file."""

    # -- loading -------------------------------------------------------------

    def _load(self) -> tuple[Any, dict]:
        """(predictor, metadata) of the model file."""
        return self._read(self.model)

    def _read(self, model: str) -> tuple[Any, dict]:
        from toolkit.nn import ModelFileError, read_model_file

        config, arrays = read_model_file(model)
        try:
            built = self._build(config, arrays)
        except ModelFileError as error:
            raise ModelFileError(f"{model}: {error}") from None
        except (KeyError, TypeError, ValueError) as error:
            # A readable file whose arrays or settings do not make a model of this engine.
            raise ModelFileError(f"{model}: not a usable classification model ({type(error).__name__}: {error})") from error
        return built, config.get("metadata", {})

    # -- training -------------------------------------------------------------

    @classmethod
    def train(cls, records: list[dict], output: str, *, valid: list[dict] | None = None, seed: int = 0,
              progress: bool | None = None, **options: Any) -> dict:
        """Fit on ``records`` ({"text", "label"}), write one model file to ``output``, return a report."""
        from toolkit.nn import save_arrays

        settings = train_settings(cls, options)
        texts, labels = texts_and_labels(records)
        classes = check_classes(labels)
        y = encode_labels(labels, classes, "training data")
        held = None
        if valid is not None:
            valid_texts, valid_labels = texts_and_labels(valid, "validation data")
            held = (valid_texts, encode_labels(valid_labels, classes, "validation data"))
        start = time.perf_counter()
        arrays, metadata, architecture, trained = cls._fit(texts, y, classes, held, seed, progress, settings,
                                                           str(output))
        seconds = time.perf_counter() - start
        header = model_header(cls, output, settings, seed, texts=texts, records=len(texts),
                              valid_records=None if valid is None else len(valid), seconds=seconds, **trained)
        save_arrays(output, arrays, {**header, "labels": classes, **metadata}, architecture=architecture)
        report = {"engine": f"{TASK}:{cls.name}", "model": str(output), "name": header["name"], "labels": classes,
                  "records": len(texts), "seconds": round(seconds, 2), **trained}
        if valid is not None:
            report["metrics"] = cls(model=str(output)).evaluate(valid)
        return report
