"""`nlp-tool chat` without a terminal (one-shot message, line in / line out, -i jsonl) and `nlp-tool logs`:
conversations saved, continued and shown, and bad input said in one line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from toolkit.cli import cli

STATION, TIME = "Go straight on and turn left at the bank.", "It is five o'clock."
# The conversation mechanics are tested on the engine whose replies depend on the corpus alone.
BM25 = ("-e", "retrieval", "--scorer", "bm25")


def run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input)


def logs(*args):
    result = run("logs", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_one_shot_replies_and_saves_the_exchange(corpus, home):
    result = run("chat", *BM25, "--corpus", corpus, "Excuse me,", "where is the station?")
    assert (result.exit_code, result.stdout) == (0, STATION + "\n")
    [conversation] = logs()
    assert conversation["name"] == "Excuse me, where is the station?" and conversation["exchanges"] == 1
    shown = json.loads(run("chat", *BM25, "--corpus", corpus, "-f", "json", "what time is it").stdout)
    assert shown[0]["result"]["text"] == TIME and shown[0]["result"]["route"] == "corpus"
    assert shown[0]["stamp"]["conversation"] == shown[0]["id"] and shown[0]["stamp"]["corpus"] == corpus
    assert [c["id"] for c in logs()] == [shown[0]["id"], conversation["id"]]


def test_continue_and_cid_go_on_with_a_saved_conversation(corpus, home):
    run("chat", *BM25, "--corpus", corpus, "hello")
    first = logs()[0]["id"]
    run("chat", *BM25, "--corpus", corpus, "where is the station")
    assert run("chat", *BM25, "--corpus", corpus, "--continue", "what time is it").stdout == TIME + "\n"
    assert run("chat", *BM25, "--corpus", corpus, "--cid", first, "what time is it").exit_code == 0
    assert [c["exchanges"] for c in logs()] == [2, 2]
    shown = logs(first)
    assert shown["turns"][::2] == ["hello", "what time is it"] and shown["turns"][3] == TIME
    text = run("logs", first).stdout
    assert f"conversation {first}" in text and f"you> what time is it\nbot> {TIME}\n" in text
    assert f"{first}  " in run("logs").stdout


def test_no_log_saves_nothing(corpus, home):
    assert run("chat", *BM25, "--corpus", corpus, "--no-log", "hello").exit_code == 0
    assert not (home / "logs.db").exists()
    assert run("logs").stdout == "" and logs() == [] and not (home / "logs.db").exists()


def test_piped_lines_are_one_conversation(corpus, home):
    result = run("chat", *BM25, "--corpus", corpus, input="where is the station\n\nwhat time is it\n")
    assert (result.exit_code, result.stdout) == (0, f"{STATION}\n\n{TIME}\n")
    [conversation] = logs()
    assert logs(conversation["id"])["turns"] == ["where is the station", STATION, "what time is it", TIME]


def test_turns_in_a_language_the_shipped_model_does_not_read_get_one_warning_line_per_run(home):
    chinese = "你好，请问火车站在哪里？我找不到路了。"
    result = run("chat", "--no-log", "-f", "json", chinese)
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["result"]["language"] == "zh"
    assert result.stderr == ("nlp-tool: warning: 1 of 1 inputs are in a language the model does not read (1 in zh):"
                             " their results are unreliable; pass --model with a chat model for that language\n")
    result = run("chat", "--no-log", input=f"Hello, how are you today?\n{chinese}\n\n{chinese}\n")
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 4
    assert result.stderr.startswith("nlp-tool: warning: 2 of 3 inputs are in a language the model does not read"
                                    " (2 in zh)")
    assert run("chat", "--no-log", "Hello, how are you today?").stderr == ""


def test_jsonl_batch_writes_the_next_turn_of_each_record(corpus, home):
    records = '{"id": "a", "turns": ["where is the station"]}\n{"id": "b", "turns": "oops"}\n' \
              '{"turns": ["Hi", "Hello", "what time is it"]}\n'
    result = run("chat", *BM25, "--corpus", corpus, "-i", "jsonl", "-f", "jsonl", "--on-error", "skip", input=records)
    assert result.exit_code == 1 and "1 input(s) failed; the results of the others were written" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["a", "b", "-:3"]
    assert lines[0]["result"]["text"] == STATION and lines[2]["result"]["text"] == TIME
    assert "'turns'" in lines[1]["error"] and "nlp-tool: error: input 'b': " in result.stderr
    # Batches of any size give the same results.
    one_by_one = run("chat", *BM25, "--corpus", corpus, "-i", "jsonl", "-f", "jsonl", "--on-error", "skip",
                     "--batch-size", "1", input=records)
    assert one_by_one.stdout == result.stdout
    stopped = run("chat", *BM25, "--corpus", corpus, "-i", "jsonl", input=records)
    assert stopped.exit_code == 1 and stopped.stdout == f"==> a <==\n{STATION}\n"
    assert not (home / "logs.db").exists()  # batch runs save nothing


def test_jsonl_batch_in_worker_processes_writes_what_one_process_writes(corpus, home):
    records = "".join(json.dumps({"id": str(i), "turns": ["where is the station" if i % 2 else "what time is it"]})
                      + "\n" for i in range(7)) + '{"id": "bad", "turns": "oops"}\n'
    args = ["chat", *BM25, "--corpus", corpus, "-i", "jsonl", "-f", "jsonl", "--on-error", "skip"]
    serial, parallel = run(*args, input=records), run(*args, "--workers", "2", "--chunk-size", "2", input=records)
    assert serial.exit_code == parallel.exit_code == 1
    assert parallel.stdout == serial.stdout and parallel.stderr == serial.stderr
    assert len(parallel.stdout.splitlines()) == 8
    conversation = run("chat", *BM25, "--corpus", corpus, "--workers", "2", "hi")
    assert conversation.exit_code == 2 and "--workers runs the records of -i jsonl" in conversation.stderr


def test_jsonl_batch_into_part_files_on_a_cluster_is_what_one_process_writes(corpus, tmp_path, home):
    records = tmp_path / "in.jsonl"
    records.write_text("".join(json.dumps({"id": str(i), "turns": ["where is the station" if i % 2 else
                                                                   "what time is it"]}) + "\n" for i in range(7)))
    args = ["chat", *BM25, "--corpus", corpus, "-i", "jsonl", str(records), "-f", "jsonl", "--chunk-size", "3"]
    serial = run(*args)
    sharded = run(*args, "--cluster", "local:2", "-o", str(tmp_path / "out") + "/")
    assert serial.exit_code == sharded.exit_code == 0, sharded.output
    parts = sorted((tmp_path / "out").glob("part-*.jsonl"))
    assert len(parts) == 3 and "".join(part.read_text() for part in parts) == serial.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["run"]["task"] == "chat" and manifest["records"] == 7
    again = run(*args, "--workers", "2", "-o", str(tmp_path / "out") + "/")
    assert again.exit_code == 0 and "3 part(s) written by an earlier run are kept" in again.stderr
    other = run(*args[:-2], "--chunk-size", "2", "-o", str(tmp_path / "out") + "/")
    assert other.exit_code == 2 and "another command (chunk size: 3 then, 2 now)" in other.stderr
    from_stdin = run(*[a for a in args if a != str(records)], "-o", str(tmp_path / "out2") + "/",
                     input=records.read_text())
    assert from_stdin.exit_code == 2 and "give files, not stdin" in from_stdin.output
    one_shot = run("chat", *BM25, "--corpus", corpus, "--no-log", "-o", str(tmp_path / "out3") + "/", "hi")
    assert one_shot.exit_code == 2 and "a one-shot reply goes to a FILE" in one_shot.output
    both = run(*args, "--workers", "2", "--cluster", "local:2")
    assert both.exit_code == 2 and "not both" in both.output
    bad = run(*args, "--cluster", "local:two")
    assert bad.exit_code == 2 and "a local cluster is local:N" in bad.output and "Traceback" not in bad.output


def test_jsonl_batch_to_a_file(corpus, tmp_path, home):
    records = tmp_path / "in.jsonl"
    records.write_text('{"id": "a", "turns": ["what time is it"]}\n', encoding="utf-8")
    out = tmp_path / "out.tsv"
    written = run("chat", *BM25, "--corpus", corpus, "-i", "jsonl", str(records), "-f", "tsv", "-o", str(out))
    assert written.exit_code == 0
    assert out.read_text().splitlines()[1].startswith(f"a\t{TIME}\tcorpus\t")


@pytest.mark.parametrize("args,input,code,message", [
    (["   "], None, 2, "the message is empty"),
    (["x" * 1_000_000], None, 2, "turn 1 has 1000000 characters, more than the 20000 a turn may have; shorten it"),
    ([], "hello\n" + "x" * 1_000_000 + "\n", 2, "line 2: turn 3 has 1000000 characters"),
    (["--continue", "--cid", "x", "hi"], None, 2, "give --continue or --cid ID, not both"),
    (["--cid", "nope", "hi"], None, 2, "no conversation 'nope' is saved; `nlp-tool logs` lists them"),
    (["--continue", "hi"], None, 2, "no conversation is saved yet to continue"),
    (["-f", "json"], "hi\n", 2, "one reply per line is plain text"),
    (["--engine", "psychic", "hi"], None, 2, "task 'chat' has no engine 'psychic'"),
    (["--scorer", "tfidf", "hi"], None, 2, "'tfidf' is not one of 'encoder', 'bm25'"),
])
def test_bad_input_gets_one_clear_message(corpus, home, args, input, code, message):
    result = run("chat", *BM25, "--corpus", corpus, *args, input=input)
    assert result.exit_code == code and message in result.stderr, (result.exit_code, result.stderr)
    # One line says it (a usage error comes after click's usage lines), no traceback.
    assert sum(message in line for line in result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("name,content,message", [
    ("corpus.jsonl.gz", b"not gzip", "corpus.jsonl.gz: not a readable gzip file"),
    ("corpus.jsonl", b'{"turns": ["caf\xe9", "ok"]}\n', "convert the file or give its encoding"),
    ("missing.jsonl", None, "missing.jsonl: no such corpus file"),
])
def test_an_unreadable_corpus_ends_the_command_before_any_turn(tmp_path, home, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = run("chat", *BM25, "--corpus", str(path), "hello")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("nlp-tool: error: ") and message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert run("chat", *BM25, "hello").stderr.startswith("nlp-tool: error: engine chat:retrieval with --scorer bm25"
                                                         " needs --corpus FILE")


def test_m_is_the_model_as_on_every_verb(tmp_path, home):
    missing = run("chat", "-m", str(tmp_path / "none.nlpt"), "Hi, can you help me?")
    assert missing.exit_code == 2
    assert missing.stderr == f"nlp-tool: error: {tmp_path / 'none.nlpt'}: no such model file\n"


def test_a_corrupt_database_is_said_and_never_overwritten(corpus, home):
    home.mkdir()
    damaged = b"not a database " * 1000
    (home / "logs.db").write_bytes(damaged)
    for args in (["chat", *BM25, "--corpus", corpus, "hello"], ["logs"],
                 ["chat", *BM25, "--corpus", corpus, "--continue", "hi"]):
        result = run(*args)
        assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1, result.stderr
        assert "cannot use the conversation database" in result.stderr and "--no-log" in result.stderr
    assert (home / "logs.db").read_bytes() == damaged
    assert run("chat", *BM25, "--corpus", corpus, "--no-log", "where is the station").stdout == STATION + "\n"


def test_help_imports_neither_numpy_nor_sqlite():
    import subprocess
    import sys

    code = ("import sys\nfrom toolkit.cli import cli\n"
            "for args in (['chat', '--help'], ['logs', '--help']):\n"
            "    try:\n        cli(args)\n    except SystemExit as e:\n        assert not e.code, e.code\n"
            "assert not {'numpy', 'sqlite3', 'scipy'} & set(sys.modules), 'imported at start-up'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_docs_answers_are_quoted_on_the_command_line(corpus, home, tmp_path):
    doc = tmp_path / "acme.txt"
    doc.write_text("Acme was founded in 1921 by Jane Doe in Leeds. Its head office moved to York in 1960.\n",
                   encoding="utf-8")
    result = run("chat", *BM25, "--corpus", corpus, "--docs", str(doc), "--no-log",
                 "When did the head office move to York?")
    assert result.exit_code == 0, result.output
    assert result.stdout == f'1960 — "Its head office moved to York in 1960." ({doc})\n'
    missing = run("chat", *BM25, "--corpus", corpus, "--docs", str(tmp_path / "nope.txt"), "--no-log", "hello")
    assert missing.exit_code != 0 and "nope.txt: no such document" in missing.stderr
