"""Word vectors from unlabeled text (toolkit.text.vectors): PPMI co-occurrence + SVD, and their use as an embedding init."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.text import FIRST_WORD_ID, WordTokenizer
from toolkit.text.vectors import cooccurrence, ppmi, scale_like, word_vectors


def test_cooccurrence_counts_within_the_window_by_distance_and_never_across_sequences():
    # Ids 0 and 1 are below `first`: they keep their places but count nothing.
    counts, tokens = cooccurrence([[2, 3, 1, 4], [4, 2]], 5, window=2, first=2)
    assert tokens == 6
    dense = counts.toarray()
    np.testing.assert_array_equal(dense, dense.T)
    # 2-3 at distance 1 (weight 1); 3-4 at distance 2 (weight 1/2); 2-4 at distance 3 (outside) and 1 in
    # the second sequence; nothing for id 1 and no count from the end of one sequence to the next.
    assert dense[2, 3] == 1.0 and dense[3, 4] == 0.5 and dense[2, 4] == 1.0
    assert dense.trace() == 0.0 and not dense[:2].any()
    with pytest.raises(ValueError, match="window"):
        cooccurrence([[2, 3]], 5, window=0)
    with pytest.raises(ValueError, match=r"ids must be in \[0, 5\)"):
        cooccurrence([[2, 5]], 5)
    with pytest.raises(ValueError, match=r"ids must be in \[0, 5\)"):
        cooccurrence([[-1, 2]], 5)
    empty, tokens = cooccurrence([[], []], 5)
    assert tokens == 0 and empty.nnz == 0


def test_ppmi_is_positive_and_smoothing_lowers_rare_contexts(h):
    tokenizer = WordTokenizer().fit(h.ANIMALS + h.VEHICLES)
    ids = tokenizer.vocabulary
    counts, _ = cooccurrence(tokenizer.texts_to_sequences(h.topic_texts(50)), tokenizer.vocab_size, first=FIRST_WORD_ID)
    weights = ppmi(counts)
    assert weights.shape == counts.shape and (weights.data > 0).all()
    # Same-topic pairs co-occur, cross-topic pairs never do: only the former carry weight.
    assert weights[ids["cat"], ids["dog"]] > 0 and weights[ids["cat"], ids["bus"]] == 0
    # A context seen once: unsmoothed PMI would give it its full rarity; 0.75 pulls it down.
    rare, _ = cooccurrence([[0, 1]] * 50 + [[0, 2]], 3)
    assert ppmi(rare)[0, 2] < ppmi(rare, smoothing=1.0)[0, 2]
    with pytest.raises(ValueError, match="no two vocabulary words"):
        ppmi(cooccurrence([[0], [1]], 2)[0])


def test_vectors_of_words_that_co_occur_are_closer_than_unrelated_ones(h):
    tokenizer = WordTokenizer().fit(h.ANIMALS + h.VEHICLES + ["unseen"])
    size = tokenizer.vocab_size
    vectors, known, report = word_vectors(tokenizer.texts_to_sequences(h.topic_texts()), size, 2, first=FIRST_WORD_ID)
    assert vectors.shape == (size, 2) and vectors.dtype == np.float32
    unseen = tokenizer.vocabulary["unseen"]
    assert not known[:FIRST_WORD_ID].any() and not known[unseen] and known.sum() == 32
    assert not vectors[:FIRST_WORD_ID].any() and not vectors[unseen].any()
    assert report["tokens"] == 200 * 12 and report["words"] == 32 and report["vocabulary"] == 33
    v = {w: vectors[i] for w, i in tokenizer.vocabulary.items()}
    for a, b, other in [("cat", "dog", "bus"), ("train", "ship", "cow"), ("fox", "wolf", "taxi")]:
        assert h.cosine(v[a], v[b]) > h.cosine(v[a], v[other]) + 0.5, (a, b, other)
    with pytest.raises(ValueError, match="too small"):
        word_vectors(tokenizer.texts_to_sequences(h.topic_texts()), size, 40, first=FIRST_WORD_ID)


def test_scale_like_keeps_the_init_scale_and_the_rows_without_vectors(h):
    rng = np.random.default_rng(0)
    table = rng.uniform(-0.05, 0.05, size=(5, 8)).astype(np.float32)
    vectors = rng.normal(size=(5, 8)).astype(np.float32) * np.array([[0], [0], [100], [1], [0.01]], np.float32)
    known = np.array([False, False, True, True, True])
    out = scale_like(vectors, known, table)
    target = np.linalg.norm(table, axis=1).mean()
    np.testing.assert_allclose(np.linalg.norm(out[known], axis=1), target, rtol=1e-5)
    np.testing.assert_array_equal(out[~known], table[~known])
    assert h.cosine(out[2], vectors[2]) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="do not fit"):
        scale_like(vectors[:, :4], known, table)


def test_cnn_word_vectors_option_starts_the_embedding_from_them(h):
    from toolkit_plugins.classification.cnn import CNN_TRAIN_OPTIONS, CnnModel, build_network, pretrain_embedding

    settings = {name: option.default for name, option in CNN_TRAIN_OPTIONS.items()}
    settings.update(dim=2, filters=4, hidden=4)
    texts = h.topic_texts(100)
    tokenizer = WordTokenizer().fit(texts)
    model = CnnModel(tokenizer, 20, build_network(tokenizer.vocab_size, 2, settings, seed=0))
    table = model.network.layers[0].params["table"]
    before = table.copy()
    report = pretrain_embedding(model, texts, seed=0)
    assert report["words"] == 32
    np.testing.assert_array_equal(table[:FIRST_WORD_ID], before[:FIRST_WORD_ID])  # padding and unknown rows
    ids = tokenizer.vocabulary
    assert not np.allclose(table[FIRST_WORD_ID:], before[FIRST_WORD_ID:])
    assert h.cosine(table[ids["cat"]], table[ids["dog"]]) > h.cosine(table[ids["cat"]], table[ids["bus"]]) + 0.5
