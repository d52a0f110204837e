"""scikit-learn estimators over the toolkit: ``TextClassifier`` (a classify engine) and ``Summarizer``.

``TextClassifier.fit`` trains through :func:`toolkit.api.train`, the code
behind ``nlp-tool train classify``, into a model file that lives only for
the call: the estimator keeps the file's bytes, which is what it pickles
(model files are arrays plus JSON, never pickles themselves), and the
engine that read them. ``Summarizer`` is a transformer over
:func:`toolkit.pipeline`'s ``summarize`` engines, to put summaries in front
of a vectorizer in a ``sklearn.pipeline.Pipeline``.

Not imported by the command line or by ``import toolkit``: it needs numpy
and scikit-learn at import (docs/sklearn.md).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from toolkit.api import pipeline, train
from toolkit.plugins import get_registry

__all__ = ["Summarizer", "TextClassifier"]

TASK = "classify"


def _texts(X: Any, empty: bool = True) -> list[str]:
    """``X`` as a list of str: a 1-D iterable of texts (list, tuple, 1-D array, pandas Series).

    ValueError, as scikit-learn raises for unusable input, for a single
    string (a common slip for ``[text]``), a non-iterable, a 2-D array or
    frame, no texts, an item that is not a str, or (``empty=False``) a text
    of white space only.
    """
    if isinstance(X, (str, bytes)):
        raise ValueError("Iterable over raw text documents expected, string object received.")
    # A DataFrame iterates over its column names and a 2-D array over rows: neither is a list of texts.
    if getattr(X, "ndim", 1) != 1:
        raise ValueError(f"expected a 1-D iterable of texts, got {getattr(X, 'ndim')} dimensions;"
                         " select one column of texts")
    if isinstance(X, Mapping) or not isinstance(X, Iterable):
        raise ValueError(f"expected an iterable of texts, not {type(X).__name__}")
    texts = list(X)
    if not texts:
        raise ValueError("Found 0 texts, while a minimum of 1 is required.")
    for place, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"text {place} is a {type(text).__name__}, not a str")
        if not empty and not text.strip():
            # The engines refuse these too: without words a model answers with its priors, a guess about nothing.
            raise ValueError(f"text {place} is empty: there is nothing to classify")
    return texts


def _text_tags(tags: Any) -> Any:
    # Texts in, not a numeric matrix: scikit-learn's tooling (estimator_checks among it) reads these.
    tags.input_tags.two_d_array = False
    tags.input_tags.string = True
    return tags


def _engine_labels(classes: np.ndarray) -> list[str]:
    """The labels the engine trains on for ``classes``: their strings, or their numbers where strings would
    merge or drop classes."""
    names = [str(label).strip() for label in classes]
    # A model's labels are stripped strings: 1 and "1", or "a" and " a", would be one class there, and "" none.
    if all(names) and len(set(names)) == len(names):
        return names
    return [str(i) for i in range(len(classes))]


def _loaded_engine(name: str, model: bytes) -> Any:
    """The classify engine ``name`` with the model file ``model`` read."""
    engine_class = get_registry().engine(TASK, name).engine_class
    with tempfile.TemporaryDirectory(prefix="nlp-tool-sklearn-") as folder:
        path = os.path.join(folder, "model.nlpt")
        Path(path).write_bytes(model)
        engine = engine_class(model=path)
        # The file is read on first use; that must be now, while it exists.
        engine.loaded_metadata()
    return engine


def _without_model(report: dict) -> dict:
    return {key: value for key, value in report.items() if key != "model"}


class TextClassifier(ClassifierMixin, BaseEstimator):
    """A text classifier trained by one of the toolkit's classify engines, as a scikit-learn estimator.

    ``engine``: a trainable classify engine (``ngram``, ``cnn``, ``ensemble``
    or one a plugin adds). ``epochs``, ``ngram`` and ``c`` are the engine's
    training options of that name (None: the engine's default; a value the
    engine does not take is an OptionError, a ValueError); ``train_options``
    any others (``{"hash_bits": 16}``). ``seed`` makes training repeatable;
    ``valid_split`` holds that fraction of the training texts out for the
    engine's validation (the cnn picks its best epoch on it, the ensemble
    its n-gram weight), 0 for none; ``verbose`` shows training progress on
    stderr.

    Fitted attributes: ``classes_`` (the sorted distinct labels, of the
    type given) and ``report_`` (what training reported, as
    :func:`toolkit.train` returns it, with the validation ``metrics`` when
    ``valid_split`` is above 0, less the temporary model file's path).
    """

    def __init__(
        self,
        engine: str = "ngram",
        *,
        epochs: int | None = None,
        ngram: int | None = None,
        c: float | None = None,
        train_options: dict[str, Any] | None = None,
        seed: int = 0,
        valid_split: float = 0.0,
        verbose: bool = False,
    ) -> None:
        self.engine = engine
        self.epochs = epochs
        self.ngram = ngram
        self.c = c
        self.train_options = train_options
        self.seed = seed
        self.valid_split = valid_split
        self.verbose = verbose

    def _options(self) -> dict[str, Any]:
        named = {name: value for name, value in (("epochs", self.epochs), ("ngram", self.ngram), ("c", self.c))
                 if value is not None}
        others = dict(self.train_options or {})
        twice = sorted(set(named) & set(others))
        if twice:
            raise ValueError(f"{', '.join(twice)} given both as a parameter and in train_options")
        return {**others, **named}

    def fit(self, X: Iterable[str], y: Any) -> TextClassifier:
        """Train the engine on the texts ``X`` and their labels ``y`` (strings or integers)."""
        texts = _texts(X, empty=False)
        y = column_or_1d(y, warn=True)
        check_consistent_length(texts, y)
        check_classification_targets(y)
        classes, ids = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y holds a single class ({classes[0]!r}); a classifier needs at least two")
        labels = _engine_labels(classes)
        records = [{"text": text, "label": labels[i]} for text, i in zip(texts, ids)]
        with tempfile.TemporaryDirectory(prefix="nlp-tool-sklearn-") as folder:
            path = os.path.join(folder, "model.nlpt")
            report = train(TASK, records, engine=self.engine, output=path, valid_split=self.valid_split,
                           seed=self.seed, progress=self.verbose, **self._options())
            model = Path(path).read_bytes()
        self.classes_ = classes
        self._model, self._engine_name = model, report["engine"].split(":", 1)[1]
        self._load()
        # The model file it names was temporary: the estimator is the model now.
        self.report_ = _without_model(report)
        if isinstance(report.get("metrics"), dict):
            self.report_["metrics"] = _without_model(report["metrics"])
        return self

    def _load(self) -> None:
        self._engine = _loaded_engine(self._engine_name, self._model)
        place = {label: i for i, label in enumerate(_engine_labels(self.classes_))}
        # Where each of the engine's probability columns goes among classes_ (its own order is its labels').
        self._columns = np.array([place[label] for label in self._engine.labels], dtype=np.intp)

    def predict_proba(self, X: Iterable[str]) -> np.ndarray:
        """Class probabilities, shape (texts, classes), columns in the order of ``classes_``."""
        check_is_fitted(self)
        texts = _texts(X, empty=False)
        probabilities = self._engine.predict_proba(texts)
        ordered = np.empty_like(probabilities, dtype=np.float64)
        ordered[:, self._columns] = probabilities
        return ordered

    def predict(self, X: Iterable[str]) -> np.ndarray:
        """The most probable label of each text (the earlier class of ``classes_`` on a tie)."""
        probabilities = self.predict_proba(X)  # first: it says NotFittedError, where classes_ is missing
        return self.classes_[np.argmax(probabilities, axis=1)]

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())  # the object's own __dict__, not a copy
        # The engine's loaded model is not picklable and its file is gone: the model's bytes stand for both.
        state.pop("_engine", None)
        state.pop("_columns", None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "_model" in state:
            self._load()

    def __sklearn_tags__(self) -> Any:
        return _text_tags(super().__sklearn_tags__())


class Summarizer(TransformerMixin, BaseEstimator):
    """Texts to their summaries by a ``summarize`` engine, as a scikit-learn transformer.

    ``engine`` (``trained``, ``centrality``, ``lead``), ``model`` (a model
    file for ``trained``; None: the shipped one) and the summary length,
    as for ``toolkit.pipeline("summarize", ...)``: ``sentences`` (0: about
    the square root of the text's sentences), or ``ratio`` of them, or
    about ``words`` words. ``fit`` learns nothing: it builds the pipeline
    (``pipeline_``), which checks the parameters and reads the model.
    """

    def __init__(self, engine: str = "trained", *, model: str | None = None, sentences: int = 0, ratio: float = 0.0,
                 words: int = 0) -> None:
        self.engine = engine
        self.model = model
        self.sentences = sentences
        self.ratio = ratio
        self.words = words

    def fit(self, X: Iterable[str], y: Any = None) -> Summarizer:
        """Build the summarize pipeline; ``X`` is checked, ``y`` ignored."""
        _texts(X)
        self.pipeline_ = pipeline("summarize", self.engine, self.model, sentences=self.sentences, ratio=self.ratio,
                                  words=self.words)
        # The stamp reads the model: a missing or damaged one fails the fit, not every transform after it.
        self.pipeline_.stamp()
        return self

    def transform(self, X: Iterable[str]) -> list[str]:
        """The summary of each text, in order."""
        check_is_fitted(self)
        return [result["summary"] for result in self.pipeline_(_texts(X))]

    def __sklearn_tags__(self) -> Any:
        return _text_tags(super().__sklearn_tags__())
