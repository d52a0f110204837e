"""toolkit.nn.language_model and toolkit.nn.sampling: the GPT-2-layout LM, its cache, and token choice."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.nn import Adam
from toolkit.nn.language_model import DecoderLM, token_losses, train_step
from toolkit.nn.layer_configs import layer_from_arrays, layer_shapes
from toolkit.nn.sampling import Decoding, Sampling


def small_model(max_len: int = 24, dropout: float = 0.0, seed: int = 0) -> DecoderLM:
    return DecoderLM(40, dim=16, heads=2, layers=2, ffn=32, dropout=dropout, max_len=max_len, seed=seed)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64) - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("seed", range(3))
def test_cached_steps_equal_full_recomputation(seed):
    rng = np.random.default_rng(seed)
    model = small_model(seed=seed)
    T = int(rng.integers(6, 20))
    ids = rng.integers(4, 40, size=(2, T))
    full = log_softmax(model.forward(ids)[0])
    prefix = int(rng.integers(1, T))
    logp, cache = model.start(ids[:, :prefix], np.zeros(2, dtype=np.int64))
    np.testing.assert_allclose(logp, full[:, prefix - 1], atol=2e-5)
    for t in range(prefix, T):
        logp = model.step(ids[:, t], cache)
        np.testing.assert_allclose(logp, full[:, t], atol=2e-5)
    assert cache.length == T


def test_left_padded_prompts_match_each_alone():
    model = small_model()
    a, b = [5, 6, 7, 8, 9, 10], [11, 12]
    batch = np.zeros((2, 6), dtype=np.int64)
    batch[0], batch[1, 4:] = a, b
    logp, cache = model.start(batch, np.array([0, 4]))
    stepped = model.step(np.array([13, 14]), cache)
    for row, (prompt, token) in enumerate(((a, 13), (b, 14))):
        alone, own = model.start(np.array([prompt]), np.zeros(1, dtype=np.int64))
        np.testing.assert_allclose(logp[row], alone[0], atol=2e-5)
        np.testing.assert_allclose(stepped[row], model.step(np.array([token]), own)[0], atol=2e-5)


def test_gradients_match_finite_differences():
    model = DecoderLM(12, dim=8, heads=2, layers=1, ffn=16, dropout=0.0, max_len=8, seed=1)
    ids = np.random.default_rng(2).integers(0, 12, size=(2, 7))

    def loss() -> float:
        return float(token_losses(model, ids).mean())

    model.zero_grad()
    train_step(model, ids)
    rng = np.random.default_rng(3)
    for name, param, grad in model.named_parameters():
        index = tuple(int(rng.integers(0, n)) for n in param.shape)
        original = param[index]
        param[index] = original + 1e-2
        up = loss()
        param[index] = original - 1e-2
        down = loss()
        param[index] = original
        numeric = (up - down) / 2e-2
        assert abs(numeric - grad[index]) <= 2e-3 + 0.05 * abs(numeric), name


def test_a_tiny_model_learns_a_sequence():
    model = small_model(max_len=32)
    text = np.array([[3] + [5, 9, 14, 6, 21, 8, 30, 12] * 3])
    optimizer = Adam(model, 1e-2)
    for _ in range(150):
        model.zero_grad()
        loss = train_step(model, text)
        optimizer.step()
    assert loss < 0.05
    decoding = Decoding(model, [[3, 5, 9]], Sampling(temperature=0), 10, [np.random.default_rng(0)])
    list(decoding)
    assert decoding.results[0].ids == [14, 6, 21, 8, 30, 12, 5, 9, 14, 6]


def test_config_and_arrays_rebuild_the_same_model():
    model = small_model()
    config = model.to_config()
    arrays = {"p/" + name: value for name, value, _ in model.named_parameters()}
    assert set(layer_shapes(config)) == {name[2:] for name in arrays}
    again = layer_from_arrays(config, arrays, "p/", kind=DecoderLM)
    ids = np.array([[4, 5, 6]])
    np.testing.assert_array_equal(again.forward(ids)[0], model.forward(ids)[0])


def test_bad_positions_and_full_caches_are_refused():
    model = small_model(max_len=8)
    with pytest.raises(ValueError, match="past the model's context"):
        model.forward(np.zeros((1, 9), dtype=np.int64))
    _, cache = model.start(np.ones((1, 8), dtype=np.int64), np.zeros(1, dtype=np.int64))
    with pytest.raises(ValueError, match="full"):
        model.step(np.array([1]), cache)


# -- sampling -----------------------------------------------------------------

def test_top_k_one_and_temperature_zero_are_greedy():
    rng = np.random.default_rng(0)
    for _ in range(20):
        logp = log_softmax(rng.normal(size=50))
        best = int(np.argmax(logp))
        assert Sampling(top_k=1).choose(logp, rng) == best
        assert Sampling(temperature=0).choose(logp, rng) == best


def test_top_p_and_top_k_keep_only_the_likely_tokens():
    logp = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    rng = np.random.default_rng(0)
    picks = {Sampling(top_p=0.75).choose(logp, rng) for _ in range(300)}
    assert picks == {0, 1}  # 0.5 + 0.3 reach 0.75; 0.15 and 0.05 are cut
    picks = {Sampling(top_k=3, temperature=5.0).choose(logp, rng) for _ in range(300)}
    assert picks == {0, 1, 2}


def test_repetition_penalty_moves_choice_away_from_seen_tokens():
    logp = np.log(np.array([0.4, 0.35, 0.25]))
    assert Sampling(temperature=0).choose(logp, np.random.default_rng(0), seen=[0]) == 0
    assert Sampling(temperature=0, repetition_penalty=1.5).choose(logp, np.random.default_rng(0), seen=[0]) == 1


@pytest.mark.parametrize("bad", [dict(temperature=-1), dict(top_k=-1), dict(top_p=0), dict(top_p=1.5),
                                 dict(repetition_penalty=0.5), dict(min_tokens=-1)])
def test_bad_sampling_settings_are_refused(bad):
    with pytest.raises(ValueError):
        Sampling(**bad)


def test_a_rows_text_does_not_depend_on_its_batch_or_on_sliding():
    model = small_model(max_len=12)
    prompts = [[5, 6, 7, 8, 9], [10, 11], [12] * 12]
    sampling = Sampling(temperature=0.9, top_p=0.9, repetition_penalty=1.2)
    batch = Decoding(model, prompts, sampling, 30, [np.random.default_rng([0, i]) for i in range(3)])
    list(batch)
    for i, prompt in enumerate(prompts):
        alone = Decoding(model, [prompt], sampling, 30, [np.random.default_rng([0, i])])
        list(alone)
        assert batch.results[i].ids == alone.results[0].ids
        assert batch.results[i].finish == alone.results[0].finish
    assert any(len(r.ids) + len(p) > 12 for r, p in zip(batch.results, prompts))  # some row slid


def test_stopping_a_row_ends_it_and_leaves_the_others():
    model = small_model()
    decoding = Decoding(model, [[5, 6], [7, 8]], Sampling(temperature=0), 8, [np.random.default_rng(i) for i in (0, 1)])
    for step, produced in enumerate(decoding):
        if step == 2:
            decoding.stop(0)
    assert decoding.results[0].finish == "stop" and len(decoding.results[0].ids) <= 3
    assert decoding.results[1].finish in ("length", "end")


def test_logprobs_are_the_models():
    model = small_model()
    decoding = Decoding(model, [[5, 6, 7]], Sampling(temperature=0), 4, [np.random.default_rng(0)])
    list(decoding)
    result = decoding.results[0]
    full = log_softmax(model.forward(np.array([[5, 6, 7, *result.ids]]))[0])
    expected = [full[0, 2 + i, token] for i, token in enumerate(result.ids)]
    np.testing.assert_allclose(result.logprobs, expected, atol=2e-5)
