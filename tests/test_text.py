"""toolkit.text: tokenization rules, vocabulary, config round trip, padding and batching."""

from __future__ import annotations

import gzip
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.text import OOV_ID, PAD_ID, Batch, WordTokenizer, batch_sequences, pad_sequences, tokenize
from toolkit.text import tokenizer as tokenizer_module

# CI checks the repository out with ../shared beside it.
IMDB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imdb"


# --- tokenization rules ----------------------------------------------------

@pytest.mark.parametrize(
    "text, tokens",
    [
        # HTML line breaks and other tags are whitespace; "<" that opens no tag is punctuation.
        ("Great movie.<br /><br />Loved it", ["great", "movie", "loved", "it"]),
        ("one<br>two<BR/>three", ["one", "two", "three"]),
        ("<p>A <i>fine</i> film</p><!-- note -->", ["a", "fine", "film"]),
        ("3 < 5 and 7 > 2, <3", ["3", "5", "and", "7", "2", "3"]),
        # HTML entities are decoded after tags are removed.
        ("Tom &amp; Jerry, caf&eacute;", ["tom", "jerry", "café"]),
        # Punctuation separates and disappears, hyphens and underscores included.
        ("Wow!!! Best. Film. Ever?!", ["wow", "best", "film", "ever"]),
        ("well-made (sort of)... snake_case", ["well", "made", "sort", "of", "snake", "case"]),
        ("end.The next", ["end", "the", "next"]),
        # Apostrophes stay only between two letters or digits.
        ("Don't, I'm, rock'n'roll", ["don't", "i'm", "rock'n'roll"]),
        ("'quoted' students' o''clock", ["quoted", "students", "o", "clock"]),
        ("Don\u2019t \u2018scare\u2019 me", ["don't", "scare", "me"]),
        # Digits are kept; "." and "," split numbers.
        ("10/10, the 1990s, 2nd place, 7.5 stars", ["10", "10", "the", "1990s", "2nd", "place", "7", "5", "stars"]),
        # Accents and other alphabets are letters; decomposed accents are composed first (NFKC).
        ("Café naïve Übermensch", ["café", "naïve", "übermensch"]),
        ("cafe\u0301", ["café"]),
        ("Привет, мир! Ελληνικά", ["привет", "мир", "ελληνικά"]),
        ("안녕 세상", ["안녕", "세상"]),
        # Combining marks (vowel signs, viramas) belong to the word; Thai is split only at spaces.
        ("हिन्दी भाषा", ["हिन्दी", "भाषा"]),
        ("ภาษาไทย ง่าย", ["ภาษาไทย", "ง่าย"]),
        # A mark with no precomposed form stays, inside the word.
        ("x\u0301's \u0301alone", ["x\u0301's", "alone"]),
        # NFKC folds full-width Latin and half-width katakana.
        ("ＮＬＰ ｶﾀｶﾅ", ["nlp", "カ", "タ", "カ", "ナ"]),
        # Scripts without spaces: one token per character, punctuation dropped.
        ("我爱你", ["我", "爱", "你"]),
        ("東京タワーへ行った。", ["東", "京", "タ", "ワ", "ー", "へ", "行", "っ", "た"]),
        # Mixed scripts: Latin runs are words, CJK runs are characters.
        ("我爱NLP and you", ["我", "爱", "nlp", "and", "you"]),
        ("I watched 千と千尋の神隠し twice", ["i", "watched", *"千と千尋の神隠し", "twice"]),
        # Nothing to keep.
        ("", []),
        ("   \n\t ", []),
        ("!!! ... <br />", []),
    ],
)
def test_tokenize_rules(text, tokens):
    assert tokenize(text) == tokens


def test_tokenize_cjk_bigrams():
    assert tokenize("我爱你", cjk="bigram") == ["我爱", "爱你"]
    # A one-character run is its own token.
    assert tokenize("好 movie", cjk="bigram") == ["好", "movie"]
    # Bigrams never cross a Latin run or punctuation.
    assert tokenize("我爱NLP和你们。再见", cjk="bigram") == ["我爱", "nlp", "和你", "你们", "再见"]


def test_tokenize_lower_false_keeps_case():
    assert tokenize("Don't SHOUT, Café", lower=False) == ["Don't", "SHOUT", "Café"]


def test_tokenize_rejects_bad_arguments():
    with pytest.raises(TypeError, match="str"):
        tokenize(b"bytes")
    with pytest.raises(ValueError, match="cjk"):
        tokenize("x", cjk="trigram")


@settings(max_examples=300)
@given(st.text(alphabet="ab1Z'_.,-!? <>\n", max_size=40))
def test_ascii_fast_path_matches_the_regex(text):
    # ASCII text skips the regex engine; the two must give the same tokens.
    assert tokenizer_module._ascii_tokens(text) == tokenizer_module._word_re().findall(text)


# --- vocabulary and ids -------------------------------------------------------

def test_ids_by_frequency_then_first_occurrence():
    tok = WordTokenizer().fit(["b a b c", "c b", "z y"])
    # b: 3, c: 2, then a, z, y once each in order of first appearance.
    assert tok.vocabulary == {"b": 2, "c": 3, "a": 4, "z": 5, "y": 6}
    assert tok.vocab_size == 7
    assert tok.texts_to_sequences(["c a b", ""]) == [[3, 4, 2], []]


def test_ties_are_broken_by_first_occurrence_not_by_hash():
    words = [f"w{i}" for i in range(50)]
    tok = WordTokenizer().fit([" ".join(words), " ".join(reversed(words))])
    assert list(tok.vocabulary) == words
    assert list(tok.vocabulary.values()) == list(range(2, 52))


def test_top_n_and_oov():
    texts = ["the cat sat on the mat", "the dog sat"]
    tok = WordTokenizer(num_words=2).fit(texts)
    assert tok.vocabulary == {"the": 2, "sat": 3}
    assert tok.vocab_size == 4
    assert tok.texts_to_sequences(["The cat sat, unseen!"]) == [[2, OOV_ID, 3, OOV_ID]]
    dropping = WordTokenizer(num_words=2, oov=False).fit(texts)
    assert dropping.texts_to_sequences(["The cat sat, unseen!"]) == [[2, 3]]
    # No word gets the padding or the OOV id.
    assert PAD_ID == 0 and OOV_ID == 1 and min(tok.vocabulary.values()) == 2
    assert tok.tokens_to_ids(tok.tokenize("The cat sat, unseen!")) == [2, OOV_ID, 3, OOV_ID]
    assert dropping.tokens_to_ids(["the", "cat", "sat"]) == [2, 3]
    with pytest.raises(RuntimeError, match="fit"):
        WordTokenizer().tokens_to_ids(["the"])


def test_num_words_larger_than_vocabulary_keeps_all():
    tok = WordTokenizer(num_words=100).fit(["a b"])
    assert tok.vocabulary == {"a": 2, "b": 3}


def test_fit_accepts_a_generator_and_refit_replaces():
    tok = WordTokenizer().fit(t for t in ["x y", "y"])
    assert tok.vocabulary == {"y": 2, "x": 3}
    tok.fit(["q"])
    assert tok.vocabulary == {"q": 2}


def test_cjk_vocabulary():
    tok = WordTokenizer(cjk="bigram").fit(["我爱你", "我爱NLP"])
    assert tok.vocabulary == {"我爱": 2, "爱你": 3, "nlp": 4}
    assert tok.texts_to_sequences(["我爱猫"]) == [[2, OOV_ID]]


def test_sequences_to_texts():
    tok = WordTokenizer().fit(["good film", "good"])
    assert tok.sequences_to_texts([[0, 0, 2, 1, 3]]) == ["good <oov> film"]
    with pytest.raises(ValueError, match="id 9"):
        tok.sequences_to_texts([[9]])


def test_tokenizer_bad_use():
    with pytest.raises(RuntimeError, match="not fitted"):
        WordTokenizer().texts_to_sequences(["x"])
    with pytest.raises(RuntimeError, match="not fitted"):
        WordTokenizer().to_config()
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(ValueError, match="num_words"):
            WordTokenizer(num_words=bad)
    with pytest.raises(ValueError, match="cjk"):
        WordTokenizer(cjk="word")
    with pytest.raises(TypeError, match="lower"):
        WordTokenizer(lower="yes")
    tok = WordTokenizer().fit(["x"])
    # A lone str would otherwise be read as one text per character.
    with pytest.raises(TypeError, match="single str"):
        tok.texts_to_sequences("x y")
    with pytest.raises(TypeError, match="single str"):
        WordTokenizer().fit("x y")


# --- config round trip --------------------------------------------------------

def test_config_round_trip_through_json():
    texts = ["Café crème, don't <br /> stop", "我爱NLP", "stop stop crème"]
    tok = WordTokenizer(num_words=5, oov=False, lower=False, cjk="bigram").fit(texts)
    config = tok.to_config()
    restored = WordTokenizer.from_config(json.loads(json.dumps(config)))
    assert restored.to_config() == config
    assert restored.vocabulary == tok.vocabulary
    assert (restored.num_words, restored.oov, restored.lower, restored.cjk) == (5, False, False, "bigram")
    assert restored.texts_to_sequences(texts) == tok.texts_to_sequences(texts)


def test_config_round_trip_of_an_empty_vocabulary():
    tok = WordTokenizer().fit([""])
    restored = WordTokenizer.from_config(json.loads(json.dumps(tok.to_config())))
    assert restored.vocabulary == {} and restored.texts_to_sequences(["new"]) == [[OOV_ID]]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(type="Tokenizer"), "not a WordTokenizer config"),
        (lambda c: c.update(version=99), "version 99"),
        (lambda c: c.pop("words"), "missing \\['words'\\]"),
        (lambda c: c.update(extra=1), "unexpected \\['extra'\\]"),
        (lambda c: c.update(words=["a", "a"]), "duplicates"),
        (lambda c: c.update(words="a b"), "list of non-empty str"),
        (lambda c: c.update(words=["a", 3]), "list of non-empty str"),
        (lambda c: c.update(words=["a", "b", "c"], num_words=2), "3 words but num_words is 2"),
        (lambda c: c.update(num_words=-1), "num_words"),
        (lambda c: c.update(oov="yes"), "oov"),
        (lambda c: c.update(cjk="x"), "cjk"),
    ],
)
def test_damaged_config_is_refused(change, message):
    config = WordTokenizer(num_words=3).fit(["a b"]).to_config()
    change(config)
    with pytest.raises(ValueError, match=message):
        WordTokenizer.from_config(config)


def test_non_dict_config_is_refused():
    with pytest.raises(ValueError, match="dict"):
        WordTokenizer.from_config(["words"])


# --- pad_sequences ------------------------------------------------------------

SEQS = [[1, 2, 3, 4], [5, 6], [], [7]]


@pytest.mark.parametrize(
    "padding, truncating, expected",
    [
        ("pre", "pre", [[2, 3, 4], [0, 5, 6], [0, 0, 0], [0, 0, 7]]),
        ("post", "pre", [[2, 3, 4], [5, 6, 0], [0, 0, 0], [7, 0, 0]]),
        ("pre", "post", [[1, 2, 3], [0, 5, 6], [0, 0, 0], [0, 0, 7]]),
        ("post", "post", [[1, 2, 3], [5, 6, 0], [0, 0, 0], [7, 0, 0]]),
    ],
)
def test_pad_and_truncate(padding, truncating, expected):
    out = pad_sequences(SEQS, maxlen=3, padding=padding, truncating=truncating)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, np.array(expected))


def test_pad_defaults_are_keras_pre_and_longest():
    out = pad_sequences(SEQS)
    np.testing.assert_array_equal(out, [[1, 2, 3, 4], [0, 0, 5, 6], [0, 0, 0, 0], [0, 0, 0, 7]])
    assert pad_sequences([]).shape == (0, 0)
    assert pad_sequences([[], []]).shape == (2, 0)


def test_pad_value_dtype_and_array_rows():
    rows = [np.array([1, 2], dtype=np.int64), np.array([3], dtype=np.uint8)]
    out = pad_sequences(rows, maxlen=3, value=-1, dtype=np.int64)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[-1, 1, 2], [-1, -1, 3]])
    floats = pad_sequences([[0.5, 1.5]], maxlen=3, padding="post", value=-0.25, dtype=np.float32)
    np.testing.assert_array_equal(floats, np.array([[0.5, 1.5, -0.25]], dtype=np.float32))
    # Rows of a 2-D array are sequences too.
    np.testing.assert_array_equal(pad_sequences(np.array([[1, 2], [3, 4]]), maxlen=1), [[2], [4]])


@given(
    st.lists(st.lists(st.integers(1, 9), max_size=6), max_size=5),
    st.integers(1, 7),
    st.sampled_from(["pre", "post"]),
    st.sampled_from(["pre", "post"]),
)
def test_pad_matches_a_plain_python_reference(seqs, maxlen, padding, truncating):
    want = []
    for seq in seqs:
        kept = seq[-maxlen:] if truncating == "pre" else seq[:maxlen]
        fill = [0] * (maxlen - len(kept))
        want.append(fill + kept if padding == "pre" else kept + fill)
    out = pad_sequences(seqs, maxlen, padding=padding, truncating=truncating)
    assert out.shape == (len(seqs), maxlen)
    assert out.tolist() == want


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(padding="middle"), ValueError, "padding must be 'pre' or 'post'"),
        (dict(truncating="both"), ValueError, "truncating must be 'pre' or 'post'"),
        (dict(maxlen=0), ValueError, "maxlen must be a positive int"),
        (dict(maxlen=-2), ValueError, "maxlen must be a positive int"),
        (dict(maxlen=2.5), ValueError, "maxlen must be a positive int"),
        (dict(maxlen=True), ValueError, "maxlen must be a positive int"),
        (dict(dtype=object), TypeError, "dtype must be an integer or float"),
        (dict(dtype=np.bool_), TypeError, "dtype must be an integer or float"),
        (dict(value=1.5), ValueError, "value 1.5 cannot be stored exactly as int32"),
        (dict(value=2**40), ValueError, "cannot be stored exactly as int32"),
        (dict(value="0"), TypeError, "value must be a number"),
        (dict(value=-1, dtype=np.uint8), ValueError, "cannot be stored exactly as uint8"),
    ],
)
def test_pad_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        pad_sequences([[1, 2]], **kwargs)


@pytest.mark.parametrize(
    "seqs, error, message",
    [
        ([[1, 2], [0.5]], TypeError, "sequence 1 holds float64"),
        ([[1], [[1, 2], [3, 4]]], ValueError, "sequence 1 must be 1-D"),
        ([[1], 5], ValueError, "sequence 1 must be 1-D"),
        ([[2**40]], ValueError, "sequence 0 has values in .* outside the range of int32"),
        ([["a", "b"]], TypeError, "sequence 0 holds <U1"),
        ([[True, False]], TypeError, "sequence 0 holds bool"),
        ("abc", TypeError, "not a str"),
    ],
)
def test_pad_bad_sequences(seqs, error, message):
    with pytest.raises(error, match=message):
        pad_sequences(seqs, maxlen=3)


# --- batch_sequences ----------------------------------------------------------

def test_batches_in_order_with_masks():
    seqs = [[1, 2, 3], [4], [], [5, 6], [7]]
    batches = list(batch_sequences(seqs, batch_size=2))
    assert all(isinstance(b, Batch) for b in batches)
    assert [b.index.tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    first, second, last = batches
    np.testing.assert_array_equal(first.ids, [[1, 2, 3], [4, 0, 0]])
    np.testing.assert_array_equal(first.mask, [[True, True, True], [True, False, False]])
    np.testing.assert_array_equal(second.ids, [[0, 0], [5, 6]])
    np.testing.assert_array_equal(second.mask, [[False, False], [True, True]])
    np.testing.assert_array_equal(last.ids, [[7]])
    assert first.ids.dtype == np.int32 and first.mask.dtype == np.bool_ and first.index.dtype == np.int64


def test_batches_cap_at_maxlen_with_pre_padding_and_truncation():
    seqs = [[1, 2, 3, 4], [5], [6, 7]]
    (batch,) = batch_sequences(seqs, batch_size=3, maxlen=3, padding="pre", truncating="pre")
    np.testing.assert_array_equal(batch.ids, [[2, 3, 4], [0, 0, 5], [0, 6, 7]])
    np.testing.assert_array_equal(batch.mask, [[True, True, True], [False, False, True], [False, True, True]])
    (post,) = batch_sequences(seqs, batch_size=3, maxlen=3, truncating="post")
    np.testing.assert_array_equal(post.ids, [[1, 2, 3], [5, 0, 0], [6, 7, 0]])


def test_batch_of_empty_sequences_has_one_masked_column():
    (batch,) = batch_sequences([[], []], batch_size=4)
    np.testing.assert_array_equal(batch.ids, [[0], [0]])
    assert not batch.mask.any()
    assert list(batch_sequences([], batch_size=4)) == []


def random_sequences(n: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(2, 100, size=int(rng.integers(0, 40))).tolist() for _ in range(n)]


def check_batches_match(seqs, batches, maxlen=None):
    """Every sequence appears exactly once, its ids and mask exactly as padded alone."""
    seen = np.concatenate([b.index for b in batches])
    assert sorted(seen.tolist()) == list(range(len(seqs)))
    for b in batches:
        for row, i in enumerate(b.index):
            want = seqs[i][-maxlen:] if maxlen and len(seqs[i]) > maxlen else seqs[i]
            n = len(want)
            assert b.ids[row, :n].tolist() == want
            assert not b.ids[row, n:].any()
            assert b.mask[row].tolist() == [True] * n + [False] * (b.ids.shape[1] - n)


def test_shuffle_is_seeded_and_complete():
    seqs = random_sequences(103)
    labels = np.arange(103) * 10
    one = list(batch_sequences(seqs, 16, shuffle=True, seed=7))
    two = list(batch_sequences(seqs, 16, shuffle=True, seed=7))
    other = list(batch_sequences(seqs, 16, shuffle=True, seed=8))
    order = np.concatenate([b.index for b in one])
    assert order.tolist() == np.concatenate([b.index for b in two]).tolist()
    assert order.tolist() != np.concatenate([b.index for b in other]).tolist()
    assert order.tolist() != list(range(103))
    check_batches_match(seqs, one)
    # index is what keeps labels aligned with shuffled rows.
    assert labels[one[0].index].tolist() == (one[0].index * 10).tolist()


def test_generator_seed_gives_new_order_each_epoch():
    seqs = random_sequences(50)
    rng = np.random.default_rng(0)
    first = np.concatenate([b.index for b in batch_sequences(seqs, 8, shuffle=True, seed=rng)])
    second = np.concatenate([b.index for b in batch_sequences(seqs, 8, shuffle=True, seed=rng)])
    assert first.tolist() != second.tolist()


def test_bucketing_groups_similar_lengths():
    seqs = random_sequences(400, seed=1)
    plain = list(batch_sequences(seqs, 16, maxlen=30, shuffle=True, seed=3))
    bucketed = list(batch_sequences(seqs, 16, maxlen=30, shuffle=True, seed=3, bucket=5))
    check_batches_match(seqs, bucketed, maxlen=30)
    lengths = np.minimum([len(s) for s in seqs], 30)
    # Lengths were sorted within each pool of 5 batches; only the batch order was shuffled after.
    assert all(np.all(np.diff(lengths[b.index]) >= 0) for b in bucketed)
    # Without shuffling the order is exactly a stable sort of each pool of 80.
    unshuffled = np.concatenate([b.index for b in batch_sequences(seqs, 16, maxlen=30, bucket=5)])
    want = np.concatenate([p + np.argsort(lengths[p : p + 80], kind="stable") for p in range(0, 400, 80)])
    assert unshuffled.tolist() == want.tolist()
    cells = lambda batches: sum(b.ids.size for b in batches)  # noqa: E731
    assert cells(bucketed) < 0.8 * cells(plain)


def test_drop_last():
    seqs = random_sequences(10)
    assert [len(b.index) for b in batch_sequences(seqs, 4, drop_last=True)] == [4, 4]
    assert [len(b.index) for b in batch_sequences(seqs, 4)] == [4, 4, 2]
    assert [len(b.index) for b in batch_sequences(seqs, 5, drop_last=True)] == [5, 5]
    with_bucket = list(batch_sequences(seqs, 4, drop_last=True, bucket=2, shuffle=True, seed=0))
    assert [len(b.index) for b in with_bucket] == [4, 4]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(batch_size=0), ValueError, "batch_size must be a positive int"),
        (dict(batch_size=None), ValueError, "batch_size must be a positive int"),
        (dict(batch_size=4, maxlen=0), ValueError, "maxlen"),
        (dict(batch_size=4, bucket=0), ValueError, "bucket"),
        (dict(batch_size=4, padding="left"), ValueError, "padding"),
        (dict(batch_size=4, truncating="x"), ValueError, "truncating"),
    ],
)
def test_batch_bad_arguments_raise_at_call(kwargs, error, message):
    # Raised by the call itself, not later at the first next().
    with pytest.raises(error, match=message):
        batch_sequences([[1, 2]], **kwargs)


def test_batch_bad_sequences_raise_at_call():
    with pytest.raises(ValueError, match="sequence 1 has values"):
        batch_sequences([[1], [2**33]], 2)
    with pytest.raises(TypeError, match="sequence 0 holds float64"):
        batch_sequences([[1.5]], 2)


# --- real data ------------------------------------------------------------------

@pytest.mark.skipif(not (IMDB / "train.jsonl.gz").exists(), reason="IMDb data not found beside the repository")
def test_imdb_sample():
    with gzip.open(IMDB / "train.jsonl.gz", "rt", encoding="utf-8") as f:
        # The file is sorted by label: take both ends.
        lines = f.readlines()
    texts = [json.loads(line)["text"] for line in itertools.chain(lines[:1500], lines[-1500:])]
    tok = WordTokenizer(num_words=2000).fit(texts)
    assert tok.vocab_size == 2002
    assert list(tok.vocabulary)[:3] == ["the", "and", "a"]
    # The reviews are full of <br />: no "br" token may survive.
    assert "br" not in tok.vocabulary
    word = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
    for text in texts[:300]:
        tokens = tok.tokenize(text)
        assert tokens and all(word.fullmatch(t) for t in tokens)
        # The ASCII fast path and the regex agree on real reviews too.
        normalized = tokenizer_module._normalize(text, lower=True)
        if normalized.isascii():
            assert tokens == tokenizer_module._word_re().findall(normalized)
    seqs = tok.texts_to_sequences(texts)
    flat = np.concatenate([np.asarray(s) for s in seqs])
    assert flat.min() >= OOV_ID and flat.max() < tok.vocab_size
    assert 0.02 < np.mean(flat == OOV_ID) < 0.2
    x = pad_sequences(seqs, maxlen=500)
    assert x.shape == (3000, 500) and x.dtype == np.int32
    assert WordTokenizer.from_config(json.loads(json.dumps(tok.to_config()))).texts_to_sequences(texts) == seqs


def test_package_names_load_on_first_use_and_unknown_names_raise():
    import toolkit.text
    from toolkit.text import sentences

    assert toolkit.text.split_sentences is sentences.split_sentences
    assert {"split_sentences", "Sentence", "WordTokenizer", "pad_sequences"} <= set(dir(toolkit.text))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        toolkit.text.nope  # noqa: B018
