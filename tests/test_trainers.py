"""What every trainable engine shares through toolkit.train and the one trainer (docs/training.md)."""

from __future__ import annotations

import pytest

import toolkit
from toolkit import errors
from toolkit.nn import read_model_file, save_arrays

POSITIVE = [{"text": f"good fine film number {i}", "label": "pos"} for i in range(6)]
NEGATIVE = [{"text": f"bad dull film number {i}", "label": "neg"} for i in range(6)]
QUESTION = {"question": "Who met?", "context": "The council met on Monday.",
            "answers": [{"text": "The council", "answer_start": 0}]}
DIALOGUES = [{"turns": [f"where is house {i} ?", f"house {i} is by the road", "thanks"]} for i in range(8)]
SMALL_CNN = {"max_len": 8, "dim": 8, "filters": 8, "hidden": 8, "vocab_size": 50}
# engine -> (records, options that keep its training to a fraction of a second)
TRAINABLE = {
    "classify:ngram": (POSITIVE + NEGATIVE, {"hash_bits": 10}),
    "classify:cnn": (POSITIVE + NEGATIVE, {**SMALL_CNN, "epochs": 2}),
    "classify:ensemble": (POSITIVE + NEGATIVE, {**SMALL_CNN, "epochs": 2, "hash_bits": 10, "ngram_weight": 0.5}),
    "summarize:trained": ([{"article": f"The council met on day {i}. It rained. Birds sang.",
                            "summary": f"The council met on day {i}."} for i in range(8)],
                          {"epochs": 2, "dim": 8, "filters": 8, "hidden": 8}),
    "qa:reader": ([QUESTION] * 8, {"epochs": 2, "dim": 16, "vocab_size": 50, "batch": 4}),
    "translate:transformer": ([{"source": f"a house {i}", "target": f"ein Haus {i}"} for i in range(12)],
                              {"source": "en", "target": "de", "epochs": 2, "vocab_size": 30, "dim": 16, "heads": 2,
                               "encoder_layers": 1, "decoder_layers": 1, "ffn": 16, "batch_tokens": 64}),
    "generate:transformer": ([{"text": f"the house number {i} stood by the old road"} for i in range(12)],
                             {"epochs": 2, "vocab_size": 40, "dim": 16, "heads": 2, "layers": 1, "ffn": 16,
                              "context_length": 8, "batch_blocks": 4, "warmup": 2}),
    "chat:transformer": (DIALOGUES, {"epochs": 2, "vocab_size": 40, "dim": 16, "heads": 2, "layers": 1, "ffn": 16,
                                     "context_length": 16, "batch_blocks": 4, "warmup": 2}),
    "chat:retrieval": (DIALOGUES, {"epochs": 2, "vocab_size": 50, "embedding": 8, "filters": 8, "dim": 8,
                                   "batch": 4}),
}


@pytest.mark.parametrize("engine", sorted(TRAINABLE))
def test_valid_split_0_holds_out_nothing(tmp_path, engine):
    records, options = TRAINABLE[engine]
    task, name = engine.split(":")
    report = toolkit.train(task, records, engine=name, output=tmp_path / "m.nlpt", valid_split=0, progress=False,
                           **options)
    assert (report["train_records"], report["valid_records"]) == (len(records), 0)
    training = read_model_file(tmp_path / "m.nlpt")[0]["metadata"]["training"]
    assert training["records"] == len(records) and training["validation_records"] is None
    assert not any(key.startswith("val_") for epoch in training.get("epochs", []) for key in epoch)
    assert [p.name for p in tmp_path.iterdir()] == ["m.nlpt"]


@pytest.mark.parametrize("engine", sorted(set(TRAINABLE) - {"classify:ngram"}))
def test_every_trainer_refuses_a_missing_foreign_or_damaged_checkpoint_alike(tmp_path, engine):
    records, options = TRAINABLE[engine]
    task, name = engine.split(":")
    foreign, damaged = tmp_path / "foreign.ckpt", tmp_path / "damaged.ckpt"
    save_arrays(foreign, {}, {"kind": "something-else"})
    save_arrays(damaged, {}, {"kind": "training-checkpoint", "format": 1})
    for checkpoint, refused, message in ((tmp_path / "missing.ckpt", errors.ModelNotFoundError, "no checkpoint"),
                                         (foreign, errors.ModelMismatchError, "not a training checkpoint"),
                                         (damaged, errors.ModelFileError, "damaged checkpoint")):
        with pytest.raises(refused, match=message):
            toolkit.train(task, records, engine=name, output=tmp_path / "m.nlpt", valid_split=0, progress=False,
                          checkpoint=str(checkpoint), resume=True, **options)
    assert not (tmp_path / "m.nlpt").exists()


@pytest.mark.parametrize("engine", sorted(set(TRAINABLE) - {"classify:ngram"}))
def test_every_trainer_reports_its_history_alike(tmp_path, engine):
    records, options = TRAINABLE[engine]
    task, name = engine.split(":")
    report = toolkit.train(task, records + records[:2], engine=name, output=tmp_path / "m.nlpt",
                           valid=records[:2], progress=False, **options)
    assert {"epochs", "best_epoch", "stopped", "steps", "train_seconds", "checkpoint"} <= set(report)
    assert report["stopped"] == "completed" and report["checkpoint"] is None and report["best_epoch"] in (1, 2)
    assert [e["epoch"] for e in report["epochs"]] == [1, 2]
    assert all(any(key.startswith("val_") for key in e) for e in report["epochs"])
    meta = read_model_file(tmp_path / "m.nlpt")[0]["metadata"]
    assert (meta["task"], meta["engine"], meta["name"]) == (task, name, "m")
    assert meta["training"]["epochs"] == report["epochs"] and meta["training"]["seed"] == 0


def test_the_ngram_engine_has_no_trainer_options():
    from toolkit_plugins.classification.ngram import NgramClassifier

    # It is fitted by one solver call: nothing to resume, no epochs.
    assert not {"epochs", "resume", "checkpoint"} & set(NgramClassifier.train_options)
