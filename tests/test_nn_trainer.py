"""The one training loop (toolkit.nn.trainer) and its checkpoints: resuming is exact, whatever stopped the run."""

from __future__ import annotations

import signal

import numpy as np
import pytest

import toolkit.nn as nn
from toolkit.errors import ModelMismatchError, ModelNotFoundError, TrainingError
from toolkit.nn.checkpoint import read_checkpoint, resumable_checkpoint
from toolkit.nn.trainer import generators


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.float32)
    return x, y


def network():
    return nn.Sequential([nn.Dense(4, 8, activation="relu", seed=1), nn.Dropout(0.3, seed=2), nn.Dense(8, 1, seed=3)])


def setup_run(tmp_path, interrupt_at=None, signum=signal.SIGINT, ema=0.0, epochs=3, validate=True, **options):
    """A trainer over ``data()`` in batches of 8 (5 a epoch); ``interrupt_at``: raise ``signum`` in that step."""
    x, y = data()
    model = network()
    counter = {"steps": 0}

    def batches(epoch, rng):
        order = rng.permutation(len(x))
        return [order[i : i + 8] for i in range(0, len(x), 8)]

    def step(rows):
        counter["steps"] += 1
        if counter["steps"] == interrupt_at:
            signal.raise_signal(signum)
        out, backprop = model.forward(x[rows], train=True)
        loss, grad = nn.binary_cross_entropy_with_logits(out, y[rows])
        backprop(grad)
        return loss

    def accuracy():
        return {"accuracy": float(((model(x)[:, 0] > 0) == (y > 0.5)).mean()), "loss": 1.0}

    trainer = nn.Trainer(model, nn.Adam(model, 1e-2), step, batches, epochs=epochs,
                         validate=accuracy if validate else None, ema=ema, clip_norm=1.0,
                         checkpoint=tmp_path / "run.ckpt", seed=4, progress=False, log=lambda line: None, **options)
    return trainer, model


def weights(model):
    return [p.copy() for _, p, _ in model.named_parameters()]


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_a_run_interrupted_mid_epoch_resumes_to_the_same_weights(tmp_path, signum, ema):
    straight, model = setup_run(tmp_path / "a", ema=ema)
    (tmp_path / "a").mkdir()
    history = straight.run()
    expected = weights(model)
    assert history.stopped == "completed" and len(history.epochs) == 3 and history.checkpoint is None
    assert not (tmp_path / "a" / "run.ckpt").exists()  # removed once training completed

    (tmp_path / "b").mkdir()
    first, _ = setup_run(tmp_path / "b", interrupt_at=8, signum=signum, ema=ema)  # epoch 2, batch 3
    with pytest.raises(nn.TrainingInterrupted) as stopped:
        first.run()
    assert stopped.value.checkpoint == str(tmp_path / "b" / "run.ckpt")
    saved = read_checkpoint(stopped.value.checkpoint)
    assert (saved.state["epoch"], saved.state["batch"], saved.state["steps"]) == (1, 7 - 5, 7)
    assert set(saved.groups) >= {"model", "optimizer/m", "optimizer/v", "best"}
    assert ("ema" in saved.groups) == bool(ema)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers put back

    second, resumed_model = setup_run(tmp_path / "b", ema=ema)
    second.resume(saved)
    history2 = second.run()
    assert same(weights(resumed_model), expected)
    assert [e["val_accuracy"] for e in history2.epochs] == [e["val_accuracy"] for e in history.epochs]
    assert history2.steps == history.steps == 15
    assert not (tmp_path / "b" / "run.ckpt").exists()


def test_a_run_interrupted_while_validating_validates_that_epoch_first_when_resumed(tmp_path):
    straight, model = setup_run(tmp_path)
    straight.run()
    expected = weights(model)

    first, _ = setup_run(tmp_path)
    calls = {"n": 0}
    real = first.validate

    def interrupted_second_validation():
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real()

    first.validate = interrupted_second_validation
    with pytest.raises(nn.TrainingInterrupted):
        first.run()
    saved = read_checkpoint(tmp_path / "run.ckpt")
    assert (saved.state["epoch"], saved.state["batch"]) == (1, 5)  # trained, not validated
    second, model2 = setup_run(tmp_path)
    second.resume(saved)
    history = second.run()
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]
    assert same(weights(model2), expected)


def test_a_signal_during_the_weight_update_lets_it_finish(tmp_path):
    trainer, model = setup_run(tmp_path)
    real_step = trainer.optimizer.step

    def step_then_signal():
        if trainer.optimizer.steps == 3:
            signal.raise_signal(signal.SIGINT)  # arrives in the middle of the update
        real_step()

    trainer.optimizer.step = step_then_signal
    with pytest.raises(nn.TrainingInterrupted):
        trainer.run()
    saved = read_checkpoint(tmp_path / "run.ckpt")
    # The fourth update was finished and counted, and the saved weights are the ones after it.
    assert saved.state["steps"] == 4 and saved.state["batch"] == 4
    assert all(np.array_equal(saved.groups["model"][n], p) for n, p, _ in model.named_parameters())


def test_the_time_limit_keeps_the_checkpoint_and_resuming_completes_the_run(tmp_path):
    straight, model = setup_run(tmp_path)
    straight.run()
    expected = weights(model)

    limited, _ = setup_run(tmp_path, max_minutes=1e-9)
    history = limited.run()
    assert history.stopped == "time limit" and history.steps == 1
    assert history.checkpoint == str(tmp_path / "run.ckpt") and (tmp_path / "run.ckpt").exists()
    assert history.epochs[0]["batches"] == "1/5"  # the partial epoch was validated
    second, model2 = setup_run(tmp_path)
    second.resume(read_checkpoint(tmp_path / "run.ckpt"))
    assert second.run().stopped == "completed"
    assert same(weights(model2), expected)


def test_checkpoints_are_written_within_an_epoch_every_checkpoint_minutes(tmp_path):
    seen = []
    trainer, _ = setup_run(tmp_path, checkpoint_minutes=1e-9)
    real = trainer.step

    def step(rows):
        if (tmp_path / "run.ckpt").exists():
            state = read_checkpoint(tmp_path / "run.ckpt").state
            seen.append((state["steps"], state["seconds"]))
        return real(rows)

    trainer.step = step
    trainer.run()
    assert [steps for steps, _ in seen[:4]] == [1, 2, 3, 4]
    # The time trained so far is in each one: a run killed after it resumes with its time counted.
    seconds = [spent for _, spent in seen]
    assert seconds[0] > 0 and seconds == sorted(seconds)


def test_a_non_finite_loss_stops_training_with_one_error_before_any_update(tmp_path):
    trainer, model = setup_run(tmp_path)
    real = trainer.step
    trainer.step = lambda rows: float("nan") if trainer.optimizer.steps == 6 else real(rows)
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 2, batch 2 \(step 7\): lower the learning"
                                            r" rate; the checkpoint .*run.ckpt holds the run before it"):
        trainer.run()
    assert trainer.optimizer.steps == 6
    assert TrainingError.exit_code == 1


def test_without_validation_the_model_ends_with_its_moving_average(tmp_path):
    trainer, model = setup_run(tmp_path, validate=False, ema=0.5, epochs=1)
    history = trainer.run()
    assert history.best_epoch is None and "val_accuracy" not in history.epochs[0]
    assert same(weights(model), [trainer.average[n] for n, _, _ in model.named_parameters()])


def test_patience_stops_after_epochs_without_a_better_score(tmp_path):
    trainer, model = setup_run(tmp_path, epochs=10, patience=2, monitor="loss", mode="min")  # loss is a constant 1.0
    history = trainer.run()
    assert history.stopped == "early stopping" and len(history.epochs) == 3 and history.best_epoch == 1
    assert not (tmp_path / "run.ckpt").exists()


def test_resuming_is_refused_with_other_options_another_seed_or_no_checkpoint(tmp_path):
    path = tmp_path / "run.ckpt"
    nn.Checkpoint({"options": {"dim": 8, "epochs": 3}, "seed": 0}, {"epoch": 1}).write(path)
    assert resumable_checkpoint(path, {"dim": 8, "epochs": 9}, 0).state == {"epoch": 1}  # epochs may change
    with pytest.raises(ModelMismatchError, match=r"started with other options \(dim=8\)"):
        resumable_checkpoint(path, {"dim": 16, "epochs": 3}, 0)
    with pytest.raises(ModelMismatchError, match="seed 0, not 1"):
        resumable_checkpoint(path, {"dim": 8, "epochs": 3}, 1)
    with pytest.raises(ModelNotFoundError, match="no checkpoint"):
        read_checkpoint(tmp_path / "none.ckpt")
    nn.save_model(tmp_path / "model.nlpt", network(), {"task": "x"})
    with pytest.raises(ModelMismatchError, match="not a training checkpoint"):
        read_checkpoint(tmp_path / "model.nlpt")


def test_resuming_into_another_network_is_refused(tmp_path):
    trainer, _ = setup_run(tmp_path, max_minutes=1e-9)
    trainer.run()
    other = nn.Sequential([nn.Dense(4, 3, seed=1), nn.Dense(3, 1, seed=3)])
    with pytest.raises(ModelMismatchError, match="another network"):
        nn.Trainer(other, nn.Adam(other), lambda b: 0.0, lambda e, r: [0], epochs=1).resume(
            read_checkpoint(tmp_path / "run.ckpt"))


def test_generators_are_found_in_every_layer_of_the_tree():
    model = nn.Seq2SeqTransformer(20, 20, dim=8, heads=2, encoder_layers=1, decoder_layers=1, ffn=16, dropout=0.1,
                                  max_len=16, seed=0)
    found = generators(model)
    assert found and all(isinstance(g, np.random.Generator) for g in found.values())
    assert list(generators(network())) == ["1.rng"]


def test_the_progress_bar_shows_the_loss_and_the_throughput(tmp_path, capsys):
    x, y = data()
    model = network()

    def step(rows):
        out, backprop = model.forward(x[rows], train=True)
        loss, grad = nn.binary_cross_entropy_with_logits(out, y[rows])
        backprop(grad)
        return loss

    trainer = nn.Trainer(model, nn.Adam(model, 1e-2), step, lambda epoch, rng: [np.arange(8)] * 3, epochs=1,
                         progress=True, log=lambda line: None, throughput=("rows", len))
    trainer.run()
    line = capsys.readouterr().err.strip().splitlines()[-1].split("\r")[-1]
    assert "epoch 1/1" in line and "3/3" in line and "loss=" in line and "rows/s=" in line
