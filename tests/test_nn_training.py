"""Losses, optimizers, schedules, model files and the training loop of toolkit.nn."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import toolkit.nn as nn


# ---- losses ---------------------------------------------------------------

def test_bce_matches_formula_and_survives_huge_logits(rng, h):
    z = np.array([[-3.0], [0.0], [2.0], [-800.0], [800.0]], dtype=np.float32)
    y = np.array([0, 1, 1, 1, 0], dtype=np.float32)
    loss, grad = nn.binary_cross_entropy_with_logits(z, y)
    p = 1 / (1 + np.exp(-z[:3, 0].astype(np.float64)))
    expected = [-np.log(1 - p[0]), -np.log(p[1]), -np.log(p[2]), 800.0, 800.0]
    assert loss == pytest.approx(np.mean(expected), rel=1e-9)
    np.testing.assert_allclose(grad[:, 0], (np.r_[p, 0.0, 1.0] - y) / 5, rtol=1e-6)
    assert grad.shape == z.shape and grad.dtype == np.float32


def test_bce_gradient_finite_differences(rng, h):
    z, y = h.randn(rng, 6, 1, scale=3.0), (rng.random(6) < 0.5).astype(np.float32)
    _, g = nn.binary_cross_entropy_with_logits(z, y)
    h.check_grads(lambda z: nn.binary_cross_entropy_with_logits(z, y)[0], {"z": z}, {"z": g}, rng)


def test_softmax_cross_entropy_label_smoothing_and_ignore_index(rng, h):
    logits = h.randn(rng, 2, 3, 5)
    targets = np.array([[1, 4, -100], [0, -100, 2]])
    loss, grad = nn.softmax_cross_entropy(logits, targets, label_smoothing=0.1, ignore_index=-100)
    z = logits.reshape(-1, 5).astype(np.float64)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    keep = targets.ravel() != -100
    manual = []
    for row, t in zip(logp[keep], targets.ravel()[keep]):
        q = np.full(5, 0.1 / 5)
        q[t] += 0.9
        manual.append(-(q * row).sum())
    assert loss == pytest.approx(np.mean(manual), rel=1e-6)
    assert not grad.reshape(-1, 5)[~keep].any()
    h.check_grads(lambda logits: nn.softmax_cross_entropy(logits, targets, 0.1, -100)[0],
                  {"logits": logits}, {"logits": grad}, rng)
    with pytest.raises(IndexError):
        nn.softmax_cross_entropy(logits, np.full((2, 3), 7))


def test_mse(rng, h):
    pred, target = h.randn(rng, 4, 3), h.randn(rng, 4, 3)
    loss, grad = nn.mean_squared_error(pred, target)
    assert loss == pytest.approx(float(((pred.astype(np.float64) - target) ** 2).mean()))
    h.check_grads(lambda pred: nn.mean_squared_error(pred, target)[0], {"pred": pred}, {"pred": grad}, rng)


# ---- optimizers -------------------------------------------------------------

class OneParam(nn.Layer):
    def __init__(self, value):
        super().__init__()
        self.add_param("p", np.array(value, dtype=np.float32))


def test_adam_matches_the_textbook_update():
    layer = OneParam([1.0, -2.0])
    opt = nn.Adam(layer, lr=0.1)
    m = v = np.zeros(2)
    p = np.array([1.0, -2.0])
    for t in range(1, 4):
        g = np.array([0.5, -1.5]) * t
        layer.grads["p"][...] = g
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        p = p - 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(layer.params["p"], p, rtol=1e-5)
        assert not layer.grads["p"].any(), "step() zeroes the gradients"


def test_adamw_decays_weights_not_gradients_and_not_vectors():
    matrix, vector = OneParam([[2.0, -1.0]]), OneParam([2.0])
    for layer in (matrix, vector):
        nn.AdamW(layer, lr=0.1, weight_decay=0.5).step()  # zero gradient: only the decay acts
    np.testing.assert_allclose(matrix.params["p"], [[2.0 * (1 - 0.1 * 0.5), -1.0 * (1 - 0.1 * 0.5)]], rtol=1e-6)
    np.testing.assert_array_equal(vector.params["p"], [2.0])  # a bias or a gain does not decay


def test_sgd_momentum():
    layer = OneParam([0.0])
    opt = nn.SGD(layer, lr=0.5, momentum=0.9)
    for expected in (-0.5, -0.5 - 0.95, -0.5 - 0.95 - 1.355):
        layer.grads["p"][...] = 1.0
        opt.step()
        np.testing.assert_allclose(layer.params["p"], [expected], rtol=1e-6)


def test_clip_grad_norm_scales_to_the_limit():
    layer = nn.Sequential([OneParam([3.0, 0.0]), OneParam([4.0])])
    layer.layers[0].grads["p"][...] = [3.0, 0.0]
    layer.layers[1].grads["p"][...] = [4.0]
    assert nn.clip_grad_norm(layer, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(layer.layers[0].grads["p"], [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(layer.layers[1].grads["p"], [0.8], rtol=1e-6)
    assert nn.clip_grad_norm(layer, 10.0) == pytest.approx(1.0)


def test_schedules():
    lin = nn.warmup_linear(1.0, warmup_steps=4, total_steps=12)
    assert [lin(s) for s in (0, 3, 4, 8, 12, 20)] == pytest.approx([0.25, 1.0, 1.0, 0.5, 0.0, 0.0])
    inv = nn.warmup_inverse_sqrt(2.0, warmup_steps=4)
    assert [inv(s) for s in (0, 3, 15)] == pytest.approx([0.5, 2.0, 1.0])
    layer = OneParam([0.0])
    opt = nn.SGD(layer, lr=lin)
    layer.grads["p"][...] = 1.0
    opt.step()
    assert layer.params["p"][0] == pytest.approx(-0.25)


# ---- model files ------------------------------------------------------------

def small_cnn(seed=0):
    return nn.Sequential([
        nn.Embedding(30, 8, padding_idx=0, seed=seed),
        nn.Conv1D(8, 16, 3, activation="relu", seed=seed + 1),
        nn.GlobalMaxPool1D(),
        nn.Dense(16, 1, seed=seed + 2),
    ])


def test_save_load_gives_identical_predictions(tmp_path, rng):
    model = small_cnn()
    path = nn.save_model(tmp_path / "m.nlpt", model, {"vocab": ["a", "b"], "metrics": {"acc": 0.9}})
    loaded, meta = nn.load_model(path)
    ids = rng.integers(0, 30, (4, 10))
    np.testing.assert_array_equal(loaded(ids), model(ids))
    assert meta == {"vocab": ["a", "b"], "metrics": {"acc": 0.9}}
    with zipfile.ZipFile(path) as zf:
        assert all(n == "config.json" or n.endswith(".npy") for n in zf.namelist())
        assert json.loads(zf.read("config.json"))["format"] == "nlp-tool-model"


def test_damaged_and_foreign_files_give_clear_errors(tmp_path):
    path = nn.save_model(tmp_path / "m.nlpt", small_cnn())
    data = path.read_bytes()
    cases = {
        "truncated.nlpt": data[: len(data) // 2],
        "foreign.nlpt": b"PK\x03\x04 not really a zip",
        "text.nlpt": b"hello world",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(nn.ModelFileError, match=name):
            nn.load_model(tmp_path / name)
    # Altered weights: same size, different bytes inside an array.
    altered = bytearray(data)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("arrays/0.table.npy")
    altered[info.header_offset + 30 + len(info.filename) + 200] ^= 0xFF
    (tmp_path / "altered.nlpt").write_bytes(bytes(altered))
    with pytest.raises(nn.ModelFileError, match="altered|checksum|CRC|Bad"):
        nn.load_model(tmp_path / "altered.nlpt")
    # Altered by a tool that rewrote the zip (valid CRCs): the SHA-256 in config.json catches it.
    rewritten = tmp_path / "rewritten.nlpt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(rewritten, "w") as dst:
        for item in src.namelist():
            content = src.read(item)
            if item == "arrays/1.b.npy":
                content = content[:-4] + b"\x00\x00\x80\x3f"
            dst.writestr(item, content)
    with pytest.raises(nn.ModelFileError, match="rewritten.nlpt: array '1.b' does not match its checksum"):
        nn.load_model(rewritten)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("config.json", json.dumps({"format": "something-else"}))
    with pytest.raises(nn.ModelFileError, match="not an nlp-tool model"):
        nn.load_model(other)
    with pytest.raises(nn.ModelFileError, match="no such"):
        nn.load_model(tmp_path / "missing.nlpt")


def test_pickled_arrays_are_refused(tmp_path):
    path = tmp_path / "evil.nlpt"
    import io
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array([object()], dtype=object), allow_pickle=True)
    config = {"format": "nlp-tool-model", "format_version": 1,
              "architecture": OneParam([0.0]).to_config(), "arrays": {}, "metadata": {}}
    import hashlib
    config["arrays"]["p"] = hashlib.sha256(buf.getvalue()).hexdigest()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("arrays/p.npy", buf.getvalue())
    with pytest.raises(nn.ModelFileError):
        nn.read_model_file(path)


def test_failed_save_leaves_previous_file_intact(tmp_path):
    path = nn.save_model(tmp_path / "m.nlpt", small_cnn(seed=1))
    before = path.read_bytes()
    with pytest.raises(ValueError, match="JSON"):
        nn.save_model(path, small_cnn(seed=2), {"bad": object()})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.nlpt"]


# ---- training ---------------------------------------------------------------

def keyword_data(rng, n=256, T=20, V=30):
    """Label 1 when the keyword (id 1) occurs anywhere: needs the conv + max-pool to find it."""
    x = rng.integers(2, V, (n, T)).astype(np.int64)
    y = (rng.random(n) < 0.5).astype(np.float32)
    for i in np.flatnonzero(y):
        x[i, rng.integers(0, T)] = 1
    return x, y


def accuracy(y, out):
    return float(((out.reshape(-1) > 0) == (y > 0.5)).mean())


def test_text_cnn_learns_keyword_detection(rng):
    x, y = keyword_data(rng)
    model = small_cnn(seed=3)
    hist = nn.fit(model, nn.binary_cross_entropy_with_logits, nn.Adam(model, 1e-2), x, y, epochs=25,
                  batch_size=32, validation=(x, y), metrics={"accuracy": accuracy}, patience=3, progress=False)
    assert hist.best_value == 1.0
    # The model ends with the best epoch's weights.
    assert accuracy(y, nn.predict(model, x)) == 1.0
    assert hist.stopped in ("completed", "early stopping")


def test_same_seed_same_weights_bit_for_bit(rng):
    x, y = keyword_data(rng, n=96)

    def train():
        model = nn.Sequential([nn.Embedding(30, 8, seed=5), nn.Conv1D(8, 16, 3, activation="relu", seed=6),
                               nn.GlobalMaxPool1D(), nn.Dropout(0.2, seed=7), nn.Dense(16, 1, seed=8)])
        nn.fit(model, nn.binary_cross_entropy_with_logits, nn.Adam(model, 1e-2), x, y, epochs=2,
               batch_size=16, seed=11, progress=False)
        return [p.copy() for _, p, _ in model.named_parameters()]

    first, second = train(), train()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_early_stopping_and_monitor(rng):
    x, y = keyword_data(rng, n=64)
    model = small_cnn()
    calls = []

    def flat_metric(y_true, out):
        calls.append(1)
        return 0.5  # never improves after the first epoch

    hist = nn.fit(model, nn.binary_cross_entropy_with_logits, nn.Adam(model), x, y, epochs=10, batch_size=16,
                  validation=(x, y), metrics={"flat": flat_metric}, patience=2, progress=False)
    assert hist.stopped == "early stopping" and len(hist.epochs) == 3 and hist.best_epoch == 1
    assert [e["val_flat"] for e in hist.epochs] == [0.5, 0.5, 0.5]
    assert len(calls) == 3
    with pytest.raises(ValueError, match="monitor"):
        nn.fit(model, nn.binary_cross_entropy_with_logits, nn.Adam(model), x, y, epochs=1, validation=(x, y),
               metrics={"flat": flat_metric}, monitor="missing", progress=False)


def test_fit_rejects_bad_input(rng):
    model = small_cnn()
    x, y = keyword_data(rng, n=8)
    with pytest.raises(ValueError, match="rows"):
        nn.fit(model, nn.binary_cross_entropy_with_logits, nn.Adam(model), x, y[:4], epochs=1)
    with pytest.raises(ValueError, match="no training"):
        nn.fit(model, nn.binary_cross_entropy_with_logits, nn.Adam(model), x[:0], y[:0], epochs=1)
    with pytest.raises(ValueError, match="mode"):
        nn.fit(model, nn.binary_cross_entropy_with_logits, nn.Adam(model), x, y, epochs=1, mode="best")


def test_training_progress_bar_shows_loss_rate_and_validation_metric(rng, capsys):
    x, y = keyword_data(rng, n=64)
    model = small_cnn()
    nn.fit(model, nn.binary_cross_entropy_with_logits, nn.Adam(model), x, y, epochs=1, batch_size=16,
           validation=(x, y), metrics={"accuracy": accuracy}, progress=True)
    err = capsys.readouterr().err
    bar = [line for line in err.split("\n") if "[" in line][-1].split("\r")[-1]
    assert "epoch 1/1" in bar and "4/4" in bar and "batch/s" in bar and "loss=" in bar
    # One line per epoch, with its validation score, also in logs.
    assert "epoch 1/1: loss " in err and "val_accuracy " in err


def test_progress_bar_draws_only_when_enabled(rng, capsys):
    import io
    from toolkit.progress import ProgressBar
    stream = io.StringIO()
    with ProgressBar(10, "work", stream=stream) as bar:  # StringIO is not a terminal
        bar.update(10, loss=0.5)
    assert stream.getvalue() == ""
    stream = io.StringIO()
    with ProgressBar(10, "work", unit="ex", stream=stream, enabled=True) as bar:
        bar.update(10, loss=0.5)
    out = stream.getvalue()
    assert "work" in out and "10/10" in out and "loss=0.5" in out and out.endswith("\n")


def test_save_arrays_replaces_a_symlinks_target_and_refuses_a_fifo(tmp_path):
    (tmp_path / "real.nlpt").write_text("old")
    (tmp_path / "link.nlpt").symlink_to("real.nlpt")
    nn.save_arrays(tmp_path / "link.nlpt", {"x": np.ones(2, np.float32)})
    assert (tmp_path / "link.nlpt").is_symlink()
    np.testing.assert_array_equal(nn.read_model_file(tmp_path / "real.nlpt")[1]["x"], np.ones(2))
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ValueError, match="pipe is not a regular file"):
        nn.save_arrays(tmp_path / "pipe", {"x": np.ones(2, np.float32)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.nlpt", "pipe", "real.nlpt"]


def test_save_arrays_round_trip_for_models_that_are_not_layers(tmp_path):
    coef = np.arange(12, dtype=np.float16).reshape(3, 4)
    path = nn.save_arrays(tmp_path / "linear.nlpt", {"coef": coef, "bias": np.zeros(3, np.float32)},
                          {"labels": ["a", "b", "c"]})
    config, arrays = nn.read_model_file(path)
    assert config["architecture"] is None and config["metadata"] == {"labels": ["a", "b", "c"]}
    np.testing.assert_array_equal(arrays["coef"], coef)
    assert arrays["coef"].dtype == np.float16
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask, "model files get the umask's mode, like any data file"
    with pytest.raises(nn.ModelFileError, match="no layer architecture"):
        nn.load_model(path)
    with pytest.raises(ValueError, match="Python objects"):
        nn.save_arrays(tmp_path / "bad.nlpt", {"x": np.array([object()])})
    assert not (tmp_path / "bad.nlpt").exists()


def test_rewrite_metadata_edits_only_the_metadata_in_place_or_into_a_copy(tmp_path):
    from toolkit.nn import read_model_file, rewrite_metadata, save_arrays

    source = tmp_path / "m.nlpt"
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    save_arrays(source, arrays, {"name": "m", "training": {"seed": 0}}, architecture={"class": "X", "config": {}})
    copy = tmp_path / "copy.nlpt"
    meta = rewrite_metadata(source, lambda m: m["training"].update(command="c"), copy)
    assert meta == {"name": "m", "training": {"seed": 0, "command": "c"}}
    assert read_model_file(source)[0]["metadata"] == {"name": "m", "training": {"seed": 0}}
    config, copied = read_model_file(copy)
    assert config["metadata"] == meta and config["architecture"] == {"class": "X", "config": {}}
    np.testing.assert_array_equal(copied["w"], arrays["w"])
    rewrite_metadata(source, lambda m: m.pop("training"))
    assert read_model_file(source)[0]["metadata"] == {"name": "m"}
