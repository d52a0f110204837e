"""The rake engine against nlp-tool's engine contract.

Run from this folder after ``pip install -e .[test]`` (nlp-tool installed).
"""

from __future__ import annotations

import pytest

from toolkit.engine import OptionError
from toolkit.testing import check_engine

from nlp_tool_keywords.engine import RakeEngine

TEXT = (
    "Keyword extraction finds the phrases that say what a document is about. "
    "RAKE splits text at stopwords and punctuation, then scores candidate phrases "
    "by word degree and word frequency. Keyword extraction needs no training data."
)


def test_passes_the_nlp_tool_conformance_checks():
    # Result shape, batch == one by one, empty/long/unicode input, pickling.
    check_engine(RakeEngine)


def test_results_locate_each_keyword_in_its_own_input():
    texts = [TEXT, "Vector stores keep embeddings of sentences. Graph databases and vector stores."]
    results = RakeEngine(top_k=4).run(texts)
    assert len(results) == 2
    for text, result in zip(texts, results):
        keywords = result["keywords"]
        assert 0 < len(keywords) <= 4
        assert [k["score"] for k in keywords] == sorted((k["score"] for k in keywords), reverse=True)
        for k in keywords:
            assert text[k["start"] : k["end"]] == k["text"]
    assert "Keyword extraction" in [k["text"] for k in results[0]["keywords"]]


def test_options_are_checked_when_the_engine_is_built():
    assert RakeEngine().settings == {"top_k": 5, "max_words": 3}
    assert len(RakeEngine(top_k=2).run([TEXT])[0]["keywords"]) == 2
    for bad in ({"top_k": 0}, {"max_words": -1}, {"top_k": "3"}, {"window": 2}):
        with pytest.raises(OptionError):
            RakeEngine(**bad)
    with pytest.raises(OptionError, match="takes no model file"):
        RakeEngine(model="some/model.npz")


def test_text_format_lists_one_keyword_per_line():
    engine = RakeEngine(top_k=3)
    lines = engine.format_text(engine.run([TEXT])[0]).splitlines()
    assert len(lines) == 3
    assert all(line.split(None, 1)[1] in TEXT for line in lines)
