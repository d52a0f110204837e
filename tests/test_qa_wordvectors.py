"""Word vectors for the reader (toolkit_plugins.qa.wordvectors over toolkit.text.vectors) and the word_vectors train option.

The counting, PPMI, SVD and scaling themselves are tested in tests/test_text_vectors.py.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from toolkit_plugins.qa.neural import ReaderEngine
from toolkit_plugins.qa.passages import tokenize
from toolkit_plugins.qa.reader import Featurizer, SpanReader
from toolkit_plugins.qa.squad import to_examples
from toolkit_plugins.qa.training import CHAR_BUCKETS, build_vocab, init_word_vectors
from toolkit_plugins.qa.wordvectors import read_texts, train_vectors, words
from toolkit.engine import DataError, ModelMismatchError, OptionError
from toolkit.nn import read_model_file

FILLER = ("red blue green old new big small fast slow warm cold dark light long short wide narrow tall low high "
          "soft hard loud quiet bright dull sweet sour rich poor young clean dirty heavy thin thick round flat sharp "
          "smooth rough empty full early late near far deep shallow strong weak busy calm wild tame brave shy happy "
          "sad proud kind cruel fresh stale dry wet hot cool plain fancy cheap costly simple grand tiny huge").split()


def test_words_are_the_readers_lower_cased_tokens():
    text = "Paris, the capital<br /><br />of FRANCE's 1,000 cafés."
    assert words(text) == [t.text.lower() for t in tokenize(text.replace("<br />", " "))]
    assert words(text)[:5] == ["paris", ",", "the", "capital", "of"]


def test_vectors_of_words_that_co_occur_are_closer_than_unrelated_ones(h):
    vocab = ["<pad>", "<unk>", *h.ANIMALS, *h.VEHICLES, "unseen"]
    vectors, known, report = train_vectors(h.topic_texts(), vocab, dim=2, skip=2)
    assert vectors.shape == (len(vocab), 2) and vectors.dtype == np.float32
    assert known.tolist() == [False, False] + [True] * 32 + [False]
    assert not vectors[:2].any() and not vectors[-1].any()
    assert report["tokens"] == 200 * 12 and report["words"] == 32 and report["vocabulary"] == 33
    v = {w: vectors[i] for i, w in enumerate(vocab)}
    for a, b, other in [("cat", "dog", "bus"), ("train", "ship", "cow"), ("fox", "wolf", "taxi")]:
        assert h.cosine(v[a], v[b]) > h.cosine(v[a], v[other]) + 0.5, (a, b, other)
    with pytest.raises(DataError, match="too small"):
        train_vectors(h.topic_texts(), vocab, dim=40, skip=2)
    with pytest.raises(ValueError, match="skip >= 1"):
        train_vectors(h.topic_texts(), vocab[2:], dim=2, skip=0)


def test_read_texts_takes_jsonl_and_plain_text_and_names_bad_lines(tmp_path):
    jsonl = tmp_path / "news.jsonl.gz"
    with gzip.open(jsonl, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"id": 1, "article": "A ship sank."}) + "\n\n" + json.dumps({"text": "A cat sat."}) + "\n")
    assert read_texts(jsonl) == ["A ship sank.", "A cat sat."]
    plain = tmp_path / "lines.txt"
    plain.write_text("one document\n\nanother one\n", encoding="utf-8")
    assert read_texts(plain) == ["one document\n", "another one\n"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"summary": "no text"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl, line 2: no text field"):
        read_texts(bad)
    bad.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1: not JSON"):
        read_texts(bad)
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="no text in it"):
        read_texts(tmp_path / "empty.txt")
    with pytest.raises(DataError, match="no such file"):
        read_texts(tmp_path / "missing.jsonl")


def test_init_word_vectors_sets_known_rows_and_leaves_markers(tmp_path, h):
    examples = to_examples(h.born_records(64, filler=FILLER))
    vocab = build_vocab(examples, 200)
    model = SpanReader(len(vocab), CHAR_BUCKETS, dim=16, dropout=0.0, seed=0)
    before = model.words.params["table"].copy()
    extra = tmp_path / "more.txt"
    extra.write_text("Alice was born in Oslo.\nBob was born in Lima.\n", encoding="utf-8")
    report = init_word_vectors(model, vocab, examples, str(extra), seed=0)
    after = model.words.params["table"]
    assert report["documents"] == {"training contexts and questions": len({e.context for e in examples}) + 64,
                                   str(extra): 2}
    assert not after[0].any() and np.array_equal(after[1], before[1])  # padding stays zero, unknown random
    changed = ~np.isclose(after, before).all(axis=1)
    assert changed[2:].mean() > 0.95
    np.testing.assert_allclose(np.linalg.norm(after[2:][changed[2:]], axis=1),
                               np.linalg.norm(before, axis=1).mean(), rtol=1e-4)
    # The reader runs on the new table.
    featurizer = Featurizer(vocab, CHAR_BUCKETS)
    (s, _), _ = model.forward(featurizer.batch([(tokenize("Where was Eve born?"), tokenize("Eve was born in Lima."))]))
    assert np.isfinite(s).all()


def test_word_vectors_option_changes_the_initial_embedding(tmp_path, h):
    records = h.born_records(64, filler=FILLER)
    tiny = {"dim": 16, "vocab_size": 200, "batch": 8, "valid_limit": 0, "epochs": 2, "max_minutes": 1e-6,
            "learning_rate": 1e-6}
    # One step at a negligible learning rate, then the time limit: the saved table is the initial one.
    plain = ReaderEngine.train(records, str(tmp_path / "plain.nlpt"), **tiny)
    vectors = ReaderEngine.train(records, str(tmp_path / "vectors.nlpt"), word_vectors=True, **tiny)
    assert plain["steps"] == vectors["steps"] == 1
    config, with_vectors = read_model_file(tmp_path / "vectors.nlpt")
    without = read_model_file(tmp_path / "plain.nlpt")[1]
    table, random_table = with_vectors["0.table"], without["0.table"]
    assert table.shape == random_table.shape
    assert np.abs(table[2:] - random_table[2:]).max() > 0.01  # the known words' rows were replaced
    np.testing.assert_allclose(table[1], random_table[1], atol=1e-5)  # <unk> has no vector: same random row
    report = config["metadata"]["training"]["word_vectors"]
    assert report["words"] > 64 and report["window"] == 5
    assert read_model_file(tmp_path / "plain.nlpt")[0]["metadata"]["training"]["word_vectors"] is None
    # Resuming keeps the checkpoint's (fine-tuned) vectors and must keep the setting too.
    with pytest.raises(ModelMismatchError, match=r"started with other options \(word_vectors=True\)"):
        ReaderEngine.train(records, str(tmp_path / "vectors.nlpt"), resume=True, **tiny)
    with pytest.raises(ModelMismatchError, match=r"started with other options \(word_vectors=False\)"):
        ReaderEngine.train(records, str(tmp_path / "plain.nlpt"), resume=True, word_vectors=True, **tiny)
    resumed = ReaderEngine.train(records, str(tmp_path / "vectors.nlpt"), resume=True, word_vectors=True,
                                 **{**tiny, "max_minutes": 0.0})
    assert resumed["stopped"] == "completed" and resumed["checkpoint"] is None
    final = read_model_file(tmp_path / "vectors.nlpt")[0]["metadata"]["training"]["word_vectors"]
    assert final == report
    # Same-city contexts: "born" sits next to "was" and "in" in every text, so their vectors agree.
    vocab = config["metadata"]["vocab"]
    born, was, weather = (table[vocab.index(w)] for w in ("born", "was", "weather"))
    assert h.cosine(born, was) > h.cosine(born, weather)


def test_word_vectors_bad_input_gives_clear_errors(tmp_path, h):
    records = h.born_records(16, filler=FILLER)
    tiny = {"dim": 16, "vocab_size": 200, "batch": 8, "valid_limit": 0, "epochs": 1}
    output = str(tmp_path / "reader.nlpt")
    with pytest.raises(OptionError, match="'word_vectors' must be true or false"):
        ReaderEngine.train(records, output, word_vectors="yes", **tiny)
    with pytest.raises(OptionError, match="only read for word_vectors"):
        ReaderEngine.train(records, output, vector_texts="more.txt", **tiny)
    with pytest.raises(DataError, match="no such file"):
        ReaderEngine.train(records, output, word_vectors=True, vector_texts=str(tmp_path / "missing.txt"), **tiny)
    with pytest.raises(OptionError, match="empty file name"):
        ReaderEngine.train(records, output, word_vectors=True, vector_texts="a.txt,,b.txt", **tiny)
    with pytest.raises(DataError, match="too small"):
        ReaderEngine.train(records, output, word_vectors=True, **{**tiny, "vocab_size": 30})
