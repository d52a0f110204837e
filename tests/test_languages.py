"""Languages a model reads, each result's detected input language, and the warning when the model does not read
it (toolkit.languages, issue 24)."""

from __future__ import annotations

from collections import Counter

import pytest

import toolkit
from toolkit.errors import OptionError
from toolkit.languages import ANY, annotate, detected, input_text, model_languages, summary, unread, warning


class Engine:
    languages = None

    def __init__(self, meta: dict | None) -> None:
        self.meta = meta

    def loaded_metadata(self) -> dict | None:
        return self.meta


class AnyText(Engine):
    languages = (ANY,)


def test_a_model_says_its_languages_and_an_engine_without_one_its_own():
    assert model_languages(Engine({"languages": ["en"]})) == ("en",)
    assert model_languages(Engine({"languages": "zh"})) == ("zh",)
    assert model_languages(Engine({"source": "en", "target": "de"})) == ("en",)  # a translation model
    assert model_languages(AnyText(None)) == (ANY,)
    assert model_languages(Engine({})) is None and model_languages(Engine(None)) is None


def test_the_text_that_tells_an_inputs_language():
    assert input_text("Bonjour") == "Bonjour"
    assert input_text({"question": "Who?", "context": "Der Hund."}) == "Der Hund."
    assert input_text({"turns": ["Hello", {"text": "你好"}]}) == "你好"
    assert input_text({"turns": []}) == "" and input_text(42) == ""


def test_a_language_is_said_only_where_the_identifier_is_confident():
    assert detected(["A dull film.", "Not bad at all.", "Ce film était vraiment nul.", "这部电影太好看了", ""]) == [
        "und", "und", "fr", "zh", "und"]


def test_a_warning_only_where_the_model_does_not_read_the_language():
    assert warning(("en",), "en") is None
    assert warning(("en",), "und") is None  # cannot tell: no warning
    assert warning((ANY,), "fr") is None and warning(None, "fr") is None
    assert "looks like fr" in warning(("en", "zh"), "fr") and "reads en, zh" in warning(("en", "zh"), "fr")


def test_results_carry_their_language_and_a_run_says_it_once():
    items = ["This film was great fun from start to finish.", "这部电影太好看了，演员也很好", "Le film était vraiment"
             " très ennuyeux et beaucoup trop long.", "12:30 !!"]
    results = [{"label": "pos"} for _ in items]
    annotate(Engine({"languages": ["en", "zh"]}), items, results)
    assert [r["language"] for r in results] == ["en", "zh", "fr", "und"]
    assert ["warning" in r for r in results] == [False, False, True, False]
    counts = unread(results) + unread([{"language": "fr", "warning": "..."}])
    assert counts == Counter({"fr": 2})
    line = summary(counts, 5, "classify")
    assert line.startswith("2 of 5 inputs") and "2 in fr" in line and "--model" in line
    assert summary(Counter(), 5, "classify") is None
    # Nothing to say, nothing added: a model of any language, or one that does not say.
    for engine in (AnyText(None), Engine({})):
        untouched = [{"label": "pos"} for _ in items]
        annotate(engine, items, untouched)
        assert untouched == [{"label": "pos"} for _ in items]


def test_a_run_says_once_on_stderr_which_inputs_the_model_does_not_read():
    import json
    import subprocess
    import sys

    lines = "This film was great fun.\nCe film était nul et beaucoup trop long.\n这部电影太好看了\nA dull film.\n"
    from toolkit_plugins.classification.common import DEFAULT_MODEL_FILE

    # The English model named: no other installed model takes the Chinese input.
    done = subprocess.run([sys.executable, "-c", "from toolkit.cli import cli; cli()", "classify", "-i", "lines",
                           "-f", "jsonl", "-m", str(DEFAULT_MODEL_FILE)], input=lines, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    results = [json.loads(line)["result"] for line in done.stdout.splitlines()]
    # "A dull film." is many languages' three words: undetermined, and no warning.
    assert [r["language"] for r in results] == ["en", "fr", "zh", "und"]
    assert ["warning" in r for r in results] == [False, True, True, False]
    said = [line for line in done.stderr.splitlines() if line.startswith("nlp-tool: warning:")]
    assert said == ["nlp-tool: warning: 2 of 4 inputs are in a language the model does not read (1 in fr, 1 in zh):"
                    " their results are unreliable; pass --model with a classify model for that language"]


def test_a_model_lists_the_languages_of_its_training_texts():
    from toolkit.languages import training_languages

    english = ["This film was great fun from start to finish.", "The acting was dull and the plot made no sense."]
    chinese = ["这部电影太好看了，演员也很好", "剧情很无聊，浪费时间"]
    french = ["Ce film était vraiment très ennuyeux et beaucoup trop long."]
    assert training_languages(english * 50) == ["en"]
    assert training_languages(english * 30 + chinese * 20) == ["en", "zh"]
    assert training_languages(english * 60 + french * 3) == ["en"]  # under a tenth: not a language of the model
    assert training_languages(["12:30", "!!"]) == [] and training_languages([]) == []


ENGLISH = [("This film was great fun from start to finish.", "pos"), ("A wonderful story, beautifully acted.", "pos"),
           ("The acting was dull and the plot made no sense.", "neg"), ("A boring waste of two hours.", "neg")]
CHINESE = [("这部电影太好看了，演员也很好", "pos"), ("故事很感人，非常精彩", "pos"), ("剧情很无聊，浪费时间", "neg"),
           ("演技太差了，非常失望", "neg")]


@pytest.fixture
def two_languages(tmp_path, monkeypatch):
    """An English and a Chinese ngram model installed side by side, the English one the engine's default."""
    from toolkit_plugins.classification.ngram import NgramClassifier

    for name, rows in (("en", ENGLISH), ("zh", CHINESE)):
        records = [{"text": text, "label": label} for text, label in rows * 10]
        toolkit.train("classify", records, engine="ngram", output=tmp_path / f"{name}.nlpt", valid_split=0.0)
    monkeypatch.setattr(NgramClassifier, "default_model", str(tmp_path / "en.nlpt"))
    return tmp_path


def test_each_input_goes_to_the_installed_model_of_its_language(two_languages):
    from toolkit.nn import read_metadata

    assert read_metadata(two_languages / "zh.nlpt")["languages"] == ["zh"]  # from its training texts
    classify = toolkit.pipeline("classify", engine="ngram")
    assert classify.routes == {"zh": str(two_languages / "zh.nlpt")}
    texts = ["A wonderful story, great fun.", "故事很感人，非常精彩", "Ce film était vraiment nul et beaucoup trop long."]
    english, chinese, french = classify(texts)
    assert (english["language"], english.get("model")) == ("en", None)  # the default: the stamp's model
    assert (chinese["language"], chinese["model"], chinese["label"]) == ("zh", "zh", "pos")
    assert "warning" not in chinese and "warning" not in english
    # No installed model reads French: the default answers, and says so.
    assert french["language"] == "fr" and "reads en" in french["warning"] and french["label"] in ("pos", "neg")
    # --language picks one model for every input; one not installed is refused, naming those that are.
    forced = toolkit.pipeline("classify", engine="ngram", language="zh")
    assert forced.routes == {} and forced.engine.model == str(two_languages / "zh.nlpt")
    assert "warning" in forced(texts[0])
    with pytest.raises(OptionError, match="no installed classify:ngram model for language 'fr' .installed: en, zh."):
        toolkit.pipeline("classify", engine="ngram", language="fr")
    with pytest.raises(OptionError, match="not both"):
        toolkit.pipeline("classify", engine="ngram", language="zh", model=str(two_languages / "en.nlpt"))
    # A model named by the user is the one that runs, whatever the language.
    named = toolkit.pipeline("classify", engine="ngram", model=str(two_languages / "en.nlpt"))
    assert named.routes == {} and "model" not in named(texts[1])


def test_tasks_and_explain_list_the_languages_the_engine_reads(two_languages):
    import json

    from click.testing import CliRunner

    from toolkit.cli import cli
    from toolkit.languages import covered
    from toolkit_plugins.classification.ngram import NgramClassifier
    from toolkit_plugins.summarization.lead import LeadSummarizer

    assert covered(NgramClassifier) == ["en", "zh"] and covered(NgramClassifier, str(two_languages / "zh.nlpt")) == ["zh"]
    assert covered(LeadSummarizer) == ["any"]
    explained = CliRunner().invoke(cli, ["classify", "--engine", "ngram", "--explain"])
    assert explained.exit_code == 0 and "languages: en, zh (each input goes to the installed model of its language)" \
        in explained.output
    rows = json.loads(CliRunner().invoke(cli, ["tasks", "--json"]).output)
    assert next(r for r in rows if (r["task"], r["engine"]) == ("classify", "ngram"))["languages"] == ["en", "zh"]
    assert next(r for r in rows if (r["task"], r["engine"]) == ("summarize", "lead"))["languages"] == ["any"]
