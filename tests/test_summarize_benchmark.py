"""benchmarks/summarize.py: its sumy adapter (sumy is in the test extra), its Lead-k row, its length rules,
its ROUGE numbers, the same headline-free input for every system and the rows by source."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from toolkit_plugins.summarization import corpora
from toolkit_plugins.summarization.rouge import reference_lines, rouge_f1
from toolkit.text.sentences import split_sentences

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "summarize.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("summarize_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRANSPORT = (
    "The council approved the transport plan on Monday. "
    "The weather was sunny and warm. "
    "The transport plan adds bus lines to the city. "
    "Critics said the transport plan and its bus lines cost too much."
)
SHORT = "Only one sentence here."
NEWS = "Title line\n\nSales rose to $10.9bn. The firm said profits grew. Shares fell."


@pytest.mark.parametrize("name", ["sumy-lexrank", "sumy-textrank", "sumy-lsa", "sumy-luhn", "sumy-sumbasic", "sumy-kl"])
def test_sumy_adapter_picks_our_sentences_in_document_order(bench, name):
    system = bench.sumy_system(name)
    ours = [s.text for s in split_sentences(TRANSPORT)]
    system.prepare(2)
    chosen = system.summarize(TRANSPORT)
    assert len(chosen) == 2 and set(chosen) <= set(ours)
    assert chosen == sorted(chosen, key=ours.index)
    system.prepare(10)
    assert system.summarize(TRANSPORT) == ours
    assert system.summarize(SHORT) == [SHORT]


def test_sumy_graph_methods_skip_the_aside(bench):
    for name in ("sumy-lexrank", "sumy-textrank"):
        system = bench.sumy_system(name)
        system.prepare(1)
        (chosen,) = system.summarize(TRANSPORT)
        assert "transport plan" in chosen, name


def test_sumy_tokenizer_keeps_words_of_letters(bench):
    assert bench.SumyTokenizer.to_words("Don't stop-words 42 times, café!") == ("Don't", "stop-words", "times", "café")
    assert bench.SumyTokenizer.to_sentences(TRANSPORT)[1] == "The weather was sunny and warm."


def test_lead_row_is_the_first_k_sentences(bench):
    lead = bench.engine_system("lead")
    lead.prepare(2)
    assert lead.summarize(NEWS) == ["Title line", "Sales rose to $10.9bn."]
    outputs, wall, cpu = bench.run_rule([lead], [NEWS, TRANSPORT, SHORT], [1, 3, 1])
    assert outputs["lead"] == [["Title line"], [s.text for s in split_sentences(TRANSPORT)[:3]], [SHORT]]
    assert wall["lead"] > 0 and cpu["lead"] > 0


def test_rouge_numbers_equal_the_plugins_rouge(bench):
    references = [reference_lines("Sales rose to $10.9bn.The firm said profits grew."), reference_lines(TRANSPORT), "x"]
    predictions = [["Sales rose to $10.9bn.", "Shares fell."], ["The weather was sunny and warm."], ["Nothing."]]
    expected = rouge_f1(references, ["\n".join(p) for p in predictions])
    rouge = bench.Rouge()
    for _ in range(2):  # the second time from the tokenizer's cache
        assert rouge(references, predictions) == pytest.approx({m: 100 * v for m, v in expected.items()}, abs=1e-9)
    assert 0 < expected["rougeLsum"] < 1


def test_unknown_system_is_a_usage_error(bench, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(["--systems", "centrality,nope"])
    assert exit_info.value.code == 2
    assert "unknown system(s) nope" in capsys.readouterr().err


class Fixed:
    """A system that always picks the first sentence."""

    name = "first"

    @staticmethod
    def summarize(text: str) -> list[str]:
        return [split_sentences(text)[0].text]


def test_rows_by_source_score_each_sources_documents(bench):
    articles = ["Sales rose. Costs fell.", "Rain came. Sun went.", "Cats purr. Dogs bark.", "One thing. Another."]
    references = ["Sales rose.", "Sun went.", "Cats purr.", "Another."]
    sources = ["cnn", "dailymail", "cnn", "dailymail"]
    outputs = {"first": [Fixed.summarize(a) for a in articles]}
    rouge = bench.Rouge()
    rows = bench.source_rows(rouge, [Fixed], references, outputs, sources)
    assert [(r["source"], r["documents"]) for r in rows] == [("cnn", 2), ("dailymail", 2)]
    assert rows[0]["rouge1"] == pytest.approx(100.0) and rows[1]["rouge1"] == pytest.approx(0.0)
    pooled = rouge(references, outputs["first"])["rouge1"]
    assert pooled == pytest.approx((rows[0]["rouge1"] + rows[1]["rouge1"]) / 2)
    text = bench.source_table("CNN/DailyMail test", rows)
    assert "by source: CNN 2, Daily Mail 2" in text and text.splitlines()[-1].split()[0] == "first"
    assert bench.source_rows(rouge, [Fixed], references, outputs, ["bbc"] * 4) == []


@pytest.mark.skipif(not corpora.BBC.is_file(), reason="the corpora live in ../shared/data beside the checkout")
def test_every_system_gets_the_bbc_article_without_its_headline(bench):
    articles, references, sources = bench.load("bbc", 20)
    titles = {r["article"]: r["title"] for r in corpora.bbc_split().test[:20]}
    assert list(titles) == articles and sources == ["bbc"] * 20 and len(references) == 20
    for article, title in titles.items():
        assert not article.startswith(title) and article == article.lstrip()
