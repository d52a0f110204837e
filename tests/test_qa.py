"""Question answering: SQuAD reading, the official EM/F1, passages and retrieval, the engines, the command line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import toolkit
from toolkit_plugins.qa.baselines import SentenceRetriever, WindowBaseline
from toolkit_plugins.qa.common import Job, QAEngine, Span
from toolkit_plugins.qa.metric import exact_match, f1, normalize_answer, squad_scores
from toolkit_plugins.qa.neural import DEFAULT_MODEL_FILE, ReaderEngine
from toolkit_plugins.qa.passages import bm25_scores, split_passages, tokenize, uncovered
from toolkit_plugins.qa.squad import read_squad, to_examples
from toolkit.cli import make_cli
from toolkit.engine import DataError, OptionError
from toolkit.testing import TEXTS, UNICODE_TEXTS, engine_checks

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad" / "dev-v1.1.json.gz"

DOC = (
    "Acme Corporation was founded in 1921 by Jane Doe in Springfield. The company first made anvils. "
    "Later it moved to Shelbyville, where it built rockets for the space program."
)
FILLER = " ".join(f"Paragraph {i} describes the harbour, the markets and the old town walls." for i in range(400))
LONG_DOC = FILLER + " The vault of the museum is guarded by a dragon named Zanzibar."

SQUAD = {
    "version": "1.1",
    "data": [{"title": "Acme", "paragraphs": [{"context": DOC, "qas": [
        {"id": "q1", "question": "Who founded Acme Corporation?",
         "answers": [{"answer_start": 40, "text": "Jane Doe"}, {"answer_start": 40, "text": "Jane Doe in Springfield"}]},
        {"id": "q2", "question": "When was Acme founded?", "answers": [{"answer_start": 32, "text": "1921"}]},
    ]}]}],
}


# -- the metric --------------------------------------------------------------


def test_normalization_follows_the_official_script():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("An apple, a day") == "apple day"
    assert normalize_answer("theater") == "theater"  # articles only as whole words
    assert normalize_answer("1,000") == "1000"


def test_metric_matches_hand_computed_official_numbers():
    # Worked with the official v1.1 evaluate script's formulas:
    # "in Paris, France" vs "Paris": 1 common token of 3 predicted -> P=1/3, R=1, F1=0.5.
    assert (exact_match("The Eiffel Tower!", "eiffel tower"), f1("The Eiffel Tower!", "eiffel tower")) == (1.0, 1.0)
    assert (exact_match("in Paris, France", "Paris"), f1("in Paris, France", "Paris")) == (0.0, 0.5)
    assert f1("", "x") == 0.0 and f1("cat cat", "cat") == pytest.approx(2 / 3)
    scores = squad_scores(
        ["The Eiffel Tower!", "in Paris, France", "a cat and the dog", "1,000"],
        [["eiffel tower"], ["Paris"], ["cat", "dog and cat"], ["1000"]],
    )
    # EM: 1 + 0 + 0 + 1 of 4; F1: 1 + 0.5 + max(0.5, 1.0) + 1 of 4.
    assert scores == {"exact_match": 50.0, "f1": 87.5}
    with pytest.raises(ValueError):
        squad_scores(["a"], [])


# -- data --------------------------------------------------------------------


def test_read_squad_flattens_the_official_layout(tmp_path):
    path = tmp_path / "mini.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        json.dump(SQUAD, out)
    records = read_squad(str(path))
    assert [r["id"] for r in records] == ["q1", "q2"] and records[0]["context"] == DOC
    examples = to_examples(records)
    assert [a.text for a in examples[0].answers] == ["Jane Doe", "Jane Doe in Springfield"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": 3}')
    with pytest.raises(DataError, match="bad.json"):
        read_squad(str(bad))


def test_to_examples_accepts_plain_answers_and_rejects_bad_ones():
    example = to_examples([{"question": "Who?", "context": DOC, "answers": "Jane Doe"}])[0]
    assert DOC[example.answers[0].start :].startswith("Jane Doe")
    for record, message in [
        ({"question": " ", "context": DOC, "answers": ["x"]}, "question"),
        ({"question": "Who?", "context": "", "answers": ["x"]}, "context"),
        ({"question": "Who?", "context": DOC, "answers": []}, "answers"),
        ({"question": "Who?", "context": DOC, "answers": [{"text": "Jane", "answer_start": 3}]}, "answer_start"),
    ]:
        with pytest.raises(DataError, match=message):
            to_examples([record])


# -- passages and retrieval --------------------------------------------------


def test_tokens_and_passages_keep_offsets():
    text = "Zoë paid 5 € — 東京 “quoted”, n’t."
    tokens = tokenize(text)
    assert all(text[t.start : t.end] == t.text for t in tokens)
    assert [t.text for t in tokens if t.text in ("東", "京")] == ["東", "京"]
    words = tokenize(LONG_DOC)
    passages = split_passages(words, 50, 10)
    assert passages[0].first == 0 and passages[-1].last == len(words)
    assert all(b.first == a.first + 40 for a, b in zip(passages, passages[1:]))
    for p in passages:
        span = LONG_DOC[p.start : p.end]
        assert span.startswith(words[p.first].text) and span.endswith(words[p.last - 1].text)
    with pytest.raises(ValueError):
        split_passages(words, 10, 10)


def test_bm25_prefers_the_passage_with_the_rare_query_terms():
    docs = [["harbour", "markets"], ["dragon", "vault", "harbour"], ["markets", "walls"]]
    scores = bm25_scores(["dragon", "harbour"], docs)
    assert scores.index(max(scores)) == 1 and scores[2] == 0.0


def test_uncovered_ranges():
    text = "aaa bbb ccc ddd"
    assert uncovered(text, [(0, 3), (8, 11)]) == [(3, 8), (11, 15)]
    assert uncovered(text, [(0, 7), (8, 15)]) == []  # a blank gap is not reported


# -- the engines -------------------------------------------------------------


@pytest.mark.parametrize(
    "check", [check for engine in (ReaderEngine, WindowBaseline, SentenceRetriever) for check in engine_checks(engine)],
    ids=lambda check: f"{check.args[0].name}-{check.__name__}",
)
def test_builtin_engines_pass_every_conformance_check(check):
    # check_empty_input included: it accepts the engines' clear ValueError for an empty context.
    if check.args[0] is ReaderEngine and not DEFAULT_MODEL_FILE.is_file():
        pytest.skip("the default reader is not installed (python scripts/train_default_reader.py)")
    check()


class FixedSpans(QAEngine):
    """Answers the token spans it is given (all at score 0.5): what the shared pipeline makes of any span."""

    name, description = "fixed", "Given spans."

    def __init__(self, spans: list[tuple[int, int]], **options) -> None:
        super().__init__(None, **options)
        self.spans = spans

    def _candidates(self, jobs: list[Job]) -> list[list[Span]]:
        return [[Span(first, last, 0.5) for first, last in self.spans] for _ in jobs]


def assert_evidence_holds_the_answers(context: str, result: dict) -> None:
    for answer in result["answers"]:
        evidence = answer["evidence"]
        assert context[evidence["start"] : evidence["end"]] == evidence["text"], answer
        assert evidence["start"] <= answer["start"] and answer["end"] <= evidence["end"], answer


def test_evidence_covers_an_answer_that_crosses_a_sentence_end():
    context = ("The league moved to a 16-game schedule in 1978. Carolina started the season 14–0. "
               "They lost in February.")
    tokens = tokenize(context)
    first = next(i for i, t in enumerate(tokens) if t.text == "1978")
    last = next(i for i, t in enumerate(tokens) if t.text == "0")
    within = next(i for i, t in enumerate(tokens) if t.text == "February")
    result = FixedSpans([(first, last), (within, within)], top_k=2).run([{"question": "When?", "context": context}])[0]
    crossing, inside = result["answers"]
    assert crossing["answer"] == "1978. Carolina started the season 14–0"
    # From the sentence where the answer starts to the one where it ends, not only the first.
    end = context.index("14–0.") + len("14–0.")
    assert crossing["evidence"] == {"text": context[:end], "start": 0, "end": end}
    assert result["evidence"] == crossing["evidence"]
    assert inside["evidence"] == {"text": "They lost in February.", "start": end + 1, "end": len(context)}


# Pieces of text that make and break sentences: abbreviations, terminals, CJK, quotes, breaks, odd spaces.
PIECES = ["Mr.", "U.S.", "3.5", "word", "Word", "!", "?", ".", "…", "。", "東京", "”", " ", "\n", "\n\n", "- ", "é",
          "🙂", "\u200b", "\u00a0"]


@settings(max_examples=200)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=40).map("".join), st.data())
def test_evidence_holds_any_answer_span(context, data):
    tokens = tokenize(context)
    assume(tokens)
    first = data.draw(st.integers(0, len(tokens) - 1))
    last = data.draw(st.integers(first, len(tokens) - 1))
    result = FixedSpans([(first, last)]).run([{"question": "What?", "context": context}])[0]
    assert result["start"] == tokens[first].start and result["end"] == tokens[last].end
    assert_evidence_holds_the_answers(context, result)


def test_every_engine_keeps_its_answers_inside_their_evidence():
    engines = [WindowBaseline(top_k=20), SentenceRetriever(top_k=20)]
    if DEFAULT_MODEL_FILE.is_file():
        engines.append(ReaderEngine(top_k=20))
    contexts = [DOC, LONG_DOC, *TEXTS, *UNICODE_TEXTS,
                "It opened in 1921. Jane Doe ran it. By 1950 it had 300 staff! Who knew? Not us.\n\nA new part."]
    questions = ["Who founded Acme Corporation?", "When was it founded?", "How many staff did it have?",
                 "What is this about?", "Where did it move?"]
    inputs = [{"question": q, "context": c} for c in contexts for q in questions]
    for engine in engines:
        results = engine.run(inputs)
        assert sum(len(r["answers"]) for r in results) > 2 * len(inputs)
        for item, result in zip(inputs, results):
            assert_evidence_holds_the_answers(item["context"], result)


def test_offsets_round_trip_and_evidence():
    engine = WindowBaseline(top_k=5)
    for result in engine.run([{"question": "Who founded Acme Corporation?", "context": DOC}]):
        assert result["answers"], result
        for answer in result["answers"]:
            assert DOC[answer["start"] : answer["end"]] == answer["answer"]
            evidence = answer["evidence"]
            assert DOC[evidence["start"] : evidence["end"]] == evidence["text"]
            assert evidence["start"] <= answer["start"] < evidence["end"]
        assert result["answer"] == result["answers"][0]["answer"]


def test_top_k_scores_are_sorted_and_min_score_gives_no_answer():
    result = WindowBaseline(top_k=5).run([{"question": "Where did it move?", "context": DOC}])[0]
    scores = [a["score"] for a in result["answers"]]
    assert len(scores) > 1 and scores == sorted(scores, reverse=True)
    none = WindowBaseline(min_score=1.0).run([{"question": "Where did it move?", "context": DOC}])[0]
    assert (none["answer"], none["answers"], none["start"]) == (None, [], None)
    assert none["score"] == result["score"]
    assert WindowBaseline().format_text(none).startswith("(no answer)")


def test_answer_in_the_last_passage_of_a_long_document_is_found():
    engine = WindowBaseline(passages=2)
    result = engine.run([{"question": "What is the dragon that guards the vault named?", "context": LONG_DOC}])[0]
    assert result["answer"] == "Zanzibar"
    assert result["passages"]["read"] == 2 and result["passages"]["total"] > 20
    # What was not read is said, and the answer is outside it.
    assert result["skipped"] and all(s["end"] <= result["start"] for s in result["skipped"])
    assert "passages 0 reads all" in engine.format_text(result)
    everything = WindowBaseline(passages=0).run([{"question": "Who guards the vault?", "context": LONG_DOC}])[0]
    assert everything["skipped"] == [] and everything["passages"]["read"] == everything["passages"]["total"]


def test_unicode_and_cjk_contexts():
    engine = WindowBaseline(top_k=3)
    inputs = [
        {"question": "日本的首都是哪里？", "context": "东京是日本的首都。大阪是一个大城市。"},
        {"question": "Где находится Москва?", "context": "Москва находится в России. 🙂 Zero\u200bwidth."},
        {"question": "🙂?", "context": "e\u0301 ́ 🙂👍🏽"},
    ]
    for item, result in zip(inputs, engine.run(inputs)):
        for answer in result["answers"]:
            assert item["context"][answer["start"] : answer["end"]] == answer["answer"]


def test_empty_question_or_context_is_a_clear_error():
    engine = SentenceRetriever()
    with pytest.raises(ValueError, match="the question is empty"):
        engine.run([{"question": "When was Acme founded?", "context": DOC}, {"question": "  ", "context": DOC}])
    with pytest.raises(ValueError, match="the context is empty"):
        engine.run([{"question": "Who?", "context": " \n"}])
    with pytest.raises(TypeError, match="mappings"):  # the pipeline checks the kind of every input
        toolkit.pipeline("qa", engine="sentence")(["just a string"])
    with pytest.raises(OptionError, match="top_k"):
        WindowBaseline(top_k=0)
    with pytest.raises(OptionError, match="takes no model file"):
        SentenceRetriever(model="x.nlpt")


def test_pipeline_api():
    qa = toolkit.pipeline("qa", engine="window", top_k=2)
    [result] = qa([{"question": "When was Acme founded?", "context": DOC}])
    assert result["answer"] == "1921" and len(result["answers"]) == 2


def test_evaluate_scores_squad_records():
    metrics = WindowBaseline().evaluate(read_squad_records())
    assert metrics["records"] == 2 and 0.0 <= metrics["f1"] <= 100.0 and metrics["questions_per_second"] > 0
    assert metrics["exact_match"] == 100.0  # "Jane Doe" and "1921" are both found


def read_squad_records() -> list[dict]:
    return [{"question": qa["question"], "context": DOC, "answers": qa["answers"]}
            for qa in SQUAD["data"][0]["paragraphs"][0]["qas"]]


# -- the command line --------------------------------------------------------


@pytest.fixture
def cli_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "doc.txt").write_text(DOC, encoding="utf-8")
    (tmp_path / "questions.txt").write_text("When was Acme founded?\n\nWho founded Acme Corporation?\n")
    cli = make_cli()
    return lambda *args, input=None: CliRunner().invoke(cli, list(args), input=input)


def test_cli_context_and_questions(cli_run):
    result = cli_run("qa", "-e", "window", "--context", "doc.txt", "When was Acme founded?", "-f", "jsonl")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["id"], record["result"]["answer"]) == ("question", "1921")
    result = cli_run("qa", "-e", "window", "-c", "doc.txt", "--questions", "questions.txt", "-f", "jsonl")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["questions.txt:1", "questions.txt:3"]
    result = cli_run("qa", "-e", "window", "-c", "-", "When was Acme founded?", "-f", "jsonl", input=DOC)
    assert json.loads(result.stdout)["result"]["start"] == 32
    text = cli_run("qa", "-e", "window", "-c", "doc.txt", "When was Acme founded?", "--top-k", "2").stdout
    assert text.splitlines()[0] == "1921\t" + text.splitlines()[0].split("\t")[1] + "\t32:36"


def test_cli_jsonl_records_and_errors(cli_run, tmp_path):
    (tmp_path / "qa.jsonl").write_text(json.dumps({"id": "a", "question": "When was Acme founded?", "context": DOC}))
    result = cli_run("qa", "-e", "window", "qa.jsonl", "-i", "jsonl", "-f", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["result"]["answer"] == "1921"
    assert cli_run("qa", "-e", "window", "-c", "missing.txt", "Who?").exit_code == 2
    assert cli_run("qa", "-e", "window", "-c", "doc.txt", "  ").exit_code == 2
    assert cli_run("qa", "-e", "window", "-c", "doc.txt").exit_code == 2
    assert cli_run("qa", "-e", "window", "--questions", "questions.txt").exit_code == 2
    (tmp_path / "empty.txt").write_text("")
    result = cli_run("qa", "-e", "window", "-c", "empty.txt", "Who?")
    assert result.exit_code == 1 and "the context is empty" in result.output


def test_cli_train_and_evaluate_read_squad_json(cli_run, tmp_path):
    (tmp_path / "mini.json").write_text(json.dumps(SQUAD))
    result = cli_run("evaluate", "qa", "mini.json", "-e", "window", "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["records"] == 2
    result = cli_run("train", "qa", "mini.json", "--valid-split", "0", "--epochs", "1", "--dim", "16",
                     "--vocab-size", "100", "-o", "reader.nlpt", "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["train_records"] == 2 and (tmp_path / "reader.nlpt").is_file()
    assert cli_run("qa", "-m", "reader.nlpt", "-c", "doc.txt", "When was Acme founded?").exit_code == 0


@pytest.mark.skipif(not DEV.is_file(), reason="needs ../shared/data/squad")
def test_baselines_on_squad_dev_sample():
    records = read_squad(str(DEV))[:300]
    sentence, window = SentenceRetriever().evaluate(records), WindowBaseline().evaluate(records)
    # The best sentence holds the answer but is far longer: low EM; the span baseline is shorter.
    assert sentence["exact_match"] < 2.0 and 10.0 < sentence["f1"] < 30.0
    assert window["exact_match"] > sentence["exact_match"] and window["f1"] > sentence["f1"]


def test_shipped_reader_is_the_default_and_answers():
    if not DEFAULT_MODEL_FILE.is_file():
        pytest.skip("the default reader is not installed (python scripts/train_default_reader.py)")
    assert DEFAULT_MODEL_FILE.stat().st_size <= 25 * 2**20
    engine = toolkit.pipeline("qa").engine
    assert isinstance(engine, ReaderEngine) and engine.model == str(DEFAULT_MODEL_FILE)
    context = ("The Eiffel Tower is a wrought-iron lattice tower in Paris. It was designed by the engineer "
               "Gustave Eiffel, whose company built it between 1887 and 1889.")
    for question, answer in (("Who designed the Eiffel Tower?", "Gustave Eiffel"),
                             ("When was the tower built?", "between 1887 and 1889")):
        result = engine.run([{"question": question, "context": context}])[0]
        assert answer in result["answer"] or result["answer"] in answer, (question, result["answer"])
        assert context[result["start"] : result["end"]] == result["answer"]


@pytest.mark.skipif(not DEV.is_file(), reason="needs ../shared/data/squad")
def test_shipped_reader_scores_its_card_on_a_dev_sample():
    """F1 and speed recomputed on 600 seeded dev questions, against the card's full-dev figures."""
    if not DEFAULT_MODEL_FILE.is_file():
        pytest.skip("the default reader is not installed (python scripts/train_default_reader.py)")
    import random

    sample = random.Random(0).sample(read_squad(str(DEV)), 600)
    engine = ReaderEngine()
    scores = engine.evaluate(sample)
    card = engine.model_metadata()["dev_metrics"]
    # Per-question F1 has a standard deviation of about 42 points on SQuAD, so the mean of 600 has a
    # standard error of about 1.7: 6 points is 3.5 of them. A damaged model scores like the window
    # baseline (about 23).
    assert abs(scores["f1"] - card["f1"]) <= 6.0, (scores, card)
    assert scores["f1"] >= 60.0 and scores["questions_per_second"] >= 20.0, scores
