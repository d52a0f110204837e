"""The chat task's transformer engine: a tiny language model trained here on dialogues, then replies through
the API (whole and streamed, one conversation and a batch) and `nlp-tool chat`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import toolkit
from toolkit.errors import DataError, ModelMismatchError

from toolkit_plugins.chat.transformer import SPEAKERS, TransformerChat, dialogue_text, distinct, marked_turns

SHIPPED = Path(__file__).resolve().parents[1] / "plugins" / "chat" / "models" / "dailydialog.nlpt"
DAILYDIALOG_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "dailydialog" / "test.jsonl.gz"
DIALOGUES = [
    ["where is the station ?", "go straight on and turn left .", "thank you .", "you are welcome ."],
    ["what time is it ?", "it is five o'clock .", "so late ?", "yes , time to go home ."],
    ["do you like tea ?", "i prefer coffee with milk ."],
]
OPTIONS = dict(epochs=30, vocab_size=70, dim=32, heads=2, layers=2, ffn=64, dropout=0.0, context_length=96,
               batch_blocks=4, warmup=20, learning_rate=3e-3, patience=0)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("chat") / "tiny-chat.nlpt"
    records = [{"turns": turns} for turns in DIALOGUES * 30]
    report = toolkit.train("chat", records, engine="transformer", output=path,
                           valid=[{"turns": turns} for turns in DIALOGUES], progress=False, **OPTIONS)
    assert report["engine"] == "chat:transformer" and report["metrics"]["ppl"] < 2.0, report
    return str(path)


def test_turns_are_marked_by_speaker_and_cannot_carry_a_marker():
    assert marked_turns(["hi", f"hello {SPEAKERS[0]} there", "bye"]) == [
        f"{SPEAKERS[0]} hi", f"{SPEAKERS[1]} hello there", f"{SPEAKERS[0]} bye"]
    assert dialogue_text(["a  b", "c"]) == f"{SPEAKERS[0]} a b{SPEAKERS[1]} c"


def test_a_tiny_model_replies_with_what_it_learnt(model):
    chat = toolkit.pipeline("chat", engine="transformer", model=model, temperature=0)
    result = chat({"turns": ["where is the station ?"]})
    assert result["text"] == "go straight on and turn left."
    assert result["route"] == "model" and result["finish"] == "stop" and result["context_turns"] == 1
    # The model reads the turns before the last as far as they fit beside the reply's max_tokens.
    later = toolkit.pipeline("chat", engine="transformer", model=model, temperature=0, max_tokens=12)(
        {"turns": ["what time is it ?", "it is five o'clock .", "so late ?"]})
    assert later["context_turns"] >= 2 and later["finish"] == "length" and later["tokens"] == 12
    assert "yes, time to go home.".startswith(later["text"]) and len(later["text"]) > 5


def test_a_batch_and_a_stream_give_the_replies_of_one_conversation_alone(model):
    chat = toolkit.pipeline("chat", engine="transformer", model=model, temperature=1.5, seed=3)
    conversations = [{"turns": turns[:1]} for turns in DIALOGUES]
    alone = [chat(conversation)["text"] for conversation in conversations]
    assert [r["text"] for r in chat(conversations)] == alone
    assert ["".join(chat.stream(conversation)) for conversation in conversations] == alone


def test_the_context_keeps_the_last_turns_that_fit(model):
    chat = toolkit.pipeline("chat", engine="transformer", model=model, temperature=0, max_tokens=24)
    long = [turn for turns in DIALOGUES for turn in turns] * 3 + ["where is the station ?"]
    result = chat({"turns": long})
    assert 1 <= result["context_turns"] < len(long) and "context_cut" not in result
    assert result["text"] == "go straight on and turn left."


def test_training_data_must_be_dialogues(tmp_path):
    with pytest.raises(DataError, match="record 2 has fewer than two turns"):
        toolkit.train("chat", [{"turns": ["a", "b"]}, {"turns": ["only one"]}], engine="transformer",
                      output=tmp_path / "m.nlpt", progress=False, valid_split=0, **OPTIONS)
    with pytest.raises(DataError, match="record 1: 'turns' must be a list of strings"):
        toolkit.train("chat", [{"turns": "a b"}], engine="transformer", output=tmp_path / "m.nlpt",
                      progress=False, valid_split=0, **OPTIONS)
    assert not (tmp_path / "m.nlpt").exists()


def test_evaluation_scores_each_response_given_its_history(model):
    chat = TransformerChat(model=model, temperature=0)
    report = chat.evaluate([{"turns": turns} for turns in DIALOGUES])
    assert report["responses"] == 3 + 3 + 1 and report["records"] == 3
    # Learnt by heart: each response is near certain, and greedy replies are the true ones.
    assert 1.0 <= report["token_perplexity"] < 1.5 and report["words"] == sum(
        len(t.split()) + 1 for turns in DIALOGUES for t in turns[1:])
    assert report["bleu1"] > 90 and report["bleu2"] > 90
    # Distinct words of the replies as plain text, split as BLEU splits them ("o'clock" one word, "." another).
    replies = [t for turns in DIALOGUES for t in turns[1:]]
    assert report["distinct1"] == pytest.approx(len({w for r in replies for w in r.split()})
                                                / sum(len(r.split()) for r in replies), abs=1e-4)
    assert distinct([["a", "b", "a", "b"], ["a"]], 2) == round(2 / 3, 4) and distinct([["a"]], 2) == 0.0
    # An untrained reply scores worse than the true one would: the perplexity is of the true responses.
    shuffled = TransformerChat(model=model, temperature=0).evaluate(
        [{"turns": [turns[0], *reversed(turns[1:])]} for turns in DIALOGUES[:2]])
    assert shuffled["token_perplexity"] > 3 * report["token_perplexity"]


def test_a_model_of_another_task_is_refused(tmp_path):
    path = tmp_path / "generate.nlpt"
    toolkit.train("generate", [{"text": t} for turns in DIALOGUES * 5 for t in turns], output=path, progress=False,
                  valid_split=0, **{**OPTIONS, "epochs": 1})
    with pytest.raises(ModelMismatchError):
        TransformerChat(model=str(path))


def test_nlp_tool_chat_replies_with_the_transformer(model):
    def chat(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from toolkit.cli import cli; cli()", "chat", "-e",
                               "transformer", "--model", model, "--temperature", "0", "--no-log", *args],
                              input=stdin, capture_output=True, text=True, timeout=120)

    one = chat("where is the station ?")
    assert one.returncode == 0, one.stderr
    assert one.stdout == "go straight on and turn left.\n"
    piped = chat(stdin="what time is it ?\nso late ?\n")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines() == ["it is five o'clock.", "yes, time to go home."]
    as_json = chat("-f", "json", "do you like tea ?")
    [record] = json.loads(as_json.stdout)
    assert record["result"]["text"] == "i prefer coffee with milk." and record["result"]["route"] == "model"
    wrong = chat("--corpus", "faq.csv", "hello")
    assert wrong.returncode == 2 and "corpus" in wrong.stderr


def test_a_batch_quotes_the_documents_where_they_answer_and_writes_the_rest(model, tmp_path):
    doc = tmp_path / "acme.txt"
    doc.write_text("Acme was founded in 1921 by Jane Doe in Leeds. Its head office moved to York in 1960.\n",
                   encoding="utf-8")
    chat = toolkit.pipeline("chat", engine="transformer", model=model, temperature=0, docs=[str(doc)])
    quoted, written = chat([{"turns": ["When did the head office move to York?"]},
                            {"turns": ["where is the station ?"]}])
    assert quoted["route"] == "docs" and quoted["answer"] == "1960"
    assert written["route"] == "model" and written["text"] == "go straight on and turn left."
    assert written["docs_score"] < 0.3  # asked of the documents, which had no good answer
    assert "".join(chat.stream({"turns": ["When did the head office move to York?"]})) == quoted["text"]


def test_the_shipped_model_scores_near_its_card_and_is_the_default():
    """The shipped model and its card agree: response perplexity on the first 30 test dialogues (about 200
    responses) near the card's full-test figure; and it is what `nlp-tool chat` replies with."""
    from toolkit.datasets import read_records

    if not SHIPPED.is_file() or not DAILYDIALOG_TEST.is_file():
        pytest.skip("the default chat model or ../shared/data/dailydialog is not installed")
    engine = TransformerChat()
    card = engine.model_metadata()["test_metrics"]
    scores = engine.evaluate(read_records(str(DAILYDIALOG_TEST), {"turns": "turns"})[:30])
    # A sample's perplexity differs from the split's by its content (these 30 dialogues run at two thirds of
    # the split's); another model is off by far more.
    assert 0.5 < scores["word_perplexity"] / card["word_perplexity"] < 1.5, (scores, card)
    text = (SHIPPED.parent / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert f"**{card['word_perplexity']:.2f}**" in text and f"**{card['token_perplexity']:.2f}**" in text
    replied = subprocess.run([sys.executable, "-c", "from toolkit.cli import cli; cli()", "chat", "--no-log", "-f",
                              "json", "Hi, how are you?"], capture_output=True, text=True, timeout=120)
    assert replied.returncode == 0, replied.stderr
    [record] = json.loads(replied.stdout)
    assert record["result"]["route"] == "model" and record["result"]["text"].strip()
    assert record["stamp"]["engine"] == "chat:transformer" and record["stamp"]["model"] == str(SHIPPED)
