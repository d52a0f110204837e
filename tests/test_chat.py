"""The dialogue task: BM25, reply corpora, the retrieval engine, the 'dialogue' input kind, the conversation
store (transactions, a killed writer, a damaged file) and the terminal loop's commands and Ctrl-C."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

import toolkit
from toolkit.engine import Engine, check_input
from toolkit.errors import DataError, InputError, OptionError
from toolkit.io import read_records
from toolkit_plugins.chat.bm25 import BM25Index, best
from toolkit_plugins.chat.contract import MAX_TURN_CHARS
from toolkit_plugins.chat.corpus import read_pairs
from toolkit_plugins.chat.repl import interactive, piped
from toolkit_plugins.chat.retrieval import RetrievalEngine
from toolkit_plugins.chat.session import Session
from toolkit_plugins.chat.store import Store, StoreError

def test_bm25_prefers_rare_shared_terms_and_ties_go_to_the_first():
    index = BM25Index(["the cat sat", "the dog sat", "the the the", "a bird"])
    scores = index.scores("dog")
    assert best(scores) == (1, scores[1]) and scores[1] > 0 and scores[[0, 2, 3]].tolist() == [0, 0, 0]
    # "the" is in three of four documents: it weighs less than "cat", found in one.
    assert index.scores("cat")[0] > index.scores("the")[0] > 0
    assert best(index.scores("sat"))[0] == 0  # documents 0 and 1 tie: the corpus's order decides
    assert index.scores("zebra").tolist() == [0, 0, 0, 0]


def test_dialogue_pairs_take_the_last_turns_as_context(corpus, dialogues):
    pairs = read_pairs(corpus, context_turns=2)
    assert [p.response for p in pairs] == [*dialogues[0]["turns"][1:], dialogues[1]["turns"][1]]
    assert pairs[2].context == "Fine, thanks. And you?\nGreat. What time is it?"
    assert pairs[2].source == f"{corpus}:1#4"


@pytest.mark.parametrize("name,content", [
    ("faq.csv", 'question,answer\n"How do I reset my password?","Use the link on the sign-in page."\n'),
    ("faq.tsv", "question\tanswer\nHow do I reset my password?\tUse the link on the sign-in page.\n"),
    ("faq.jsonl", '{"question": "How do I reset my password?", "answer": "Use the link on the sign-in page."}\n'),
])
def test_faq_files_reply_with_their_approved_answer(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    engine = RetrievalEngine(scorer="bm25", corpus=str(path))
    [result] = engine.run([{"turns": ["hello, I forgot my password, how can I reset it"]}])
    assert result["text"] == "Use the link on the sign-in page." and result["route"] == "corpus"
    assert result["match"] == "How do I reset my password?" and result["score"] > 0


def test_retrieval_replies_from_the_corpus_or_says_it_fell_back(corpus):
    engine = RetrievalEngine(scorer="bm25", corpus=corpus)
    results = engine.run([{"turns": ["Excuse me, where is the station?"]}, {"turns": ["quantum chromodynamics"]}])
    assert results[0]["text"] == "Go straight on and turn left at the bank." and results[0]["route"] == "corpus"
    assert results[1] == {"text": "Sorry, I don't know how to answer that.", "route": "fallback", "score": 0.0}
    # Streamed, the reply is the same text in pieces.
    pieces = list(engine.stream({"turns": ["Excuse me, where is the station?"]}))
    assert len(pieces) > 1 and "".join(pieces) == results[0]["text"]
    # A minimum score above the match's sends it to the fallback.
    strict = RetrievalEngine(scorer="bm25", corpus=corpus, min_score=results[0]["score"] + 1,
                             fallback="Please call us.")
    assert strict.run([{"turns": ["where is the station"]}])[0]["text"] == "Please call us."


def test_retrieval_matches_the_last_context_turns(corpus):
    turns = ["Where is the railway station?", "Go straight on.", "Thanks. What time is it?"]
    assert RetrievalEngine(scorer="bm25", corpus=corpus).run([{"turns": turns}])[0]["text"] == "It is five o'clock."


def test_pipeline_runs_the_dialogue_task(corpus):
    pipe = toolkit.pipeline("chat", "retrieval", scorer="bm25", corpus=corpus)
    assert pipe({"turns": ["what time is it"]})["text"] == "It is five o'clock."
    with pytest.raises(TypeError, match="takes {'turns': \\[...\\]} mappings \\(a conversation\\), not str"):
        pipe(["what time is it"])


def test_dialogue_input_kind_is_checked():
    check_input(RetrievalEngine, {"turns": ["hi", "hello"]})
    for bad, message in [("hi", "mappings \\(a conversation\\), not str"), ({"turns": "hi"}, "list of strings"),
                         ({"turns": ["a", 3]}, "list of strings"), ({"text": "hi"}, "list of strings")]:
        with pytest.raises(TypeError, match=message):
            check_input(RetrievalEngine, bad)


def test_jsonl_records_of_conversations_are_read(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "turns": ["Hi", "Hello"]}\n{"turns": "Hi"}\n{"id": 7, "turns": []}\n')
    records = list(read_records([str(path)], (), "jsonl", dialogue=True))
    assert [(r.id, r.value) for r in records] == [("a", {"turns": ["Hi", "Hello"]}), (f"{path}:2", None),
                                                  ("7", {"turns": []})]
    assert "'turns'" in records[1].error
    # Without dialogue, the records are texts as before.
    assert "no string field 'text'" in next(read_records([str(path)], (), "jsonl")).error


def test_bad_turns_and_options_get_one_clear_message(corpus):
    engine = RetrievalEngine(scorer="bm25", corpus=corpus)
    for turns, message in [([], "the conversation is empty"), (["hi", "  "], "the user's turn is empty"),
                           (["x" * 1_000_000], f"turn 1 has 1000000 characters, more than the {MAX_TURN_CHARS}")]:
        with pytest.raises(InputError, match=message) as caught:
            engine.run([{"turns": turns}])
        assert "\n" not in str(caught.value)
    with pytest.raises(OptionError, match="needs --corpus FILE"):
        RetrievalEngine(scorer="bm25").run([{"turns": ["hi"]}])
    with pytest.raises(OptionError, match="--scorer bm25 reads no model file"):
        RetrievalEngine("model.nlpt", scorer="bm25", corpus=corpus)


@pytest.mark.parametrize("name,content,message", [
    ("missing.jsonl", None, "no such corpus file"),
    ("bad.jsonl.gz", b"not gzip at all", "not a readable gzip file"),
    ("latin.jsonl", b'{"turns": ["caf\xe9", "ok"]}\n', "give its encoding"),
    ("bad.jsonl", b'{"turns": ["a", "b"]}\n{"turns": ["a"\n', "line 2: invalid JSON"),
    ("other.jsonl", b'{"text": "hello"}\n', "line 1: a record needs 'turns'"),
    ("one.jsonl", b'{"turns": ["only one turn"]}\n', "no response to reply with"),
    ("faq.csv", b"q,a\nhi,hello\n", "no column 'question'"),
    ("faq.txt", b"hi\n", "cannot tell the data format"),
])
def test_an_unusable_corpus_is_one_data_error(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        RetrievalEngine(scorer="bm25", corpus=str(path)).stamp()
    assert "\n" not in str(caught.value)


def test_exchanges_are_saved_and_a_conversation_continues(corpus, home):
    engine = RetrievalEngine(scorer="bm25", corpus=corpus)
    with Store() as store:
        first = Session(engine, store)
        first.exchange("Hi, how are you today?")
        first.exchange("what time is it")
        later = Session.resumed(engine, store, None, save=True)
        assert later.id == first.id and later.turns == first.turns
        assert [c.exchanges for c in store.conversations()] == [2]
        later.exchange("where is the station")
        assert [e.route for e in store.exchanges(first.id)] == ["corpus", "corpus", "corpus"]
        unsaved = Session.resumed(engine, store, first.id, save=False)
        unsaved.exchange("thanks")
        assert store.conversation(first.id).exchanges == 3
    assert (home / "logs.db").is_file()


def test_an_exchange_that_fails_to_save_leaves_nothing(corpus, home):
    with Store() as store:
        store.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON exchanges WHEN NEW.user = 'boom'"
                         " BEGIN SELECT RAISE(ABORT, 'refused'); END")
        chat = Session(RetrievalEngine(scorer="bm25", corpus=corpus), store)
        with pytest.raises(StoreError, match="refused"):
            chat.exchange("boom")
        # Neither the conversation (written in the same transaction) nor the turn is left.
        assert store.conversations() == [] and chat.turns == []


def test_a_writer_killed_in_the_middle_of_an_exchange_leaves_the_database_whole(tmp_path):
    path = tmp_path / "logs.db"
    # The conversation row is written, then the process dies before the exchange's row: SIGKILL, no clean-up.
    script = textwrap.dedent(f"""
        import os, signal
        from toolkit_plugins.chat.store import Store
        store = Store({str(path)!r})
        store.add_exchange("c1", "hello", "hi there", "corpus", "chat:retrieval")
        store.db.set_trace_callback(
            lambda sql: os.kill(os.getpid(), signal.SIGKILL) if sql.startswith("INSERT INTO exchanges") else None)
        store.add_exchange("c2", "second", "never saved", "corpus", "chat:retrieval")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    with Store(path) as store:
        assert store.db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert [c.id for c in store.conversations()] == ["c1"]
        assert [(e.user, e.reply) for e in store.exchanges("c1")] == [("hello", "hi there")]


@pytest.mark.parametrize("content", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 200])
def test_a_damaged_database_is_refused_and_left_as_it_is(tmp_path, content):
    path = tmp_path / "logs.db"
    path.write_bytes(content)
    with pytest.raises(StoreError, match=f"cannot use the conversation database {path}: .*; move .* away \\(it is"
                       " left as it is\\)") as caught:
        Store(path)
    assert "\n" not in str(caught.value)
    assert path.read_bytes() == content


def test_a_database_of_something_else_is_refused(tmp_path):
    path = tmp_path / "logs.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a conversation database of this version.*tables notes"):
        Store(path)
    assert path.read_bytes() == before


def _scripted(lines):
    """A ``read`` for :func:`interactive` that gives ``lines`` (an exception is raised), then Ctrl-D."""
    feed = iter(lines)

    def read(prompt):
        line = next(feed, EOFError)
        if isinstance(line, type) and issubclass(line, BaseException):
            raise line
        return line
    return read


def test_terminal_commands(corpus, home, tmp_path):
    out = io.StringIO()
    chat = Session(RetrievalEngine(scorer="bm25", corpus=corpus), None)
    saved = tmp_path / "saved.jsonl"
    interactive(chat, out, _scripted(["/help", "where is the station", KeyboardInterrupt, "/history",
                                      f"/save {saved}", "/save", "/nope", "/reset", "/history", "/exit", "never"]))
    text = out.getvalue()
    assert "/save FILE" in text and "Go straight on and turn left at the bank.\n" in text
    assert "you> where is the station\nbot> Go straight on and turn left at the bank.\n" in text
    assert json.loads(saved.read_text()) == {"id": text.split("conversation ")[1].split(" ")[0],
                                             "turns": ["where is the station", "Go straight on and turn left at the"
                                                       " bank."]}
    assert "give one file: /save FILE" in text and "unknown command /nope" in text
    assert "New conversation" in text and text.endswith("(no turns yet)\n")


def test_ctrl_c_during_a_reply_drops_the_exchange(corpus, home):
    class Interrupted(RetrievalEngine):
        def reply(self, turns):
            reply = super().reply(turns)

            def pieces():
                yield next(reply.pieces)
                raise KeyboardInterrupt
            return type(reply)(reply.route, pieces(), reply.details)

    with Store() as store:
        chat = Session(Interrupted(scorer="bm25", corpus=corpus), store)
        out = io.StringIO()
        interactive(chat, out, _scripted(["where is the station", "/history"]))
        assert "\nGo \n[reply stopped; not saved]\n" in out.getvalue()
        assert "(no turns yet)" in out.getvalue() and store.conversations() == [] and chat.turns == []


def test_piped_lines_get_one_reply_line_each(corpus):
    out = io.StringIO()
    chat = Session(RetrievalEngine(scorer="bm25", corpus=corpus), None)
    piped(chat, ["where is the station", "", "what time is it"], out)
    assert out.getvalue() == "Go straight on and turn left at the bank.\n\nIt is five o'clock.\n"
    with pytest.raises(InputError, match=f"^line 2: turn 7 has {MAX_TURN_CHARS + 1} characters"):
        piped(chat, ["hello", "x" * (MAX_TURN_CHARS + 1)], io.StringIO())
    assert len(chat.turns) == 6


def test_an_engine_with_only_the_engine_contract_talks_too():
    class Shout(Engine):
        task, name, description, version, inputs = "chat", "shout", "Says the turn back, louder.", "1", "dialogue"

        def run(self, inputs):
            return [{"text": item["turns"][-1].upper(), "route": "echo", "turns": len(item["turns"])}
                    for item in inputs]

    out = io.StringIO()
    chat = Session(Shout(), None)
    piped(chat, ["hi", "there"], out)
    assert out.getvalue() == "HI\nTHERE\n" and chat.turns == ["hi", "HI", "there", "THERE"]
    reply = chat.respond("again")
    assert (reply.route, list(reply.pieces), reply.details) == ("echo", ["AGAIN"], {"turns": 5})


class EnglishEcho(Engine):
    """Says the turn back; reads English (its class says so, as a model's metadata would)."""
    task, name, description, version, inputs = "chat", "echo", "Says the turn back.", "1", "dialogue"
    languages = ("en",)

    def run(self, inputs):
        return [{"text": item["turns"][-1], "route": "echo"} for item in inputs]


CHINESE = "你好，请问火车站在哪里？我找不到路了。"
FRENCH = "Bonjour, pouvez-vous me dire où se trouve la gare, s'il vous plaît ?"
ENGLISH = "Hello, could you tell me where the railway station is, please?"


def test_a_turn_in_a_language_the_model_does_not_read_is_said_in_the_result_and_counted():
    chat = Session(EnglishEcho(), None)
    english, chinese = chat.exchange(ENGLISH), chat.exchange(CHINESE)
    assert english == {"text": ENGLISH, "route": "echo", "language": "en"}
    assert chinese["language"] == "zh" and chinese["warning"].startswith("the input looks like zh")
    piped(chat, [FRENCH, CHINESE], io.StringIO())
    assert chat.unread == {"zh": 2, "fr": 1}


def test_the_terminal_notes_each_unread_language_once():
    out = io.StringIO()
    chat = Session(EnglishEcho(), None)
    interactive(chat, out, _scripted([CHINESE, ENGLISH, CHINESE, FRENCH]))
    notes = [line for line in out.getvalue().splitlines() if line.startswith("[the input looks like")]
    assert notes == ["[the input looks like zh, which the model does not read (it reads en): replies are"
                     " unreliable; --model takes a chat model for that language]",
                     "[the input looks like fr, which the model does not read (it reads en): replies are"
                     " unreliable; --model takes a chat model for that language]"]
    assert chat.turns == [CHINESE, CHINESE, ENGLISH, ENGLISH, CHINESE, CHINESE, FRENCH, FRENCH]


ACME = ("Acme was founded in 1921 by Jane Doe in Leeds. The company sells rockets and garden tools.\n"
        "Its head office moved to York in 1960.\n")


@pytest.fixture
def docs(tmp_path):
    path = tmp_path / "acme.txt"
    path.write_text(ACME, encoding="utf-8")
    return str(path)


def test_questions_the_documents_answer_are_quoted_with_their_evidence(corpus, docs):
    chat = toolkit.pipeline("chat", "retrieval", scorer="bm25", corpus=corpus, docs=[docs])
    quoted = chat({"turns": ["When did the head office move to York?"]})
    assert quoted["route"] == "docs" and quoted["answer"] == "1960" and quoted["source"] == docs
    assert quoted["text"] == f'1960 — "Its head office moved to York in 1960." ({docs})'
    evidence = quoted["evidence"]
    assert ACME[evidence["start"]:evidence["end"]] == evidence["text"] and quoted["docs_score"] >= 0.3
    # A question the documents do not answer well, and a turn that is no question, get the engine's reply.
    station = chat({"turns": ["where is the railway station?"]})
    assert station["route"] == "corpus" and station["text"] == "Go straight on and turn left at the bank."
    assert 0 <= station["docs_score"] < 0.3
    thanks = chat({"turns": ["great, thanks"]})
    assert thanks["route"] != "docs" and "docs_score" not in thanks
    # The threshold decides: at 1, nothing is quoted.
    strict = toolkit.pipeline("chat", "retrieval", scorer="bm25", corpus=corpus, docs=[docs], docs_min_score=1.0)
    assert strict({"turns": ["When did the head office move to York?"]})["route"] != "docs"
    assert chat.stamp()["docs"] == {"files": [docs], "reader": "qa:reader"}


def test_documents_that_cannot_be_read_end_the_run_before_any_turn(corpus, tmp_path):
    chat = toolkit.pipeline("chat", "retrieval", scorer="bm25", corpus=corpus, docs=[str(tmp_path / "missing.txt")])
    with pytest.raises(DataError, match="missing.txt: no such document"):
        chat.stamp()
    (tmp_path / "blank.txt").write_text(" \n\n", encoding="utf-8")
    with pytest.raises(DataError, match="blank.txt: the document is empty"):
        toolkit.pipeline("chat", "retrieval", scorer="bm25", corpus=corpus, docs=[str(tmp_path / "blank.txt")]).stamp()


def test_recall_at_1_among_10_ranks_the_true_response_against_responses_of_other_dialogues():
    topics = ["train station", "coffee milk", "rocket launch", "garden roses", "football match", "piano lesson",
              "bank account", "hotel room", "birthday cake", "winter coat", "doctor appointment", "movie ticket"]
    # Each reply repeats its question's topic words: BM25 finds every true response.
    related = [{"turns": [f"tell me about the {t}", f"the {t} is fine", f"why the {t} ?", f"because the {t}"]}
               for t in topics]
    report = RetrievalEngine(scorer="bm25").evaluate(related)
    assert report["responses"] == 3 * len(topics) and report["candidates"] == 10
    assert report["recall_at_1"] == 1.0 and report["mrr"] == 1.0
    # Replies that share no word with their context: every score ties at 0, and the true response is first
    # among the ten only where the shuffle put it first.
    unrelated = [{"turns": [f"tell me about the {t}", f"x{n}a y{n}b", f"z{n}c", f"w{n}d"]}
                 for n, t in enumerate(topics)]
    blind = RetrievalEngine(scorer="bm25").evaluate(unrelated)
    assert blind["recall_at_1"] < 0.5 and blind["mrr"] < 0.6
    assert RetrievalEngine(scorer="bm25").evaluate(unrelated) == blind  # a fixed seed
    with pytest.raises(DataError, match="two dialogues or more"):
        RetrievalEngine(scorer="bm25").evaluate(related[:1])
