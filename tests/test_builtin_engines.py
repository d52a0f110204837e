"""Built-in engines pass the conformance kit, and the lead summarizer and its sentence splitter do real work."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolkit_plugins.summarization.lead import LeadSummarizer
from toolkit.text.sentences import split_sentences
from toolkit.testing import check_empty_input, check_engine, check_picklable, check_unicode, engine_checks
from toolkit.engine import Engine


@pytest.mark.parametrize("check", engine_checks(LeadSummarizer), ids=lambda c: c.__name__)
def test_lead_passes_conformance_check(check):
    check()


def test_check_engine_catches_a_batch_dependent_engine():
    class Leaky(Engine):
        task, name, description, version = "leaky", "x", "Result depends on batch size.", "1"

        def run(self, inputs):
            return [{"n": len(inputs)} for _ in inputs]

    with pytest.raises(AssertionError, match="run\\(batch\\) differs"):
        check_engine(Leaky)


def test_check_engine_catches_a_wrong_result_count():
    class Lossy(Engine):
        task, name, description, version = "lossy", "x", "Drops inputs.", "1"

        def run(self, inputs):
            return [{"ok": True}][: len(inputs)]

    with pytest.raises(AssertionError, match="inputs gave 1 results"):
        check_engine(Lossy)


def test_check_engine_catches_an_unpicklable_engine():
    class Closure(Engine):
        task, name, description, version = "closure", "x", "Holds a lambda.", "1"

        def __init__(self, model=None, **options):
            super().__init__(model, **options)
            self.fn = lambda x: {"len": len(x)}

        def run(self, inputs):
            return [self.fn(x) for x in inputs]

    with pytest.raises(AssertionError, match="not picklable"):
        check_picklable(Closure)


def test_checks_turn_an_engine_exception_into_an_assertion_naming_the_check():
    class AsciiOnly(Engine):
        task, name, description, version = "ascii", "x", "Refuses other scripts.", "1"

        def run(self, inputs):
            if not all(x.isascii() for x in inputs):
                raise ValueError("only ASCII, please")
            return [{"n": len(x)} for x in inputs]

    with pytest.raises(AssertionError, match="^check_unicode: unexpected ValueError: only ASCII, please$") as caught:
        check_unicode(AsciiOnly)
    assert isinstance(caught.value.__cause__, ValueError)
    with pytest.raises(AssertionError, match="^check_batch_equals_one_by_one: unexpected ValueError"):
        next(c for c in engine_checks(AsciiOnly) if c.__name__ == "check_batch_equals_one_by_one")()


def _refusing_engine(inputs_kind: str, message: str) -> type[Engine]:
    """An engine that raises ValueError(message) for a blank text or context, and answers anything else."""

    class Refusing(Engine):
        task, name, description, version, inputs = "refusing", "x", "Refuses blank input.", "1", inputs_kind

        def run(self, inputs):
            texts = [x["context"] if isinstance(x, dict) else x for x in inputs]
            if any(not text.strip() for text in texts):
                raise ValueError(message)
            return [{"n": len(text)} for text in texts]

    return Refusing


def test_check_empty_input_accepts_a_clear_one_line_empty_input_error():
    check_empty_input(_refusing_engine("question+context", "the context is empty (nothing to answer from)"))
    with pytest.raises(AssertionError, match="must say in one line that the context is empty"):
        check_empty_input(_refusing_engine("question+context", "bad input\nsee the log"))
    with pytest.raises(AssertionError, match="must say in one line that the context is empty"):
        check_empty_input(_refusing_engine("question+context", "nope"))
    # A text engine may refuse an empty text too (a classifier would guess about nothing), saying so.
    check_empty_input(_refusing_engine("text", "the text is empty"))
    with pytest.raises(AssertionError, match="must say in one line that the text is empty"):
        check_empty_input(_refusing_engine("text", "no words"))


def test_classify_says_an_input_is_empty_instead_of_guessing():
    # Issue 18: `classify` of an empty text answered `pos 0.54`.
    import toolkit

    classify = toolkit.pipeline("classify", on_error="skip")
    results = classify(["Great film.", "", "  \n"])
    assert results[0]["label"] == "pos"
    assert [r.error for r in results[1:]] == ["ValueError: an empty text: there is nothing to classify"] * 2
    with pytest.raises(ValueError, match="an empty text"):
        toolkit.pipeline("classify")("")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Mr. Smith went to Washington. He paid $3.50 for coffee! Was it good? Yes.",
         ["Mr. Smith went to Washington.", "He paid $3.50 for coffee!", "Was it good?", "Yes."]),
        ("The U.S. economy grew 2.5% in Jan. this year, e.g. in tech. J. R. Tolkien wrote. It sold.",
         ["The U.S. economy grew 2.5% in Jan. this year, e.g. in tech.", "J. R. Tolkien wrote.", "It sold."]),
        ("今天天气很好。我们去公园吧！你来吗？", ["今天天气很好。", "我们去公园吧！", "你来吗？"]),
        ("“Stop!” he said. “Why?” She left… Later, at 3 p.m. today, rain.",
         ["“Stop!” he said.", "“Why?”", "She left…", "Later, at 3 p.m. today, rain."]),
        ("A wrapped line\ncontinues here. Next one.\n\nNew paragraph without a dot\n\nLast one.",
         ["A wrapped line\ncontinues here.", "Next one.", "New paragraph without a dot", "Last one."]),
        ("Introduction\nThe study began.\n- first item\n- second item",
         ["Introduction", "The study began.", "- first item", "- second item"]),
        ("", []),
        (" \n\t ", []),
        ("no punctuation at all", ["no punctuation at all"]),
        # Tokenized, lower-cased text (CNN/DailyMail's form): a lone terminal ends a sentence.
        ("the plane crashed . the crew , '' he said , `` died '' . why ? nobody knows !",
         ["the plane crashed .", "the crew , '' he said , `` died '' .", "why ?", "nobody knows !"]),
        ("We would speak ... and then we left.", ["We would speak ... and then we left."]),
    ],
)
def test_sentence_splitter(text, expected):
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == expected
    assert all(text[s.start : s.end] == s.text for s in sentences)


@given(st.lists(st.sampled_from(["Mr.", "U.S.", "3.5", "a", "Word", "!", "?", ".", "…", "。", "”", " ", "\n", "\n\n", "- ", "é"]), max_size=40).map("".join))
def test_sentences_partition_the_text(text):
    sentences = split_sentences(text)
    covered = 0
    for s in sentences:
        assert text[s.start : s.end] == s.text and s.text == s.text.strip() and s.text
        assert text[covered : s.start].strip() == "", "non-space text fell between sentences"
        covered = s.end
    assert text[covered:].strip() == ""


def test_lead_result_offsets_and_scores():
    text = "  First one here. Second one!\n\nThird para. Fourth.  "
    result = LeadSummarizer(sentences=3).run([text])[0]
    assert result["summary"] == "First one here. Second one!\n\nThird para."
    assert [s["text"] for s in result["sentences"]] == ["First one here.", "Second one!", "Third para."]
    for s in result["sentences"]:
        assert text[s["start"] : s["end"]] == s["text"]
    assert [s["rank"] for s in result["sentences"]] == [1, 2, 3]
    assert [s["score"] for s in result["sentences"]] == [1.0, 0.75, 0.5]


def test_lead_with_fewer_sentences_than_asked_returns_them_all():
    result = LeadSummarizer(sentences=5).run(["Only one."])[0]
    assert result["summary"] == "Only one." and len(result["sentences"]) == 1


def test_the_pipeline_checks_the_kind_of_every_input_before_the_engine_runs():
    import toolkit

    for bad in (b"bytes", 3, None):
        with pytest.raises(TypeError, match=f"^summarize:lead takes str inputs, not {type(bad).__name__}$"):
            toolkit.pipeline("summarize", engine="lead")(["Fine.", bad])
    skip = toolkit.pipeline("summarize", engine="lead", on_error="skip")(["Fine. Text.", b"x"])
    assert skip[0]["summary"] and skip[1].error == "TypeError: summarize:lead takes str inputs, not bytes"
    qa = toolkit.pipeline("qa", engine="window")
    for bad, message in (("a question", "takes {'question', 'context'} mappings, not str"),
                         ({"question": "Who?", "context": 3}, "an input's 'context' must be a string, not int"),
                         ({"context": "Text."}, "an input's 'question' must be a string, not NoneType")):
        with pytest.raises(TypeError, match=re.escape(f"qa:window{':' if 'input' in message else ''} {message}")):
            qa([bad])


SHIPPED = {
    "classify": "plugins/classification/models/imdb-sentiment.nlpt",
    "summarize": "plugins/summarization/models/news.nlpt",
    "translate": "plugins/translation/models/en-de.nlpt",
    "generate": "plugins/generation/models/wikitext2.nlpt",
    "chat": "plugins/chat/models/dailydialog.nlpt",
    "chat-retrieval": "plugins/chat/models/dailydialog-retrieval.nlpt",
}


@pytest.mark.parametrize(
    "args, foreign, message",
    [
        (["classify", "-t", "good"], "summarize", "a model for summarize:trained, not classify:ensemble"),
        (["summarize", "--engine", "trained", "-t", "A b. C d."], "classify",
         "a model for classify:ensemble, not summarize:trained"),
        (["translate", "-t", "a dog"], "classify", "a model for classify:ensemble, not translate:transformer"),
        (["qa", "-t", "A dog ran.", "--question", "Who ran?"], "translate",
         "a model for translate:transformer, not qa:reader"),
        (["classify", "--engine", "ngram", "-t", "good"], "classify",
         "a model for classify:ensemble, not classify:ngram; use --engine ensemble"),
        (["generate", "Once upon a time"], "classify", "a model for classify:ensemble, not generate:transformer"),
        (["classify", "-t", "good"], "generate", "a model for generate:transformer, not classify:ensemble"),
        (["chat", "--no-log", "hi"], "generate", "a model for generate:transformer, not chat:transformer"),
        (["generate", "Once upon a time"], "chat", "a model for chat:transformer, not generate:transformer"),
        (["chat", "-e", "retrieval", "--no-log", "hi"], "chat",
         "a model for chat:transformer, not chat:retrieval; use --engine transformer"),
        (["chat", "--no-log", "hi"], "chat-retrieval",
         "a model for chat:retrieval, not chat:transformer; use --engine retrieval"),
    ],
)
def test_every_model_engine_refuses_a_foreign_model_file_as_a_usage_error(args, foreign, message):
    """The same check (Engine.model_metadata) for each built-in engine that reads a model file: exit code 2."""
    from pathlib import Path

    from click.testing import CliRunner

    from toolkit.cli import cli

    model = Path(__file__).resolve().parents[1] / SHIPPED[foreign]
    if not model.is_file():
        pytest.skip(f"{model} is not installed")
    result = CliRunner().invoke(cli, [*args, "--model", str(model)])
    assert result.exit_code == 2, result.output
    assert f"{model}: {message}" in " ".join(result.output.split())


def test_missing_default_model_names_its_remedy(tmp_path, monkeypatch):
    from toolkit_plugins.qa.neural import ReaderEngine
    from toolkit.engine import OptionError

    monkeypatch.setattr(ReaderEngine, "default_model", str(tmp_path / "squad-reader.nlpt"))
    with pytest.raises(OptionError, match=r"the default model .*squad-reader.nlpt of engine qa:reader is not"
                                          r" installed; train it with `python scripts/train_default_reader.py`"):
        ReaderEngine()


def test_check_attributes_applies_the_registrys_rules():
    from toolkit.engine import Option
    from toolkit.testing import check_attributes

    class Dashed(LeadSummarizer):
        name = "dashed"
        options = {**LeadSummarizer.options, "max-words": Option(int, 3, "x")}

    with pytest.raises(AssertionError, match=r"registration would refuse it: .*'max-words'.* not Python identifiers"):
        check_attributes(Dashed)
    check_attributes(LeadSummarizer)
