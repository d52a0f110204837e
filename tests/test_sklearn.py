"""toolkit.sklearn: the estimator contract of TextClassifier and Summarizer, on small synthetic texts."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import random
import re
from pathlib import Path

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks

from toolkit.engine import OptionError
from toolkit.errors import ModelNotFoundError
from toolkit.sklearn import Summarizer, TextClassifier, _engine_labels

WORDS = {
    "pos": "good great excellent wonderful loved superb".split(),
    "neg": "bad awful terrible boring hated poor".split(),
    "sport": "match team score goal league coach".split(),
}
FILLER = "movie film plot actor story the a it was and".split()
THREE = ("pos", "neg", "sport")
# A text CNN small enough to learn the synthetic texts in a fraction of a second.
SMALL_CNN = {"max_len": 16, "vocab_size": 100, "dim": 16, "filters": 16, "hidden": 16, "learning_rate": 0.01,
             "batch": 32}


def synthetic(n: int, seed: int, labels: tuple = ("pos", "neg")) -> tuple[list[str], list]:
    """Texts of three keywords of their class among six neutral words. The i-th label of ``labels`` uses
    the i-th word list, so that any labels (ints, look-alike strings) name separable classes."""
    rng = random.Random(seed)
    lists = list(WORDS.values())
    texts, y = [], []
    for _ in range(n):
        i = rng.randrange(len(labels))
        words = [rng.choice(lists[i]) for _ in range(3)] + [rng.choice(FILLER) for _ in range(6)]
        rng.shuffle(words)
        texts.append(" ".join(words))
        y.append(labels[i])
    return texts, y


@pytest.fixture(scope="module")
def fitted() -> TextClassifier:
    return TextClassifier().fit(*synthetic(200, 0, THREE))


# -- parameters ---------------------------------------------------------------


def test_get_params_and_set_params_round_trip():
    model = TextClassifier("cnn", epochs=4, train_options={"dim": 8}, seed=3)
    params = model.get_params()
    assert params == {"engine": "cnn", "epochs": 4, "ngram": None, "c": None, "train_options": {"dim": 8},
                      "seed": 3, "valid_split": 0.0, "verbose": False}
    other = TextClassifier().set_params(**params)
    assert other.get_params() == params
    assert other.set_params(c=0.5, engine="ngram") is other and other.c == 0.5 and other.engine == "ngram"


def test_clone_is_an_unfitted_copy_with_equal_params(fitted):
    copy = clone(fitted)
    assert copy is not fitted and copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "classes_") and not hasattr(copy, "report_")
    with pytest.raises(NotFittedError):
        copy.predict(["good film"])


@pytest.mark.parametrize("estimator", [TextClassifier(), Summarizer()], ids=lambda e: type(e).__name__)
def test_scikit_learn_api_checks_that_take_no_numeric_data(estimator):
    # The rest of estimator_checks feeds numeric matrices, which a text estimator rightly refuses; with
    # two_d_array=False in the tags, check_estimator itself skips every check.
    name = type(estimator).__name__
    for check in (estimator_checks.check_estimator_cloneable, estimator_checks.check_estimator_tags_renamed,
                  estimator_checks.check_valid_tag_types, estimator_checks.check_estimator_repr,
                  estimator_checks.check_no_attributes_set_in_init, estimator_checks.check_mixin_order,
                  estimator_checks.check_get_params_invariance, estimator_checks.check_set_params,
                  estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
                  estimator_checks.check_estimators_unfitted):
        check(name, estimator)
    estimator_checks.check_parameters_default_constructible(name, estimator)


# -- fit, predict, predict_proba ---------------------------------------------------


def test_learns_separable_texts(fitted):
    texts, y = synthetic(150, 1, THREE)
    assert is_classifier(fitted)
    assert list(fitted.classes_) == ["neg", "pos", "sport"]
    assert fitted.score(texts, y) >= 0.95
    assert fitted.report_["engine"] == "classify:ngram" and fitted.report_["train_records"] == 200
    assert "model" not in fitted.report_, "the temporary model file is gone: the report must not name it"


def test_predict_proba_rows_are_distributions_ordered_as_classes(fitted):
    texts, _ = synthetic(40, 2, THREE)
    probabilities = fitted.predict_proba(texts)
    assert probabilities.shape == (40, 3) and probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    np.testing.assert_array_equal(fitted.classes_[probabilities.argmax(axis=1)], fitted.predict(texts))
    assert fitted.predict(["great great excellent"])[0] == "pos"
    assert fitted.predict_proba(["match goal league"])[0].argmax() == list(fitted.classes_).index("sport")


def test_int_labels_sort_as_numbers_and_come_back_as_ints():
    # As strings "10" < "2" < "7": the engine's columns are in that order, classes_ in 2, 7, 10.
    labels = (10, 2, 7)
    texts, y = synthetic(200, 3, labels)
    model = TextClassifier().fit(texts, np.array(y))
    assert model.classes_.tolist() == [2, 7, 10] and model.classes_.dtype.kind == "i"
    test_texts, test_y = synthetic(100, 4, labels)
    predicted = model.predict(test_texts)
    assert predicted.dtype.kind == "i" and np.mean(predicted == np.array(test_y)) >= 0.95
    # Column j of predict_proba is classes_[j]: texts of label 10's words put their mass in column 2.
    assert model.predict_proba(["good great excellent"])[0].argmax() == 2


def test_labels_whose_strings_would_merge_train_as_numbers():
    labels = ("a", " a", "")
    assert _engine_labels(np.array(sorted(labels))) == ["0", "1", "2"]
    assert _engine_labels(np.array(["neg", "pos"])) == ["neg", "pos"]
    texts, y = synthetic(200, 5, labels)
    model = TextClassifier().fit(texts, y)
    assert model.classes_.tolist() == ["", " a", "a"]
    test_texts, test_y = synthetic(100, 6, labels)
    assert model.score(test_texts, test_y) >= 0.95


@pytest.mark.parametrize("X", [("a", "b"), np.array(["a", "b"]), iter(["a", "b"])], ids=["tuple", "array", "iterator"])
def test_texts_in_any_one_dimensional_iterable(fitted, X):
    assert fitted.predict_proba(X).shape == (2, 3)


def test_same_seed_same_model():
    texts, y = synthetic(120, 7)
    first = TextClassifier("cnn", epochs=2, train_options=SMALL_CNN, seed=1).fit(texts, y)
    again = TextClassifier("cnn", epochs=2, train_options=SMALL_CNN, seed=1).fit(texts, y)
    np.testing.assert_array_equal(first.predict_proba(texts[:20]), again.predict_proba(texts[:20]))


def test_valid_split_trains_the_ensemble_and_reports_its_metrics():
    texts, y = synthetic(200, 8)
    model = TextClassifier("ensemble", epochs=6, train_options=SMALL_CNN, valid_split=0.2).fit(texts, y)
    report = model.report_
    assert report["train_records"] == 160 and report["valid_records"] == 40
    assert report["metrics"]["accuracy"] >= 0.9 and "model" not in report["metrics"]
    assert report["metrics"]["confusion_matrix"]["labels"] == ["neg", "pos"]


# -- pickling -----------------------------------------------------------------------


@pytest.mark.parametrize("engine, options", [("ngram", {}), ("cnn", {"epochs": 6, "train_options": SMALL_CNN})])
def test_pickled_estimator_predicts_the_same(engine, options):
    texts, y = synthetic(150, 9, THREE)
    model = TextClassifier(engine, **options).fit(texts, y)
    again = pickle.loads(pickle.dumps(model))
    assert again.get_params() == model.get_params()
    np.testing.assert_array_equal(again.classes_, model.classes_)
    test_texts, _ = synthetic(30, 10, THREE)
    np.testing.assert_array_equal(again.predict_proba(test_texts), model.predict_proba(test_texts))
    # The model file's bytes travel, not the loaded engine (which holds unpicklable arrays and a gone path).
    assert "_engine" not in model.__getstate__() and "_engine" in model.__dict__


def test_unfitted_estimator_pickles():
    model = pickle.loads(pickle.dumps(TextClassifier(c=2.0)))
    assert model.c == 2.0 and not hasattr(model, "classes_")


# -- errors ----------------------------------------------------------------------------


def test_not_fitted():
    for method in (TextClassifier().predict, TextClassifier().predict_proba, Summarizer().transform):
        with pytest.raises(NotFittedError):
            method(["good film"])


@pytest.mark.parametrize("X, message", [
    ("good film", "string object received"),
    (5, "iterable of texts, not int"),
    ({"text": "good"}, "iterable of texts, not dict"),
    (np.array([["good"], ["bad"]]), "1-D"),
    ([], "Found 0 texts"),
    (["good", 3], "text 1 is a int"),
    (["good", "  "], "text 1 is empty"),
])
def test_unusable_texts_are_a_value_error(fitted, X, message):
    with pytest.raises(ValueError, match=message):
        fitted.predict(X)
    with pytest.raises(ValueError, match=message):
        TextClassifier().fit(X, ["pos", "neg"])


def test_unusable_labels_are_a_value_error():
    texts, y = synthetic(20, 11)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        TextClassifier().fit(texts, y[:-1])
    with pytest.raises(ValueError, match="single class"):
        TextClassifier().fit(texts, ["pos"] * len(texts))
    with pytest.raises(ValueError, match="Unknown label type"):
        TextClassifier().fit(texts, np.linspace(0, 1, len(texts)))
    with pytest.raises(ValueError, match="1d array"):
        TextClassifier().fit(texts, np.array([y, y]).T)


def test_bad_options_are_the_toolkits_option_errors():
    texts, y = synthetic(20, 12)
    with pytest.raises(OptionError, match="epochs"):  # the ngram engine trains no epochs
        TextClassifier(epochs=3).fit(texts, y)
    with pytest.raises(ValueError, match="epochs given both"):
        TextClassifier("cnn", epochs=3, train_options={"epochs": 2}).fit(texts, y)
    with pytest.raises(LookupError, match="nope"):
        TextClassifier("nope").fit(texts, y)


# -- scikit-learn's tools ---------------------------------------------------------------


def test_in_a_pipeline_after_a_summarizer():
    # The class words are in the first sentence only: the lead summary keeps them and drops the noise.
    texts, y = synthetic(120, 13)
    noise = random.Random(0)
    documents = [f"{text}. " + " ".join(" ".join(noise.sample(FILLER, 5)).capitalize() + "." for _ in range(3))
                 for text in texts]
    steps = Pipeline([("summarize", Summarizer("lead", sentences=1)), ("classify", TextClassifier())])
    steps.fit(documents, y)
    assert steps.named_steps["summarize"].transform(documents[:2]) == [texts[0] + ".", texts[1] + "."]
    assert steps.score(documents, y) >= 0.95
    assert steps.predict_proba(documents[:3]).shape == (3, 2)


def test_cross_val_score():
    texts, y = synthetic(150, 14, THREE)
    scores = cross_val_score(TextClassifier(), texts, y, cv=3)
    assert scores.shape == (3,) and scores.min() >= 0.9


def test_grid_search_in_two_worker_processes():
    # n_jobs=2 sends the estimator to loky worker processes: it must pickle and import there. A second
    # "score", the process id of the fit, shows that it did.
    texts, y = synthetic(150, 15)
    scoring = {"accuracy": "accuracy", "process": lambda estimator, X, y: os.getpid()}
    with parallel_config(backend="loky"):
        search = GridSearchCV(TextClassifier(), {"ngram": [1, 2]}, scoring=scoring, refit="accuracy", cv=3,
                              n_jobs=2).fit(texts, y)
    processes = {search.cv_results_[f"split{i}_test_process"][j] for i in range(3) for j in range(2)}
    assert os.getpid() not in processes
    assert search.best_params_["ngram"] in (1, 2) and search.best_score_ >= 0.9
    assert search.best_estimator_.report_["engine"] == "classify:ngram"
    assert search.score(*synthetic(60, 16)) >= 0.9


# -- Summarizer --------------------------------------------------------------------------


def test_summarizer_with_the_shipped_model():
    article = ("The council met on Monday to discuss the budget. It approved the plan after a long debate. "
               "Work on the new bridge starts in May. Residents were invited to comment.")
    summarizer = Summarizer(sentences=2)
    (summary,) = summarizer.fit_transform([article])
    assert summary and summary.count(".") == 2 and all(s.strip() + "." in article for s in summary.split(".")[:2])
    assert pickle.loads(pickle.dumps(summarizer)).transform([article]) == [summary]


def test_summarizer_parameters_are_checked_at_fit():
    with pytest.raises(OptionError, match="sentences"):
        Summarizer("lead", sentences=-1).fit(["One. Two."])
    with pytest.raises(ValueError, match="string object received"):
        Summarizer("lead").fit_transform("One. Two.")
    with pytest.raises(ModelNotFoundError):
        Summarizer(model="no-such-model.nlpt").fit(["One. Two."])


def test_the_example_of_docs_sklearn_md_prints_what_it_says():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "sklearn.md").read_text(encoding="utf-8")
    code = re.search(r"^## Example\n\n```python\n(.*?)^```", docs, re.M | re.S).group(1)
    expected = re.findall(r"^print\(.*# -> (.*)$", code, re.M)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "docs/sklearn.md", "exec"), {})
    assert expected and printed.getvalue().splitlines() == expected
