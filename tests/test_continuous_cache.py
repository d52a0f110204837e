"""The continuous cache of a language model: its probabilities against a plain loop, its mixture, its memory
while decoding, the same probabilities in decoding as in perplexity, its choice on validation data, and its
place in model files, evaluation and training."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import toolkit
from toolkit.errors import ModelFileError, OptionError
from toolkit.nn.continuous_cache import ContinuousCache, Remembered, choose_cache


def loop_probabilities(states: np.ndarray, next_ids: np.ndarray, size: int, theta: float) -> np.ndarray:
    """The cache's probability of each next id, one position at a time, in float64."""
    found = np.full(len(next_ids), np.nan)
    for j in range(1, len(next_ids)):
        before = np.arange(max(0, j - size), j)
        z = theta * (states[before].astype(np.float64) @ states[j].astype(np.float64))
        w = np.exp(z - z.max())
        found[j] = w[next_ids[before] == next_ids[j]].sum() / w.sum()
    return found


@pytest.mark.parametrize("n, size, theta", [(1500, 300, 0.05), (40, 1000, 0.5), (700, 1, 0.0), (2, 5, 1.0)])
def test_probabilities_equal_a_plain_loop(n, size, theta):
    rng = np.random.default_rng(n)
    states = rng.normal(size=(n, 16)).astype(np.float32)
    next_ids = rng.integers(0, 12, n)
    cache = ContinuousCache(size, theta, 0.3)
    expected = loop_probabilities(states, next_ids, size, theta)
    found = cache.probabilities(states, next_ids)
    assert np.isnan(found[0]) and np.allclose(found[1:], expected[1:], rtol=1e-5, atol=1e-9)
    # From a start: the positions before it are remembered, not scored.
    for start in (0, 1, n // 2, n):
        assert np.allclose(cache.probabilities(states, next_ids, start=start), found[start:], equal_nan=True)


def test_several_settings_at_once_equal_each_alone():
    from toolkit.nn.continuous_cache import cache_probabilities

    rng = np.random.default_rng(7)
    states, next_ids = rng.normal(size=(1300, 8)).astype(np.float32), rng.integers(0, 9, 1300)
    settings = [(50, 0.3), (700, 0.3), (700, 1.0), (2000, 0.1), (1, 2.0)]
    for start in (0, 600):
        together = cache_probabilities(states, next_ids, settings, start)
        for (size, theta), found in zip(settings, together):
            expected = loop_probabilities(states, next_ids, size, theta)[start:]
            assert np.allclose(found, expected, rtol=1e-5, atol=1e-9, equal_nan=True)


def test_probabilities_refuse_mismatched_input():
    cache = ContinuousCache(10, 0.1, 0.2)
    with pytest.raises(ValueError, match="do not match"):
        cache.probabilities(np.zeros((5, 4), np.float32), np.zeros(6, np.int64))
    with pytest.raises(ValueError, match="outside"):
        cache.probabilities(np.zeros((5, 4), np.float32), np.zeros(5, np.int64), start=6)


@pytest.mark.parametrize("settings", [dict(size=0, theta=0.1, weight=0.2), dict(size=2.5, theta=0.1, weight=0.2),
                                      dict(size=True, theta=0.1, weight=0.2), dict(size=10**9, theta=0.1, weight=0.2),
                                      dict(size=5, theta=True, weight=0.2),
                                      dict(size=5, theta=-1, weight=0.2), dict(size=5, theta=float("nan"), weight=0.2),
                                      dict(size=5, theta=0.1, weight=0.0), dict(size=5, theta=0.1, weight=1.0)])
def test_bad_settings_are_refused(settings):
    with pytest.raises(ValueError, match="continuous cache"):
        ContinuousCache(**settings)


def test_settings_round_trip_and_bad_saved_settings_are_refused():
    cache = ContinuousCache(2000, 0.0105, 0.3)
    assert ContinuousCache.from_dict(json.loads(json.dumps(cache.to_dict()))) == cache
    for saved in ({"size": 10, "theta": 0.1}, [10, 0.1, 0.2], {"size": 10, "theta": 0.1, "weight": 0.2, "x": 1}):
        with pytest.raises(ValueError):
            ContinuousCache.from_dict(saved)


def test_the_mixture_keeps_the_model_where_the_cache_is_empty():
    cache = ContinuousCache(5, 0.1, 0.25)
    mixed = cache.mix(np.array([0.5, 0.2, 0.1]), np.array([np.nan, 1.0, 0.0]))
    assert np.allclose(mixed, [0.5, 0.75 * 0.2 + 0.25, 0.75 * 0.1])


def test_a_decoding_step_mixes_a_distribution_from_the_remembered_tokens():
    rng = np.random.default_rng(0)
    vocab, dim = 9, 6
    logits = rng.normal(size=vocab)
    logp = logits - np.log(np.exp(logits).sum())
    keys, values, query = rng.normal(size=(7, dim)).astype(np.float32), rng.integers(0, vocab, 7), rng.normal(size=dim)
    cache = ContinuousCache(5, 0.3, 0.4)
    mixed = cache.next_logp(logp, query.astype(np.float32), keys, values)
    w = np.exp(0.3 * keys[-5:].astype(np.float64) @ query)
    p_cache = np.array([w[values[-5:] == v].sum() for v in range(vocab)]) / w.sum()
    assert np.allclose(np.exp(mixed), 0.6 * np.exp(logp) + 0.4 * p_cache)
    assert math.isclose(np.exp(mixed).sum(), 1.0, rel_tol=1e-9)
    assert np.array_equal(cache.next_logp(logp, query, keys[:0], values[:0]), logp)  # nothing remembered yet


def test_remembered_keeps_at_least_the_last_limit_entries_in_bounded_buffers():
    rng = np.random.default_rng(1)
    memory, states, ids = Remembered(3, limit=50), [], []
    for k in [1, 30, 0, 7, 120, 1, 1, 45, 3] * 4:
        new_states, new_ids = rng.normal(size=(k, 3)).astype(np.float32), rng.integers(0, 100, k)
        memory.add(new_states, new_ids)
        states += list(new_states)
        ids += list(new_ids)
        keys, values = memory.view()
        assert len(values) >= min(50, len(ids)) and len(memory.values) <= 2 * 50 + 16
        assert np.array_equal(values, ids[len(ids) - len(values):])
        assert np.array_equal(keys, np.array(states[len(states) - len(values):]).reshape(-1, 3))


@pytest.fixture(scope="module")
def tiny_lm():
    from toolkit.nn.language_model import DecoderLM

    return DecoderLM(20, dim=16, heads=2, layers=2, ffn=32, dropout=0.0, max_len=24, pad_id=0, eos_id=3, seed=5)


def test_decoding_draws_from_the_probabilities_perplexity_scores(tiny_lm):
    """Greedy decoding with a cache records each token's mixed log-probability; the same text scored as a
    stream (states, cache probabilities, mixture) gives the same numbers, for prompts batched together."""
    from toolkit.nn.language_model import scored_states
    from toolkit.nn.sampling import Decoding, Sampling

    cache = ContinuousCache(6, 0.5, 0.35)
    prompts = [[3, 5, 6, 7, 5, 6], [3, 9], [3, 11, 12, 13, 14, 15, 11, 12, 13]]
    decoding = Decoding(tiny_lm, prompts, Sampling(temperature=0), 10, [np.random.default_rng(0)] * 3,
                        forbidden=[3], continuous_cache=cache)
    for _ in decoding:
        pass
    plain = Decoding(tiny_lm, prompts, Sampling(temperature=0), 10, [np.random.default_rng(0)] * 3, forbidden=[3])
    for _ in plain:
        pass
    assert [r.ids for r in decoding.results] != [r.ids for r in plain.results]  # the cache changed the text
    for prompt, result in zip(prompts, decoding.results):
        ids = np.array(prompt + result.ids)
        losses, states = scored_states(tiny_lm, ids[None])
        mixed = np.log(cache.mix(np.exp(-losses[0]), cache.probabilities(states[0], ids[1:])))
        assert np.allclose(result.logprobs, mixed[len(prompt) - 1:], atol=1e-4)


def test_decoding_past_the_context_still_remembers_what_slid_out(tiny_lm):
    from toolkit.nn.sampling import Decoding, Sampling

    cache = ContinuousCache(100, 0.5, 0.3)
    decoding = Decoding(tiny_lm, [[3, 4, 5]], Sampling(temperature=1.0), 60, [np.random.default_rng(2)],
                        forbidden=[3], continuous_cache=cache)
    for _ in decoding:
        pass
    produced = decoding.results[0].ids
    assert len(produced) + 3 > tiny_lm.max_len  # slid at least once
    keys, values = decoding._remembered[0].view()
    assert list(values) == [4, 5, *produced] and len(keys) == len(values)


def test_choose_cache_takes_a_cache_that_helps_and_none_that_does_not():
    rng = np.random.default_rng(3)
    motif = rng.normal(size=(50, 8)).astype(np.float32)
    # A text that repeats itself: the model (uniform over 200 ids) does not know it, the cache does.
    states = np.tile(motif, (20, 1)) + 0.01 * rng.normal(size=(1000, 8)).astype(np.float32)
    next_ids = np.tile(rng.integers(0, 200, 50), 20)
    nll = np.full(1000, math.log(200))
    cache, perplexity = choose_cache(states, next_ids, nll, words=1000, sizes=(100,), theta_scales=(1.0, 8.0),
                                     weights=(0.2, 0.5))
    assert cache is not None and cache.size == 100 and perplexity < 200 / 2
    # Ids that never repeat: every cache only takes probability away.
    assert choose_cache(states, np.arange(1000), nll, 1000, sizes=(100,), theta_scales=(8.0,), weights=(0.2,)) == (
        None, pytest.approx(200.0))


STORY = ["the cat sat on the mat and looked at the moon .", "a dog ran in the fog and barked at the sea .", "",
         "the old man sold fish by the river every day ."]
TRAIN = dict(epochs=3, vocab_size=50, dim=16, heads=2, layers=1, ffn=16, context_length=16, batch_blocks=4, warmup=2,
             progress=False)


def test_training_chooses_a_cache_on_validation_text_and_evaluation_reports_both(tmp_path):
    from toolkit.nn import read_model_file

    records = [{"text": line} for line in STORY * 6]
    report = toolkit.train("generate", records, output=tmp_path / "lm.nlpt", valid=records[:8], **TRAIN)
    metadata = read_model_file(tmp_path / "lm.nlpt")[0]["metadata"]
    assert report["metrics"]["word_ppl_with_cache"] <= report["metrics"]["word_ppl_without_cache"]
    assert "continuous_cache" in metadata
    scores = toolkit.evaluate("generate", records[:8], model=str(tmp_path / "lm.nlpt"))
    if metadata["continuous_cache"] is None:
        assert "without_cache" not in scores
    else:
        # The validation text scored again: the perplexities the training recorded for it.
        assert scores["continuous_cache"] == metadata["continuous_cache"]
        assert scores["word_perplexity"] == pytest.approx(report["metrics"]["word_ppl_with_cache"], rel=1e-3)
        assert scores["without_cache"]["word_perplexity"] == pytest.approx(
            report["metrics"]["word_ppl_without_cache"], rel=1e-3)
    off = toolkit.train("generate", records, output=tmp_path / "off.nlpt", valid=records[:8], continuous_cache=False,
                        **TRAIN)
    assert "word_ppl_with_cache" not in off["metrics"]
    assert "continuous_cache" not in read_model_file(tmp_path / "off.nlpt")[0]["metadata"]


def test_a_model_file_with_a_cache_generates_with_it_when_asked_and_a_bad_one_is_refused(tmp_path):
    from toolkit.nn import rewrite_metadata

    records = [{"text": line} for line in STORY * 6]
    toolkit.train("generate", records, output=tmp_path / "lm.nlpt", continuous_cache=False, **TRAIN)
    plain = toolkit.pipeline("generate", model=str(tmp_path / "lm.nlpt"), temperature=0, max_tokens=12, logprobs=True)
    rewrite_metadata(tmp_path / "lm.nlpt", lambda m: m.update(continuous_cache={"size": 50, "theta": 0.5,
                                                                                "weight": 0.6}),
                     tmp_path / "cached.nlpt")
    logprobs = {use: [t["logprob"] for t in toolkit.pipeline(
        "generate", model=str(tmp_path / "cached.nlpt"), temperature=0, max_tokens=12, logprobs=True,
        continuous_cache=use)("the cat")["logprobs"]] for use in (False, True)}
    # Generation draws from the model alone unless asked; the file's cache is there either way.
    assert logprobs[False] == [t["logprob"] for t in plain("the cat")["logprobs"]] != logprobs[True]
    # Asked of a model without one: said at once, before any input.
    with pytest.raises(OptionError, match="has no continuous cache"):
        toolkit.pipeline("generate", model=str(tmp_path / "lm.nlpt"), continuous_cache=True)
    rewrite_metadata(tmp_path / "lm.nlpt", lambda m: m.update(continuous_cache={"size": -1, "theta": 0.5,
                                                                                "weight": 0.6}),
                     tmp_path / "bad.nlpt")
    with pytest.raises(ModelFileError, match="continuous cache"):
        toolkit.pipeline("generate", model=str(tmp_path / "bad.nlpt"))("the cat")


def test_perplexity_scores_the_cache_chunk_by_chunk_as_all_at_once(monkeypatch):
    from toolkit.lm import training
    from toolkit.lm.generator import Generator
    from toolkit.nn.language_model import DecoderLM
    from toolkit.text.subwords import EOS_ID, PAD_ID, SubwordVocab

    texts = [line for line in STORY * 12 if line]
    vocab = SubwordVocab.train(texts, 40, "unigram")
    model = DecoderLM(len(vocab), dim=16, heads=2, layers=1, ffn=16, dropout=0.0, max_len=16, pad_id=PAD_ID,
                      eos_id=EOS_ID, seed=1)
    generator = Generator(model, vocab, ContinuousCache(40, 0.5, 0.3))
    counts, _, stretches = training.scored_stream(generator, texts)
    states, next_ids, nll = (np.concatenate(parts) for parts in zip(*stretches))
    expected = -np.log(generator.continuous_cache.mix(np.exp(-nll),
                                                      generator.continuous_cache.probabilities(states, next_ids))).sum()
    for chunk in (1, 7, 100_000):
        monkeypatch.setattr(training, "CACHE_CHUNK", chunk)
        scores = training.perplexities(generator, texts)
        assert scores["nll"] == pytest.approx(expected, rel=1e-6) and scores["tokens"] == len(next_ids) > 3 * 40
        assert scores["without_cache"]["nll"] == pytest.approx(nll.sum(), rel=1e-6) != pytest.approx(expected)


def test_the_cache_is_chosen_on_the_first_words_of_a_long_validation_text(monkeypatch):
    from toolkit.lm import training
    from toolkit.lm.generator import Generator
    from toolkit.nn.language_model import DecoderLM
    from toolkit.text.subwords import EOS_ID, PAD_ID, SubwordVocab

    texts = [line for line in STORY * 12 if line]
    vocab = SubwordVocab.train(texts, 40, "unigram")
    generator = Generator(DecoderLM(len(vocab), dim=16, heads=2, layers=1, ffn=16, dropout=0.0, max_len=16,
                                    pad_id=PAD_ID, eos_id=EOS_ID, seed=1), vocab)
    monkeypatch.setattr(training, "CACHE_CHOICE_WORDS", 30)
    first = training.choose_continuous_cache(generator, texts)
    monkeypatch.setattr(training, "CACHE_CHOICE_WORDS", 10**9)
    # 30 words: the first two texts (12 and 11 words, each with its end); the rest is not read.
    assert first == training.choose_continuous_cache(generator, texts[:2])
    assert first != training.choose_continuous_cache(generator, texts)
