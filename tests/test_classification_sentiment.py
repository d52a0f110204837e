"""English sentiment beyond whole movie reviews (issue 24 item 4): negation marks in the n-gram features,
the training script's sentence records, and the shipped model on short negated phrases and on the UCI
sentences against its card."""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from toolkit_plugins.classification.common import DEFAULT_MODEL_FILE, TRAINING_SCRIPT
from toolkit_plugins.classification.ensemble import EnsembleClassifier
from toolkit_plugins.classification.ngram import NEGATED, NgramClassifier, negated_tokens
from toolkit.engine import OptionError
from toolkit.nn import ModelFileError, read_model_file, save_arrays
from toolkit.text import tokenize

UCI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "uci_sentiment_sentences"


def test_negation_marks_the_words_after_a_negator_up_to_the_next_punctuation():
    assert negated_tokens("Not bad at all. I didn't like it, but the cast was great!") == [
        "not", "¬bad", "¬at", "¬all", "i", "didn't", "¬like", "¬it", "but", "the", "cast", "was", "great"]
    assert negated_tokens("I dont think so") == ["i", "dont", "¬think", "¬so"]
    # An HTML line break ends a scope too: it ends IMDb's paragraphs.
    assert negated_tokens("never again<br /><br />great") == ["never", "¬again", "great"]


@pytest.mark.parametrize("text", [
    "Not bad at all. I didn't like it, but... well: ok!",
    'No <a href="http://x.com/a.b">link</a> here; &quot;not&quot; fine, &amp; 3.14 e.g. U.S.',
    "Nothing 好电影 not 很好。 no",
    "",
])
def test_negation_marks_only_prefix_the_tokens_of_tokenize(text):
    # The ensemble's CNN reads the marked tokens unmarked: they must be tokenize's, whatever the text.
    assert [t.removeprefix(NEGATED) for t in negated_tokens(text)] == tokenize(text)


NEGATION_DATA = [("good film", "pos"), ("bad film", "neg"), ("not good film", "neg"), ("not bad film", "pos"),
                 ("great plot", "pos"), ("awful plot", "neg"), ("never great", "neg"), ("never awful", "pos")]


def negation_records(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [{"text": text, "label": label} for text, label in (rng.choice(NEGATION_DATA) for _ in range(n))]


def test_an_ngram_model_with_negation_reads_a_negated_word_as_its_own_feature(tmp_path):
    path = tmp_path / "neg.nlpt"
    NgramClassifier.train(negation_records(400, 0), str(path), ngram=1, hash_bits=14, negation=True)
    assert read_model_file(path)[0]["metadata"]["hashing"]["negation"] is True
    engine = NgramClassifier(model=str(path))
    # Unigrams only: "not bad" can be told from "bad" only through the mark on "bad".
    assert [r["label"] for r in engine.run(["bad", "not bad", "good", "not good", "never awful."])] == [
        "neg", "pos", "pos", "neg", "pos"]
    # The scope ends at the full stop: "good" after it is not negated.
    assert engine.run(["not bad. good"])[0]["label"] == "pos"


def test_an_ensemble_with_negation_tokenizes_once_with_the_members_results(tmp_path):
    path = tmp_path / "ens.nlpt"
    options = {"ngram": 2, "hash_bits": 14, "negation": True, "epochs": 2, "max_len": 16, "vocab_size": 50,
               "dim": 8, "filters": 8, "hidden": 8, "ngram_weight": 0.6}
    EnsembleClassifier.train(negation_records(200, 1), str(path), **options)
    model = EnsembleClassifier(model=str(path))._loaded()[0]
    assert model.ngram.negation
    texts = ["not bad at all.", "Not good, but great!", "never <br />awful", "no"]
    separate = 0.6 * model.ngram.predict_proba(texts) + 0.4 * model.cnns[0].predict_proba(texts)
    np.testing.assert_array_equal(model.predict_proba(texts), separate)


def test_a_bad_negation_option_or_file_setting_is_refused(tmp_path):
    with pytest.raises(OptionError, match="negation"):
        NgramClassifier.train(negation_records(20, 2), str(tmp_path / "m.nlpt"), negation="sometimes")
    path = tmp_path / "m.nlpt"
    NgramClassifier.train(negation_records(40, 2), str(path), hash_bits=12, negation=True)
    config, arrays = read_model_file(path)
    config["metadata"]["hashing"]["negation"] = "yes"
    save_arrays(tmp_path / "bad.nlpt", arrays, config["metadata"])
    with pytest.raises(ModelFileError, match="'negation' must be true or false, not 'yes'"):
        NgramClassifier(model=str(tmp_path / "bad.nlpt")).run(["not bad"])


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_default_classifier_sentences",
                                                  Path(__file__).resolve().parents[1] / TRAINING_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up in sys.modules
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_review_sentences_are_labelled_with_their_review_and_split_at_line_breaks(script):
    reviews = [{"text": "A fine film.<br /><br />The cast shines here!Wow. Go see it", "label": "pos", "rating": 10},
               {"text": "Dull from start to end. Avoid.", "label": "neg", "rating": 3}]
    assert script.review_sentences(reviews) == [
        {"text": "A fine film.", "label": "pos"}, {"text": "The cast shines here!Wow.", "label": "pos"},
        {"text": "Go see it", "label": "pos"}, {"text": "Dull from start to end.", "label": "neg"}]
    # Validation sentences: those of the reviews of the extreme ratings only.
    assert [s["label"] for s in script.review_sentences(reviews, (1, 10))] == ["pos"] * 3


def shipped() -> EnsembleClassifier:
    if not DEFAULT_MODEL_FILE.is_file():
        pytest.skip(f"the default model is not installed (python {TRAINING_SCRIPT})")
    return EnsembleClassifier()


def test_the_shipped_model_reads_short_negated_phrases():
    results = shipped().run(["Not bad at all.", "not good", "It was not worth it.", "I would not recommend it."])
    assert [r["label"] for r in results] == ["pos", "neg", "neg", "neg"], results


@pytest.mark.skipif(not UCI.is_dir(), reason="needs ../shared/data/uci_sentiment_sentences")
def test_the_shipped_model_scores_its_recorded_uci_accuracies():
    engine = shipped()
    recorded = read_model_file(DEFAULT_MODEL_FILE)[0]["metadata"]["sentence_test_metrics"]["accuracy"]
    measured = {}
    for name in recorded:
        with gzip.open(UCI / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
            measured[name] = engine.evaluate([json.loads(line) for line in f])["accuracy"]
    # The same files, the same model: the same predictions, up to a text whose probabilities tie.
    assert measured == pytest.approx(recorded, abs=0.002)
