"""benchmarks/summarize.py: its sumy adapter, its Lead-k row, its length rules and its ROUGE numbers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from plugins.summarization.rouge import reference_lines, rouge_f1
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
    pytest.importorskip("sumy")
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
    pytest.importorskip("sumy")
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
