"""benchmarks/summarize.py: sumy's adapter, the same headline-free input for every system, the rows by source."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from plugins.summarization import corpora
from toolkit.text.sentences import split_sentences

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "summarize.py"
NEWS = ("The council approved the new transport plan on Monday. It adds three bus lines to the city centre. "
        "The weather was mild. Critics said the transport plan costs too much for three bus lines. "
        "A vote on the budget follows in May.")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("summarize_benchmark_rows", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["sumy-lexrank", "sumy-luhn"])
def test_sumy_adapter_gives_k_sentences_of_the_text(bench, name):
    # sumy is in the test extra: without it this fails rather than skips.
    system = bench.sumy_system(name)
    ours = [s.text for s in split_sentences(NEWS)]
    for k in (1, 3):
        system.prepare(k)
        chosen = system.summarize(NEWS)
        assert len(chosen) == k and all(sentence in ours for sentence in chosen)
        assert chosen == sorted(chosen, key=ours.index)


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
