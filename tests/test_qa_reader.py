"""The neural span reader: gradients, featurization, training with checkpoints and resume, the engine on a model file."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from toolkit_plugins.qa.neural import ReaderEngine, best_spans
from toolkit_plugins.qa.passages import tokenize
from toolkit_plugins.qa.reader import Featurizer, SpanReader
from toolkit_plugins.qa.training import answer_tokens, build_vocab, make_instances
from toolkit_plugins.qa.squad import to_examples
from toolkit.engine import OptionError
from toolkit.errors import ModelMismatchError, ModelNotFoundError
from toolkit.nn import ModelFileError, TrainingInterrupted, read_checkpoint, read_model_file
from toolkit.testing import check_training

TINY = {"dim": 16, "vocab_size": 100, "batch": 8, "learning_rate": 0.01, "valid_limit": 0}


@pytest.mark.parametrize("encoder, parameters", [("attention", 40), ("gru", 30)])
def test_span_reader_gradients_match_finite_differences(encoder, parameters):
    model = SpanReader(50, 31, dim=8, heads=2, word_dim=6, char_dim=4, max_len=16, max_question=8, dropout=0.0,
                       encoder=encoder, seed=0)
    featurizer = Featurizer(["<pad>", "<unk>", "the", "cat", "sat", "on", "mat", "who"], 31)
    batch = featurizer.batch([(tokenize("who sat on the mat?"), tokenize("The cat sat on the mat today.")),
                              (tokenize("cat?"), tokenize("A mat."))])
    rng = np.random.default_rng(1)
    weights = [rng.normal(size=batch.p_pad.shape) * ~batch.p_pad for _ in range(2)]

    def loss() -> float:
        (s, e), _ = model.forward(batch)
        return float((s * weights[0]).sum() + (e * weights[1]).sum())

    _, backprop = model.forward(batch, train=True)
    model.zero_grad()
    backprop(tuple(w.astype(np.float32) for w in weights))
    # One directional derivative per parameter array (float32 and ReLU kinks make
    # single-coordinate differences too noisy); embedding rows of unused ids excluded.
    checked = 0
    for name, param, grad in model.named_parameters():
        direction = rng.normal(size=param.shape)
        if name.split(".")[0] in ("0", "1"):
            direction *= (grad != 0).any(axis=-1, keepdims=True)
        direction = (direction / np.linalg.norm(direction)).astype(np.float32)
        eps = 3e-3
        param += eps * direction
        up = loss()
        param -= 2 * eps * direction
        down = loss()
        param += eps * direction
        numeric, analytic = (up - down) / (2 * eps), float((grad * direction).sum())
        # The floor is float32's noise in a difference quotient: the loss (|L| about 10) is computed to
        # about 1e-6, which over 2 * eps gives up to about 5e-4 (measured on an AMD Zen 5, where a key bias
        # with an exact gradient of 0 came out at 4.5e-4); the gradients checked are 0.4 to 260.
        assert abs(numeric - analytic) <= 0.03 * max(5e-2, abs(numeric) + abs(analytic)), (name, numeric, analytic)
        checked += 1
    assert checked == len(list(model.named_parameters())) > parameters


def test_featurizer_marks_question_words_and_pads():
    featurizer = Featurizer(["<pad>", "<unk>", "paris", "born"], 101)
    batch = featurizer.batch([(tokenize("Where was Eve born?"), tokenize("Eve was born in Paris.")),
                              (tokenize("Who?"), tokenize("Bob"))])
    assert batch.p_words.shape == (2, 6) and batch.p_pad[1].tolist() == [False] + [True] * 5
    assert batch.p_words[0, 4] == 2 and batch.p_words[0, 0] == 1  # "Paris" known, "Eve" unknown
    assert batch.p_feats[0, :, 0].tolist() == [1, 1, 1, 0, 0, 0]  # exact match with a question word
    assert (batch.p_chars[0, 0, :4] > 0).all() and (batch.p_chars[1, 1:] == 0).all()  # <eve> and 3 trigrams


def test_best_spans_respects_order_and_length():
    start = np.log(np.array([0.1, 0.7, 0.1, 0.1]))
    end = np.log(np.array([0.6, 0.3, 0.05, 0.05]))
    spans = best_spans(start, end, max_tokens=2, count=3)
    assert all(a <= b < a + 2 for a, b, _ in spans)
    assert spans[0][:2] == (1, 1) and spans[0][2] == pytest.approx(0.21)
    assert [s for _, _, s in spans] == sorted((s for _, _, s in spans), reverse=True)


def test_answer_tokens_and_instances(h):
    tokens = tokenize("It cost 1,000 dollars.")
    assert answer_tokens(tokens, 8, 13) == (2, 4)
    examples = to_examples(h.born_records(4))
    vocab = build_vocab(examples, 50)
    assert vocab[:2] == ["<pad>", "<unk>"] and "born" in vocab
    instances, dropped = make_instances(examples, window=6, overlap=2, max_question=64)
    assert dropped == 0
    for x, example in zip(instances, examples):
        answer = example.answers[0].text
        assert x.passage[x.first].text == answer and x.first == x.last and len(x.passage) <= 6


def test_training_contract_and_learning(tmp_path, h):
    records = h.born_records(64)
    check_training(ReaderEngine, records[:16], tmp_path, epochs=1, **TINY)
    output = tmp_path / "reader.nlpt"
    report = ReaderEngine.train(records, str(output), valid=h.born_records(16, seed=1), epochs=6, **TINY)
    assert report["steps"] == 48 and report["checkpoint"] is None and report["stopped"] == "completed"
    assert [e["epoch"] for e in report["epochs"]] == [1, 2, 3, 4, 5, 6]
    assert report["metrics"]["f1"] > 90.0, report["metrics"]
    best = report["epochs"][report["best_epoch"] - 1]
    assert report["metrics"] == {"f1": best["val_f1"], "exact_match": best["val_exact_match"]}
    meta = read_model_file(output)[0]["metadata"]
    assert meta["metrics"] == report["metrics"] and meta["training"]["validation_records"] == 16
    engine = ReaderEngine(model=str(output), top_k=3)
    context = "Zed likes tea and long walks. Zed was born in Lima. The weather was mild."
    result = engine.run([{"question": "Where was Zed born?", "context": context}])[0]
    assert result["answer"] == "Lima" and result["evidence"]["text"] == "Zed was born in Lima."
    scores = [a["score"] for a in result["answers"]]
    assert scores == sorted(scores, reverse=True) and 0.0 < sum(scores) <= 1.0 + 1e-6
    assert all(context[a["start"] : a["end"]] == a["answer"] for a in result["answers"])
    assert engine.stamp()["model_name"] == "reader"
    long = " ".join(["The weather was mild and the sky was grey."] * 80) + " Zed was born in Lima."
    far = ReaderEngine(model=str(output), passages=1).run([{"question": "Where was Zed born?", "context": long}])[0]
    assert far["answer"] == "Lima" and far["skipped"] and far["passages"]["read"] < far["passages"]["total"]


def test_without_validation_data_nothing_is_held_out(tmp_path, h):
    output = tmp_path / "reader.nlpt"
    report = ReaderEngine.train(h.born_records(24), str(output), epochs=2, **TINY)
    training = read_model_file(output)[0]["metadata"]["training"]
    assert training["records"] == report["records"] == 24 and training["validation_records"] is None
    assert report["steps"] == 2 * 3 and report["metrics"] is None and report["best_epoch"] is None
    assert all(not key.startswith("val_") for record in report["epochs"] for key in record)


def test_the_checkpoint_is_the_shared_trainers_and_keeps_the_moving_average(tmp_path, h):
    from toolkit_plugins.qa.training import CHAR_BUCKETS

    records = h.born_records(32)
    output = tmp_path / "reader.nlpt"
    # One step, then the time limit: the checkpoint holds the stepped weights and their average.
    report = ReaderEngine.train(records, str(output), epochs=2, max_minutes=1e-9, ema=0.5, **TINY)
    assert report["steps"] == 1 and report["stopped"] == "time limit"
    assert report["checkpoint"] == f"{output}.ckpt"
    saved = read_checkpoint(report["checkpoint"])
    assert set(saved.groups) == {"model", "optimizer/m", "optimizer/v", "ema"}
    assert saved.setup["seed"] == 0 and saved.setup["options"]["dim"] == 16
    assert saved.setup["vocab"] == read_model_file(output)[0]["metadata"]["vocab"]
    assert (saved.state["epoch"], saved.state["batch"], saved.state["steps"]) == (0, 1, 1)
    weights = read_model_file(output)[1]
    config = read_model_file(output)[0]["architecture"]["config"]
    initial = SpanReader(config["vocab_size"], CHAR_BUCKETS, dim=16, max_len=config["max_len"],
                         dropout=config["dropout"], seed=0)
    moved = 0
    for name, param, _ in initial.named_parameters():
        expected = 0.5 * param + 0.5 * saved.groups["model"][name]
        np.testing.assert_allclose(saved.groups["ema"][name], expected, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(weights[name], saved.groups["ema"][name])
        moved += not np.array_equal(param, saved.groups["model"][name])
    assert moved > 0  # the step changed the weights, so the average differs from both ends
    # Resumed (the average continues from the checkpoint's) to the end: the file is complete and usable.
    resumed = ReaderEngine.train(records, str(output), epochs=2, resume=True, ema=0.5, **TINY)
    assert resumed["steps"] == 8 and resumed["checkpoint"] is None and resumed["stopped"] == "completed"
    assert not (tmp_path / "reader.nlpt.ckpt").exists()
    assert ReaderEngine(model=str(output)).run([{"question": "Who?", "context": "Zed was born in Lima."}])


def test_a_run_cut_by_the_time_limit_resumes_to_the_same_weights(tmp_path, h):
    records = h.born_records(32)
    straight, cut = tmp_path / "straight.nlpt", tmp_path / "cut.nlpt"
    ReaderEngine.train(records, str(straight), epochs=2, ema=0.5, progress=False, **TINY)
    first = ReaderEngine.train(records, str(cut), epochs=2, ema=0.5, max_minutes=1e-9, progress=False, **TINY)
    assert first["stopped"] == "time limit" and first["steps"] == 1 and cut.is_file()
    # One step was done before the limit; the rest of epoch 1 and all of epoch 2 follow.
    resumed = ReaderEngine.train(records, str(cut), epochs=2, ema=0.5, resume=True, progress=False, **TINY)
    assert resumed["steps"] == 8 and resumed["stopped"] == "completed" and resumed["checkpoint"] is None
    expected, got = read_model_file(straight)[1], read_model_file(cut)[1]
    assert set(got) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    with pytest.raises(ModelNotFoundError, match="no checkpoint"):
        ReaderEngine.train(records, str(cut), epochs=1, resume=True, **TINY)


def test_resuming_with_other_options_is_refused(tmp_path, h):
    records, output = h.born_records(16), tmp_path / "reader.nlpt"
    ReaderEngine.train(records, str(output), epochs=2, max_minutes=1e-9, progress=False, **TINY)
    with pytest.raises(ModelMismatchError, match=r"started with other options \(dim=16\)"):
        ReaderEngine.train(records, str(output), epochs=2, resume=True, **{**TINY, "dim": 24})
    with pytest.raises(ModelMismatchError, match="seed 0, not 1"):
        ReaderEngine.train(records, str(output), epochs=2, resume=True, seed=1, **TINY)
    # How long to train and how many validation questions to score may change.
    report = ReaderEngine.train(records, str(output), valid=h.born_records(4, seed=1), epochs=3, resume=True,
                                progress=False, **{**TINY, "valid_limit": 3})
    assert report["steps"] == 6 and report["stopped"] == "completed"


def test_ctrl_c_keeps_the_checkpoint_and_writes_no_model(tmp_path, h, monkeypatch):
    from toolkit_plugins.qa.reader import Featurizer

    records, valid = h.born_records(16), h.born_records(4, seed=1)
    straight, output = tmp_path / "straight.nlpt", tmp_path / "reader.nlpt"
    ReaderEngine.train(records, str(straight), valid=valid, epochs=2, progress=False, **TINY)
    batch, calls = Featurizer.batch, []

    def interrupt_third_step(self, pairs):
        # Training batches hold 8 questions; validation reads one question's passages at a time.
        calls.append(len(pairs))
        if calls.count(8) == 3:
            signal.raise_signal(signal.SIGINT)
        return batch(self, pairs)

    monkeypatch.setattr(Featurizer, "batch", interrupt_third_step)
    with pytest.raises(KeyboardInterrupt) as stopped:
        ReaderEngine.train(records, str(output), valid=valid, epochs=2, progress=False, **TINY)
    assert isinstance(stopped.value, TrainingInterrupted) and stopped.value.checkpoint == f"{output}.ckpt"
    assert {p.name for p in tmp_path.iterdir()} == {"straight.nlpt", "reader.nlpt.ckpt"}
    saved = read_checkpoint(stopped.value.checkpoint)
    assert (saved.state["epoch"], saved.state["batch"], saved.state["steps"]) == (1, 0, 2)  # epoch 1 was validated
    assert set(saved.groups) == {"model", "optimizer/m", "optimizer/v", "best"}
    monkeypatch.setattr(Featurizer, "batch", batch)
    report = ReaderEngine.train(records, str(output), valid=valid, epochs=2, resume=True, progress=False, **TINY)
    assert report["steps"] == 4 and [e["epoch"] for e in report["epochs"]] == [1, 2]
    expected, got = read_model_file(straight)[1], read_model_file(output)[1]
    assert all(np.array_equal(got[name], value) for name, value in expected.items())


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_no_candidate_file_is_left_when_scoring_an_epoch_fails(tmp_path, h, monkeypatch, error):
    def fail(self, records, batch_size=32):
        raise error("while scoring")

    monkeypatch.setattr(ReaderEngine, "evaluate", fail)
    with pytest.raises(error):
        ReaderEngine.train(h.born_records(16), str(tmp_path / "reader.nlpt"), valid=h.born_records(4, seed=1),
                           epochs=2, progress=False, **TINY)
    # Ctrl-C saves the checkpoint; another failure leaves nothing. Never the epoch's temporary model file.
    expected = {"reader.nlpt.ckpt"} if error is KeyboardInterrupt else set()
    assert {p.name for p in tmp_path.iterdir()} == expected


def test_resume_scores_the_epoch_whose_scoring_was_interrupted(tmp_path, h, monkeypatch):
    scored = []
    evaluate = ReaderEngine.evaluate

    def interrupt_first(self, records, batch_size=32):
        if not scored:
            scored.append("interrupted")
            raise KeyboardInterrupt
        scored.append("scored")
        return evaluate(self, records, batch_size)

    monkeypatch.setattr(ReaderEngine, "evaluate", interrupt_first)
    records, valid, output = h.born_records(16), h.born_records(4, seed=1), tmp_path / "reader.nlpt"
    with pytest.raises(KeyboardInterrupt):
        ReaderEngine.train(records, str(output), valid=valid, epochs=2, progress=False, **TINY)
    report = ReaderEngine.train(records, str(output), valid=valid, epochs=2, resume=True, progress=False, **TINY)
    # Epoch 1's weights are scored when resuming, before epoch 2 is trained, so both competed for the output.
    assert scored == ["interrupted", "scored", "scored"]
    assert [(e["epoch"], "val_f1" in e) for e in report["epochs"]] == [(1, True), (2, True)]
    assert report["steps"] == 4 and report["checkpoint"] is None
    assert {p.name for p in tmp_path.iterdir()} == {"reader.nlpt"}


def test_model_errors(tmp_path):
    with pytest.raises(OptionError, match="no such model file"):
        ReaderEngine(model=str(tmp_path / "missing.nlpt"))
    damaged = tmp_path / "damaged.nlpt"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelFileError):
        ReaderEngine(model=str(damaged))


def test_gru_encoder_trains_saves_and_answers(tmp_path, h):
    output = tmp_path / "gru.nlpt"
    report = ReaderEngine.train(h.born_records(64), str(output), valid=h.born_records(16, seed=1), epochs=6,
                                encoder="gru", **TINY)
    assert report["metrics"]["f1"] > 90.0, report["metrics"]
    engine = ReaderEngine(model=str(output))
    context = "Zed likes tea and long walks. Zed was born in Lima. The weather was mild."
    assert engine.run([{"question": "Where was Zed born?", "context": context}])[0]["answer"] == "Lima"
    with pytest.raises(OptionError, match="must be one of attention, gru"):
        ReaderEngine.train(h.born_records(8), str(tmp_path / "x.nlpt"), encoder="lstm", **TINY)
    with pytest.raises(OptionError, match="needs an even dim"):
        ReaderEngine.train(h.born_records(8), str(tmp_path / "x.nlpt"), encoder="gru", **{**TINY, "dim": 15})
