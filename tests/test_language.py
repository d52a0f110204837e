"""toolkit.text.language: detect(), detect_many(), ranked(); "und", mixed scripts, agreement with py3langid."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("py3langid")

from toolkit.text.language import PREFIX_CHARS, detect, detect_many, iso_code, ranked, ranked_many  # noqa: E402

SENTENCES = {
    "en": ["The weather was cold, so we stayed inside and read all afternoon.",
           "My neighbour repairs old bicycles in his garage.",
           "Could you tell me where the nearest post office is?",
           "I have never seen such a beautiful sunset over the harbour."],
    "de": ["Meine Großmutter backt jeden Sonntag einen Apfelkuchen.",
           "Der Zug nach München hat heute leider zwanzig Minuten Verspätung.",
           "Wir haben im Urlaub viele kleine Dörfer in den Bergen besucht.",
           "Kannst du mir bitte sagen, wie spät es ist?"],
    "fr": ["Nous avons passé la soirée à discuter de nos projets de vacances.",
           "La boulangerie au coin de la rue ouvre à sept heures.",
           "Je ne comprends pas pourquoi il est parti sans rien dire.",
           "Les enfants jouent dans le jardin depuis ce matin."],
    "es": ["Mañana vamos a visitar a mis abuelos en el pueblo.",
           "El restaurante estaba lleno, así que cenamos en casa.",
           "¿Sabes a qué hora cierra la biblioteca los sábados?",
           "Me gustaría aprender a tocar la guitarra este verano."],
    "zh": ["我们明天早上八点在火车站见面。",
           "这家饭馆的菜又便宜又好吃。",
           "他每天晚上都在图书馆学习到很晚。",
           "請問這附近有沒有便利商店？"],
}


@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_sentences_of_each_language(language):
    assert [detect(s) for s in SENTENCES[language]] == [language] * len(SENTENCES[language])


@pytest.mark.parametrize("text", ["", "   \n\t ", "12345", "3.14 + 2,718 = 5.858", "!!! ??? ...", "-- // ** ##",
                                  "😀😂👍", "🎉 🎉 2024 🎉", "½ ² ³", "\u200b\u200b", "<br />"])
def test_no_letters_is_und(text):
    assert detect(text) == "und"
    assert ranked(text) == [("und", 1.0)]


def test_a_language_beside_digits_and_emoji_is_still_found():
    assert detect("2024 😀 Wir fahren morgen mit dem Fahrrad an den See. 😀") == "de"


def test_mixed_script_majority_of_letters():
    # Han letters outnumber the Latin ones: Chinese.
    assert detect("我今天在 Python 课上学到了很多新的东西，老师讲得非常清楚") == "zh"
    # Latin letters outnumber the Han ones: the model reads the Latin text alone.
    assert detect("I visited the old temple in Beijing (北京) and the food was wonderful.") == "en"
    assert detect("Wir waren in Shanghai (上海) und das Essen war wunderbar lecker.") == "de"
    # Kana among the Han letters: Japanese; Hangul: Korean.
    assert detect("私は毎朝コーヒーを飲みます。") == "ja"
    assert detect("오늘은 날씨가 정말 좋네요 Seoul") == "ko"


@pytest.mark.parametrize("text", ["中文 English русский ελληνικά עברית عربى हिन्दी 日本語 한국어 😀 123", "a中b文c",
                                  "ᄀ" * 500, "\ud800 lone surrogate", "e\u0301" * 300, "ÀÉÎ" * 1000])
def test_strange_text_does_not_crash(text):
    code = detect(text)
    assert isinstance(code, str) and 2 <= len(code) <= 3
    assert detect_many([text]) == [code]


@pytest.mark.parametrize("value", [None, 42, 3.5, b"bytes", ["a list"], {"text": "x"}])
def test_non_str_is_a_type_error(value):
    with pytest.raises(TypeError, match="takes a str"):
        detect(value)
    with pytest.raises(TypeError, match=r"input 1"):
        detect_many(["fine", value])


def test_batch_functions_refuse_a_single_string():
    with pytest.raises(TypeError, match="list of str"):
        detect_many("one text")
    with pytest.raises(TypeError, match="list of str"):
        ranked_many("one text")
    with pytest.raises(ValueError, match="k must be"):
        ranked("text", k=0)


def test_batch_equals_one_by_one():
    texts = [s for group in SENTENCES.values() for s in group] + ["", "123", "😀", "Hi", "ok ok ok"]
    texts += [texts[0] * 20]  # longer than the prefix
    assert detect_many(texts) == [detect(t) for t in texts]
    assert detect_many(iter(texts)) == detect_many(texts)
    assert detect_many([]) == []
    for many, one in zip(ranked_many(texts, k=2), [ranked(t, k=2) for t in texts]):
        assert [c for c, _ in many] == [c for c, _ in one]
        assert [p for _, p in many] == pytest.approx([p for _, p in one], abs=1e-5)


def test_ranked_gives_probabilities_best_first():
    best = ranked("Les enfants jouent dans le jardin depuis ce matin.", k=5)
    assert len(best) == 5 and best[0][0] == "fr"
    probabilities = [p for _, p in best]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0.5 < probabilities[0] <= 1.0 and sum(probabilities) <= 1.0 + 1e-5


def test_only_the_prefix_is_read():
    english = "This sentence is written in plain English for the test. " * 3
    assert len(english) > PREFIX_CHARS
    assert detect(english + "Dieser Teil ist auf Deutsch und kommt erst danach. " * 50) == "en"


def test_codes_are_iso_639_1_where_one_exists():
    assert iso_code("yue") == "zh" and iso_code("wuu") == "zh" and iso_code("zh") == "zh"
    assert iso_code("arz") == "ar" and iso_code("kik") == "ki" and iso_code("zxx") == "und"
    assert iso_code("ext") == "ext"  # Extremaduran has no two-letter code


def test_same_answers_as_py3langid_itself():
    # The module re-implements py3langid's scoring for speed: on text that
    # none of its own rules touch, the answer must be the library's.
    import py3langid

    texts = [s for code in ("en", "de", "fr", "es") for s in SENTENCES[code]]
    texts += ["Questo è un libro molto interessante.", "Dit is een mooi huis met een grote tuin.",
              "Это очень интересная книга.", "Η θάλασσα είναι ήσυχη σήμερα.", "Bu kitap çok ilginç."]
    assert detect_many(texts) == [iso_code(py3langid.classify(t)[0]) for t in texts]


def test_importing_the_module_loads_neither_numpy_nor_the_model():
    code = ("import sys, toolkit.text.language; "
            "print(sorted(m for m in ('numpy', 'scipy', 'py3langid') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_rearranged_model_is_cached_and_mapped_from_the_cache(tmp_path, monkeypatch):
    import numpy as np

    import toolkit.text.language as language

    texts = ["Der Hund schläft im Garten.", "Where is the station?", "这部电影太好看了"]
    expected = language.detect_many(texts)
    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path))
    monkeypatch.setattr(language, "_model", None)
    assert language.detect_many(texts) == expected  # built from py3langid's file, and written to the cache
    [folder] = (tmp_path / "cache").iterdir()
    assert sorted(p.stem for p in folder.iterdir()) == sorted(language.ARRAYS)
    monkeypatch.setattr(language, "_model", None)
    assert language.detect_many(texts) == expected
    assert isinstance(language._get_model().ptc, np.memmap)  # mapped, not read whole
    # A cache that cannot be written (its place is a file's) costs time, not results.
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path / "a-file"))
    monkeypatch.setattr(language, "_model", None)
    assert language.detect_many(texts) == expected
