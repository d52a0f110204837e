"""Built-in engines pass the conformance kit, and the lead summarizer and its sentence splitter do real work."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugins.summarization.lead import LeadSummarizer
from toolkit.sentences import split_sentences
from toolkit.testing import check_engine, check_picklable, engine_checks
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


def test_lead_rejects_non_text_input():
    with pytest.raises(TypeError, match="takes str inputs"):
        LeadSummarizer().run([b"bytes"])
