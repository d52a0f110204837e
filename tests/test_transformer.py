"""The seq2seq transformer: gradients, KV-cache decoding, greedy/beam search, a toy task, model files."""

from __future__ import annotations

import numpy as np
import pytest

import toolkit.nn as nn
from toolkit.nn.decoding import beam_search, greedy
from toolkit.nn.language_model import DecoderLM
from toolkit.nn.positions import PositionalEmbedding
from toolkit.nn.recurrent import BiGRU


def tiny(shared: bool = False, dropout: float = 0.0, seed: int = 0, vocab: int = 11,
         activation: str = "relu") -> nn.Seq2SeqTransformer:
    return nn.Seq2SeqTransformer(vocab, vocab if shared else vocab + 2, dim=8, heads=2, encoder_layers=2,
                                 decoder_layers=2, ffn=16, dropout=dropout, max_len=32, shared_vocab=shared,
                                 activation=activation, seed=seed)


def batch(rng: np.random.Generator, model: nn.Seq2SeqTransformer, B: int = 3, Ts: int = 5, Tt: int = 4):
    src = rng.integers(4, model.src_vocab, size=(B, Ts))
    src[0, -2:] = model.pad_id  # padding must be masked
    tgt = rng.integers(4, model.tgt_vocab, size=(B, Tt))
    tgt[:, 0] = model.bos_id
    return src, tgt


@pytest.mark.parametrize("shared", [False, True])
def test_gradients_match_finite_differences(rng, h, shared):
    # GELU: finite differences across ReLU's kink would not measure the derivative.
    model = tiny(shared, activation="gelu")
    src, tgt = batch(rng, model)
    weights = h.randn(rng, 3, 4, model.tgt_vocab)
    logits, backprop = model.forward((src, tgt), train=True)
    assert logits.shape == (3, 4, model.tgt_vocab) and logits.dtype == np.float32
    model.zero_grad()
    backprop(weights)
    named = {name: (param, grad.copy()) for name, param, grad in model.named_parameters()}
    # Every parameter takes part (the shared table is listed once).
    assert len(named) == len({id(p) for p, _ in named.values()})
    assert all(np.abs(g).sum() > 0 for name, (_, g) in named.items() if not name.endswith(".bq")
               and not name.endswith(".bk")), [n for n, (_, g) in named.items() if not np.abs(g).any()]
    chosen = [n for n in named if any(k in n for k in ("0.table", "wq", "wk", "wv", "wo", "gamma", "w", "b"))]

    def loss(**params):
        for name, value in params.items():
            named[name][0][...] = value
        return float((model((src, tgt)).astype(np.float64) * weights).sum())

    values = {n: named[n][0].copy() for n in chosen}
    h.check_grads(loss, values, {n: named[n][1] for n in chosen}, rng)


def test_padding_does_not_change_the_output(rng):
    model = tiny()
    src, tgt = batch(rng, model)
    longer = np.concatenate([src, np.full((3, 4), model.pad_id)], axis=1)
    np.testing.assert_allclose(model((longer, tgt)), model((src, tgt)), atol=1e-5)


def test_cached_steps_equal_full_recomputation(rng):
    model = tiny()
    src, tgt = batch(rng, model, Tt=6)
    full = model((src, tgt))
    cache = model.start(src)
    stepped = [model.step(tgt[:, :2], cache)]  # a prefix of two at once, then one at a time
    stepped += [model.step(tgt[:, t : t + 1], cache) for t in range(2, 6)]
    np.testing.assert_allclose(stepped[0], full[:, 1], atol=1e-4)
    for t in range(2, 6):
        np.testing.assert_allclose(stepped[t - 1], full[:, t], atol=1e-4)
    assert cache.length == 6 and cache.self_k[0].shape == (3, 2, 6, 4)


def test_beam_one_is_greedy_and_beams_are_ranked(rng):
    model = tiny(seed=3)
    src, _ = batch(rng, model, B=5)
    g = greedy(model, src, max_len=12)
    b = beam_search(model, src, beam=1, max_len=12, alpha=0.0)
    assert [x.ids for x in g] == [x[0].ids for x in b]
    np.testing.assert_allclose([x.score for x in g], [x[0].score for x in b], rtol=1e-5)
    wide = beam_search(model, src, beam=4, max_len=12, alpha=0.0, top_k=3)
    for hyps, best1 in zip(wide, b):
        assert 1 <= len(hyps) <= 3
        assert [x.score for x in hyps] == sorted((x.score for x in hyps), reverse=True)
        # A wider beam never finds a worse best hypothesis than the greedy one (alpha 0: raw log-probs).
        assert hyps[0].score >= best1[0].score - 1e-5
        assert all(len(x.ids) <= 12 for x in hyps)


def _toy_batch(rng: np.random.Generator, n: int, reverse: bool):
    lengths = rng.integers(3, 7, size=n)
    src = np.zeros((n, 7), dtype=np.int64)
    tgt_in = np.zeros((n, 8), dtype=np.int64)
    tgt_out = np.zeros((n, 8), dtype=np.int64)
    seqs = []
    for i, L in enumerate(lengths):
        seq = rng.integers(4, 12, size=L)
        out = seq[::-1] if reverse else seq
        src[i, :L], src[i, L] = seq, 3
        tgt_in[i, 0], tgt_in[i, 1 : L + 1] = 2, out
        tgt_out[i, :L], tgt_out[i, L] = out, 3
        seqs.append(list(out))
    return src, tgt_in, tgt_out, seqs


@pytest.mark.parametrize("reverse", [False, True])
def test_tiny_model_learns_to_copy_and_reverse(reverse):
    rng = np.random.default_rng(1)
    model = nn.Seq2SeqTransformer(12, 12, dim=32, heads=4, encoder_layers=1, decoder_layers=1, ffn=64,
                                  dropout=0.0, max_len=16, shared_vocab=True, seed=0)
    opt = nn.Adam(model, nn.warmup_inverse_sqrt(3e-3, 50))
    for _ in range(400):
        src, tgt_in, tgt_out, _ = _toy_batch(rng, 32, reverse)
        logits, backprop = model.forward((src, tgt_in), train=True)
        _, dlogits = nn.softmax_cross_entropy(logits, tgt_out, 0.0, ignore_index=0, dtype=np.float32)
        backprop(dlogits)
        nn.clip_grad_norm(model, 1.0)
        opt.step()
    src, _, _, want = _toy_batch(np.random.default_rng(99), 50, reverse)
    got = [x.ids for x in greedy(model, src, max_len=10)]
    accuracy = np.mean([g == w for g, w in zip(got, want)])
    assert accuracy >= 0.9, accuracy
    beams = beam_search(model, src, beam=3, max_len=10)
    assert np.mean([b[0].ids == w for b, w in zip(beams, want)]) >= 0.9


def test_save_and_load_round_trip(tmp_path, rng):
    for shared in (False, True):
        model = tiny(shared, dropout=0.1, seed=5)
        src, tgt = batch(rng, model)
        path = nn.save_model(tmp_path / f"m{shared}.nlpt", model, {"task": "test"})
        loaded, meta = nn.load_model(path)
        assert isinstance(loaded, nn.Seq2SeqTransformer) and meta == {"task": "test"}
        assert loaded.get_config() == model.get_config()
        np.testing.assert_array_equal(loaded((src, tgt)), model((src, tgt)))


class Undrawable:
    """A random generator that fails when drawn from."""

    def __getattr__(self, name: str):
        raise AssertionError(f"rng.{name} called while a model file was read")


def test_reading_a_model_file_draws_no_initial_weights(tmp_path, rng, monkeypatch):
    # Every parameter is overwritten by the file's: drawing them first was 0.1-0.2 s of every model load.
    models = [tiny(True, dropout=0.1, seed=5), DecoderLM(40, 16, 2, 2, 32, 0.1, 12, seed=3),
              nn.Sequential([PositionalEmbedding(8, 6, seed=1), BiGRU(6, 5, seed=2)])]
    paths = [nn.save_model(tmp_path / f"m{i}.nlpt", model) for i, model in enumerate(models)]
    monkeypatch.setattr(np.random, "default_rng", lambda *args, **kwargs: Undrawable())
    for model, path in zip(models, paths):
        loaded, _ = nn.load_model(path)
        for (name, value, _), (_, expected, _) in zip(loaded.named_parameters(), model.named_parameters()):
            np.testing.assert_array_equal(value, expected, err_msg=name)


def test_too_long_input_is_a_clear_error(rng):
    model = tiny()
    with pytest.raises(ValueError, match="longer than the model's max_len=32"):
        model.start(rng.integers(4, 11, size=(1, 40)))


def test_label_smoothing_float32_matches_float64(rng):
    logits = rng.standard_normal((20, 50)).astype(np.float32) * 4
    targets = rng.integers(0, 50, size=20)
    targets[3] = -1
    l64, g64 = nn.softmax_cross_entropy(logits, targets, 0.1, ignore_index=-1)
    l32, g32 = nn.softmax_cross_entropy(logits, targets, 0.1, ignore_index=-1, dtype=np.float32)
    assert l32 == pytest.approx(l64, rel=1e-5)
    np.testing.assert_allclose(g32, g64, atol=1e-7)
