"""The RAKE extractor on its own (no nlp-tool needed beyond the package itself)."""

from __future__ import annotations

import pytest

from nlp_tool_keywords.rake import candidate_phrases, extract_keywords

# The worked example of Rose et al. (2010), "Automatic keyword extraction from
# individual documents", section 1.2.
ABSTRACT = (
    "Compatibility of systems of linear constraints over the set of natural numbers. "
    "Criteria of compatibility of a system of linear Diophantine equations, strict "
    "inequations, and nonstrict inequations are considered. Upper bounds for components "
    "of a minimal set of solutions and algorithms of construction of minimal generating "
    "sets of solutions for all types of systems are given. These criteria and the "
    "corresponding algorithms for constructing a minimal supporting set of solutions can "
    "be used in solving all the considered types of systems and systems of mixed types."
)


def test_reproduces_the_papers_worked_example():
    # The paper's table of scores: its top nine keywords, in its order, with
    # its scores (rounded there to one decimal).
    want = [
        ("minimal generating sets", 8.7),
        ("linear Diophantine equations", 8.5),
        ("minimal supporting set", 7.7),
        ("minimal set", 4.7),
        ("linear constraints", 4.5),
        ("natural numbers", 4.0),
        ("strict inequations", 4.0),
        ("nonstrict inequations", 4.0),
        ("Upper bounds", 4.0),
    ]
    got = extract_keywords(ABSTRACT, top_k=9)
    assert [(k.text, round(k.score, 1)) for k in got] == want


def test_offsets_point_at_the_keyword_text():
    for k in extract_keywords(ABSTRACT, top_k=50):
        assert ABSTRACT[k.start : k.end] == k.text


def test_stopwords_punctuation_numbers_and_line_breaks_split_phrases():
    text = "Fast tokenizers, in 2024 the neural parsers\nbeat rule systems"
    phrases = [" ".join(p.words) for p in candidate_phrases(text)]
    assert phrases == ["fast tokenizers", "neural parsers", "beat rule systems"]


def test_repeated_phrase_is_one_keyword_at_first_occurrence_any_case():
    text = "GRAPH DATABASES and vector stores; graph databases or Graph Databases."
    got = extract_keywords(text, top_k=10)
    assert [(k.text, k.start) for k in got] == [("GRAPH DATABASES", 0), ("vector stores", 20)]
    assert got[0].score == got[1].score == 4.0


def test_top_k_and_max_words():
    assert len(extract_keywords(ABSTRACT, top_k=3)) == 3
    # With max_words=2, no three-word phrase survives.
    assert all(len(k.text.split()) <= 2 for k in extract_keywords(ABSTRACT, top_k=50, max_words=2))
    with pytest.raises(ValueError, match="top_k"):
        extract_keywords(ABSTRACT, top_k=0)
    with pytest.raises(ValueError, match="max_words"):
        extract_keywords(ABSTRACT, max_words=0)


def test_empty_and_stopword_only_text():
    assert extract_keywords("") == []
    assert extract_keywords("   \n") == []
    assert extract_keywords("it is what it is, and that's that.") == []


def test_unicode_offsets_are_code_points():
    text = "Die Straßenbahn fährt schnell — naïve Übersetzung, 東京 タワー"
    got = extract_keywords(text, top_k=10)
    assert got, "no keywords found in non-ASCII text"
    for k in got:
        assert text[k.start : k.end] == k.text
    assert "naïve Übersetzung" in [k.text for k in got]
    # Curly apostrophes are matched against the stopword list like straight ones.
    assert [k.text for k in extract_keywords("it\u2019s quantum chemistry", top_k=5)] == ["quantum chemistry"]


def test_ties_are_broken_by_position():
    got = extract_keywords("zebra crossing. apple orchard. mango grove.", top_k=3)
    assert [k.text for k in got] == ["zebra crossing", "apple orchard", "mango grove"]
