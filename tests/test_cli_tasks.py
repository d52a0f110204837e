"""The task verbs' I/O contract, `tasks`, `plugins`, `install`, and start-up without numpy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import toolkit
from toolkit import hookimpl
from toolkit.cli import make_cli
from toolkit.engine import Engine, Option
from toolkit.plugins import BUILTIN_PLUGINS, PluginInfo, load_registry

# The listings below are checked against one built-in plugin, so that new built-ins do not change them.
SUMMARIZATION_ONLY = ("toolkit_plugins.summarization",)

DOC = "The council met on Monday. It approved the plan. Work starts in May. Nobody objected."


class Picky(Engine):
    """Fails on inputs containing BOOM: stands in for an engine hitting bad input."""

    task = "summarize"
    name = "picky"
    description = "Lead summary that refuses BOOM."
    version = "0.1"
    options = {
        "shout": Option(bool, False, "Upper-case the summary."),
        "suffix": Option(str, "", "Appended to the summary.", aliases=("--end-with",)),
    }

    def run(self, inputs):
        if any("BOOM" in x for x in inputs):
            raise ValueError("cannot summarize BOOM")
        results = []
        for text in inputs:
            first = text.split(".")[0]
            summary = first + self.settings["suffix"]
            results.append({"summary": summary.upper() if self.settings["shout"] else summary,
                            "sentences": [{"text": first, "start": 0, "end": len(first)}]})
        return results


class Asker(Engine):
    task = "ask"
    name = "echo"
    description = "Echoes question and context."
    version = "1"
    inputs = "question+context"
    options = {"top_k": Option(int, 1, "Answers to return.", minimum=1, maximum=5)}

    def run(self, inputs):
        return [{"answer": x["context"][: len(x["question"])], "k": self.settings["top_k"]} for x in inputs]


class Interrupted(Engine):
    """Raises KeyboardInterrupt from run, as a Ctrl-C during a long batch does."""

    task = "summarize"
    name = "ctrl-c"
    description = "Interrupted mid-run."
    version = "0"

    def run(self, inputs):
        raise KeyboardInterrupt


class Lossy(Engine):
    """Breaks the contract: drops results."""

    task = "summarize"
    name = "lossy"
    description = "Returns no results."
    version = "0"

    def run(self, inputs):
        return []


class Odd(Engine):
    """Results JSON cannot hold as they are: numpy numbers and NaN (fine once converted), a set (not fine).

    A task of its own, which declares no contract: a summarize engine must answer summaries."""

    task = "odd"
    name = "odd"
    description = "Numpy, NaN and set results."
    version = "0"

    def run(self, inputs):
        import numpy as np

        return [{"score": np.float32(0.5), "ids": np.arange(2), "nan": float("nan")} if "set" not in x
                else {"tags": {"a"}} for x in inputs]

    def format_text(self, result):
        if "tags" in result:
            raise RuntimeError("cannot show tags")
        return str(result["score"])


class TestPlugin:
    @hookimpl
    def register_engines(self, register):
        register("summarize", "picky", Picky, Picky.description)
        register("summarize", "ctrl-c", Interrupted, Interrupted.description)
        register("summarize", "lossy", Lossy, Lossy.description)
        register("odd", "odd", Odd, Odd.description)
        register("ask", "echo", Asker, Asker.description)


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Invoke a fresh nlp-tool group (built-ins + TestPlugin) in process, from tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path / "home"))
    registry = load_registry(SUMMARIZATION_ONLY, entry_points=[])
    registry.add_plugin(TestPlugin(), PluginInfo("test-plugin", "9.9", "package", package="test-plugin"))
    cli = make_cli(lambda: registry)

    def invoke(*args, input=None):
        return CliRunner().invoke(cli, list(args), input=input)

    return invoke


def test_summarize_file(run, tmp_path):
    (tmp_path / "a.txt").write_text(DOC)
    result = run("summarize", "a.txt", "--sentences", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout == "The council met on Monday. It approved the plan.\n"


def test_summarize_stdin_and_dash(run):
    for args in ([], ["-"]):
        result = run("summarize", "-e", "centrality", "--sentences", "1", *args, input=DOC)
        assert (result.exit_code, result.stdout) == (0, "The council met on Monday.\n")


def test_glob_and_several_files_get_headers(run, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.txt").write_text("X one. X two.")
    (tmp_path / "d" / "y.txt").write_text("Y one. Y two.")
    result = run("summarize", "d/*.txt", "--sentences", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "==> d/x.txt <==\nX one.\n\n==> d/y.txt <==\nY one.\n"


def test_inline_text_json_output_has_id_result_and_stamp(run):
    result = run("summarize", "--engine", "lead", "--text", DOC, "--sentences", "1", "--format", "json")
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.stdout)
    assert record["id"] == "text"
    assert record["result"]["summary"] == "The council met on Monday."
    assert record["result"]["sentences"][0]["score"] == 1.0
    assert record["stamp"]["tool_version"] == toolkit.__version__
    assert record["stamp"]["engine"] == "summarize:lead" and record["stamp"]["plugin"] == "summarization"


def test_jsonl_input_keeps_ids(run, tmp_path):
    lines = [{"doc": "A one. A two.", "key": "a"}, {"doc": "B one. B two."}]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    result = run("summarize", "in.jsonl", "-e", "centrality", "-i", "jsonl", "--text-field", "doc", "--id-field", "key",
                 "--sentences", "1", "-f", "jsonl")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["id"], r["result"]["summary"]) for r in records] == [("a", "A one."), ("in.jsonl:2", "B one.")]


def test_lines_input_tsv_output(run, tmp_path):
    (tmp_path / "in.txt").write_text("First\tline. Two.\n\nSecond line. Two.\n")
    result = run("summarize", "in.txt", "-e", "centrality", "--input-format", "lines", "--sentences", "1",
                 "--format", "tsv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["id\tsummary", "in.txt:1\tFirst\\tline.", "in.txt:3\tSecond line."]


def test_output_file_is_written_atomically(run, tmp_path):
    (tmp_path / "out.txt").write_text("old")
    result = run("summarize", "-t", "One. Two.", "-t", "BOOM. Two.", "-e", "picky", "-o", "out.txt")
    assert result.exit_code == 1
    assert (tmp_path / "out.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["out.txt"]
    result = run("summarize", "-t", "One. Two.", "-e", "centrality", "-o", "out.txt", "--sentences", "1")
    assert result.exit_code == 0 and result.stdout == ""
    assert (tmp_path / "out.txt").read_text() == "One.\n"


def test_ctrl_c_leaves_no_partial_output(run, tmp_path):
    (tmp_path / "out.txt").write_text("old")
    result = run("summarize", "-t", "One.", "-e", "ctrl-c", "-o", "out.txt")
    assert (result.exit_code, result.stderr) == (130, "nlp-tool: interrupted\n")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["out.txt"]
    assert (tmp_path / "out.txt").read_text() == "old"


def test_output_replaces_a_symlinks_target_and_writes_a_fifo_in_place_keeping_file_modes(run, tmp_path):
    import stat
    import threading

    (tmp_path / "target.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to("target.txt")
    assert run("summarize", "-t", DOC, "-e", "lead", "--sentences", "1", "-o", "link.txt").exit_code == 0
    assert (tmp_path / "link.txt").is_symlink() and (tmp_path / "target.txt").read_text() == "The council met on Monday.\n"

    os.mkfifo(tmp_path / "pipe")
    received = []
    reader = threading.Thread(target=lambda: received.append((tmp_path / "pipe").read_text()))
    reader.start()
    assert run("summarize", "-t", DOC, "-e", "lead", "--sentences", "1", "-o", "pipe").exit_code == 0
    reader.join(10)
    assert received == ["The council met on Monday.\n"] and stat.S_ISFIFO((tmp_path / "pipe").stat().st_mode)

    (tmp_path / "shared.txt").write_text("old")
    (tmp_path / "shared.txt").chmod(0o640)
    assert run("summarize", "-t", DOC, "-e", "lead", "-o", "shared.txt").exit_code == 0
    assert stat.S_IMODE((tmp_path / "shared.txt").stat().st_mode) == 0o640, "an existing file keeps its mode"
    assert run("summarize", "-t", DOC, "-e", "lead", "-o", "new.txt").exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o666 & ~umask, "a new file as the umask allows"


def test_sigterm_leaves_no_partial_output(tmp_path):
    import signal
    import time

    # The verb waits on stdin, which stays open, with its temporary output file already made.
    proc = subprocess.Popen([sys.executable, "-c", "from toolkit.cli import cli; cli()", "summarize", "-e", "lead",
                             "-o", "out.txt"],
                            cwd=tmp_path, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 130 and proc.stderr.read().decode() == "nlp-tool: interrupted\n"  # as after Ctrl-C
    finally:
        proc.kill()
        proc.stdin.close()
        proc.stderr.close()
    assert list(tmp_path.iterdir()) == []


def test_json_output_stays_valid_when_a_failing_input_stops_the_run(run):
    result = run("summarize", "-e", "picky", "-t", "Good one. x", "-t", "BOOM here.", "-t", "Fine. y", "-f", "json")
    assert result.exit_code == 1
    records = json.loads(result.stdout)
    assert [r["id"] for r in records] == ["text:1", "text:2"] and "BOOM" in records[1]["error"]


def test_lines_and_jsonl_inputs_split_only_at_line_ends(run, tmp_path):
    # U+2028, U+0085 and a form feed are not line ends for text editors, and JSON strings may hold them raw.
    odd = "One\u2028two\x85three\x0cfour."
    (tmp_path / "in.jsonl").write_text(json.dumps({"text": odd}, ensure_ascii=False) + "\r\n"
                                       + json.dumps({"text": "Next."}) + "\n", encoding="utf-8")
    result = run("summarize", "in.jsonl", "-i", "jsonl", "-e", "lead", "-f", "jsonl")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]  # escaped in the output: one line each
    assert [r["id"] for r in records] == ["in.jsonl:1", "in.jsonl:2"] and records[0]["result"]["summary"] == odd
    (tmp_path / "in.txt").write_text(odd + "\n\nLast one.\r\n", encoding="utf-8")
    result = run("summarize", "in.txt", "-i", "lines", "-e", "lead", "-f", "tsv")
    assert [row.split("\t")[0] for row in result.stdout.split("\n")] == ["id", "in.txt:1", "in.txt:3", ""]


def test_encoding_option_reads_other_encodings_and_the_error_names_it(run, tmp_path):
    (tmp_path / "fr.txt").write_bytes("Le café ouvre. Il ferme tard.".encode("latin-1"))
    result = run("summarize", "fr.txt", "-e", "lead", "--sentences", "1")
    assert result.exit_code == 1
    assert ("cannot read fr.txt: line 1: not valid utf-8 (byte 0xe9 at offset 6); give the file's encoding with"
            " --encoding") in result.stderr
    result = run("summarize", "fr.txt", "-e", "lead", "--sentences", "1", "--encoding", "latin-1")
    assert (result.exit_code, result.stdout) == (0, "Le café ouvre.\n")
    result = run("summarize", "fr.txt", "--encoding", "klingon")
    assert result.exit_code == 2 and "unknown encoding 'klingon'" in result.stderr
    (tmp_path / "ctx.txt").write_bytes("Bob runs the café.".encode("latin-1"))
    result = run("ask", "-c", "ctx.txt", "--encoding", "latin-1", "Who", "-f", "jsonl")
    assert result.exit_code == 0 and json.loads(result.stdout)["result"]["answer"] == "Bob"


def test_jsonl_for_a_question_engine_names_the_missing_field(run, tmp_path):
    (tmp_path / "q.jsonl").write_text('{"context": "Bob is here.", "text": "x"}\n')
    result = run("ask", "q.jsonl", "-i", "jsonl")
    assert result.exit_code == 1
    assert "input 'q.jsonl:1': no 'question' field (records need 'question' and 'context'" in result.stderr


def test_results_json_cannot_hold_fail_their_input_and_numpy_and_nan_become_json(run):
    result = run("odd", "-t", "fine", "-t", "a set", "-f", "jsonl", "--on-error", "skip")
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["result"] == {"score": 0.5, "ids": [0, 1], "nan": None}
    assert rows[1]["error"] == "its result cannot be written: TypeError: a set is not a JSON value"
    assert "Traceback" not in result.output
    result = run("odd", "-t", "fine", "-t", "a set")
    assert result.exit_code == 1 and result.stdout == "==> text:1 <==\n0.5\n"
    assert "input 'text:2': its result cannot be written: RuntimeError: cannot show tags" in result.stderr


def test_unwritable_output_is_one_line_runtime_error(run):
    result = run("summarize", "-t", "One.", "-o", "no/such/dir/out.txt")
    assert result.exit_code == 1
    assert result.stderr == "nlp-tool: error: cannot write no/such/dir/out.txt: No such file or directory\n"


def test_input_count_is_drawn_only_when_enabled_and_blanked_at_the_end():
    import io
    import re

    from toolkit.progress import ProgressBar

    for enabled in (False, True):
        stream = io.StringIO()
        progress = ProgressBar(None, "nlp-tool:", unit="inputs", stream=stream, enabled=enabled, leave=False)
        progress.update(32)
        progress.update(5)  # within a tenth of a second: not redrawn
        progress.close()
        drawn = re.fullmatch(r"\r(nlp-tool: 32 inputs, [\d,]+/s)\x1b\[K\r( +)\r", stream.getvalue())
        assert (drawn is not None) == enabled, stream.getvalue()
        assert not drawn or len(drawn[1]) == len(drawn[2])


def test_elapsed_ticker_redraws_seconds_and_blanks_its_line_only_when_enabled():
    import io
    import re
    import threading
    import time

    from toolkit.progress import ElapsedTicker

    for enabled in (False, True):
        stream = io.StringIO()
        threads = threading.active_count()
        with ElapsedTicker("nlp-tool: evaluating", stream=stream, enabled=enabled, interval=0.01):
            assert threading.active_count() == threads + enabled
            time.sleep(0.1)
        drawn = re.fullmatch(r"(\rnlp-tool: evaluating \d+ s\x1b\[K)+\r( +)\r", stream.getvalue())
        assert (drawn is not None) == enabled, stream.getvalue()
        assert not drawn or len(drawn[2]) == len("nlp-tool: evaluating 0 s")


def test_on_error_skip_keeps_the_others_and_reports_the_id(run):
    result = run("summarize", "-e", "picky", "-t", "Good one. x", "-t", "BOOM here.", "-t", "Fine too. y",
                 "--on-error", "skip", "-f", "jsonl")
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == ["text:1", "text:2", "text:3"]
    assert records[1]["error"] == "ValueError: cannot summarize BOOM"
    assert records[0]["result"]["summary"] == "Good one" and records[2]["result"]["summary"] == "Fine too"
    assert "nlp-tool: error: input 'text:2': ValueError: cannot summarize BOOM" in result.stderr
    assert "Traceback" not in result.output


def test_on_error_stop_stops_at_the_failing_input(run):
    result = run("summarize", "-e", "picky", "-t", "Good one.", "-t", "BOOM.", "-t", "Never.", "--batch-size", "1")
    assert result.exit_code == 1
    # Picky has no format_text, so text output is the result as JSON.
    assert result.stdout == ('==> text:1 <==\n{"summary": "Good one", "sentences": [{"text": "Good one", "start": 0,'
                             ' "end": 8}]}\n')
    assert result.stderr == "nlp-tool: error: input 'text:2': ValueError: cannot summarize BOOM\n"


def test_engine_breaking_the_result_count_is_a_runtime_error(run):
    result = run("summarize", "-e", "lossy", "-t", "One.", "-t", "Two.", "--on-error", "skip")
    assert result.exit_code == 1
    assert "input 'text:1': RuntimeError: engine summarize:lossy returned 0 results for 1 inputs" in result.stderr
    assert "2 input(s) failed" in result.stderr


def test_debug_shows_the_traceback(run):
    result = run("summarize", "-e", "picky", "-t", "BOOM.", "--debug")
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError)


def test_unreadable_input_is_reported_with_its_id(run, tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfa not utf-8")
    (tmp_path / "good.txt").write_text("Fine. Yes.")
    result = run("summarize", "bad.txt", "good.txt", "-e", "centrality", "--on-error", "skip", "--sentences", "1")
    assert result.exit_code == 1
    assert "input 'bad.txt': cannot read bad.txt" in result.stderr
    assert result.stdout == "==> good.txt <==\nFine.\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope.txt"], "no such file: nope.txt"),
        (["*.none"], "no file matches *.none"),
        (["-t", "x", "--sentences", "-1"], "Invalid value for '--sentences': -1 is not in the range x>=0."),
        (["-t", "x", "--sentences", "two"], "'two' is not a valid integer"),
        (["-t", "x", "--engine", "nope"], "'nope' is not one of"),
        (["-t", "x", "--shout"], "engine 'trained' has no option --shout (it belongs to: picky)"),
        (["-t", "x", "--top-k", "2"], "No such option '--top-k'"),  # no summarize engine ranks
        (["-t", "x", "-e", "centrality", "--model", "m.npz"], "takes no model file (model=, --model)"),
        (["-t", "x", "--model", "m.npz"], "m.npz: no such model file"),
    ],
)
def test_usage_errors_exit_2_with_one_line(run, args, message):
    result = run("summarize", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_engine_options_are_flags_in_help(run):
    result = run("summarize", "--help")
    assert result.exit_code == 0
    for flag in ("--sentences", "--shout / --no-shout", "--engine", "--format", "--output", "--on-error"):
        assert flag in result.stdout
    assert "trained (default)" in result.stdout and "lead:" in result.stdout and "picky:" in result.stdout


def test_bool_option_and_engine_choice(run):
    result = run("summarize", "-t", "Hello there. Bye.", "--engine", "picky", "--shout")
    assert (result.exit_code, json.loads(result.stdout)["summary"]) == (0, "HELLO THERE")


def test_option_aliases_are_extra_flags(run):
    assert "--suffix, --end-with" in run("summarize", "--help").stdout
    for flag in ("--suffix", "--end-with"):
        result = run("summarize", "-t", "Hello there. Bye.", "--engine", "picky", flag, "!")
        assert (result.exit_code, json.loads(result.stdout)["summary"]) == (0, "Hello there!")


def test_option_bounds_are_click_ranges_whose_errors_name_the_flag(run):
    assert "--ratio FLOAT RANGE" in run("summarize", "--help").stdout
    # The summarize task shares --ratio with every engine of the task, the test plugin's too.
    help_text = " ".join(run("summarize", "--help").stdout.split())
    assert "(0: off). [default: 0.0] [0<=x<=1]" in help_text
    # An option some engines lack, or whose defaults differ, lists each engine's default.
    assert "Upper-case the summary. [default for engine picky: False]" in help_text
    result = run("summarize", "-t", "Hello there. Bye.", "--ratio", "1.5")
    assert result.exit_code == 2 and "Invalid value for '--ratio': 1.5 is not in the range 0<=x<=1." in result.stderr
    # The common --top-k flag takes the bounds of the engines that rank.
    result = run("ask", "-t", "abc", "--question", "q", "--top-k", "6")
    assert result.exit_code == 2 and "Invalid value for '--top-k': 6 is not in the range 1<=x<=5." in result.stderr
    # click's FloatRange lets NaN through; the engine's own check, the one API callers get, refuses it.
    result = run("summarize", "-t", "Hello there. Bye.", "--ratio", "nan")
    assert result.exit_code == 2 and "option 'ratio' must be between 0 and 1, not nan" in result.stderr
    listed = {(row["task"], row["engine"]): row for row in json.loads(run("tasks", "--json").stdout)}
    options = listed["ask", "echo"]["options"]
    assert options["top_k"] == {"type": "int", "default": 1, "help": "Answers to return.", "range": "between 1 and 5"}
    assert "range" not in listed["summarize", "picky"]["options"]["suffix"]


@pytest.mark.parametrize("options, expected", [
    ([Option(float, 0.5, "", minimum=0, maximum=1)], "0<=x<=1"),
    ([Option(int, 4, "", minimum=2, maximum=8, min_open=True, max_open=True)] * 2, "2<x<8"),
    ([Option(float, 0.1, "", minimum=0, max_open=True, maximum=1)], "0<=x<1"),
    ([Option(int, 1, "", minimum=1)], "x>=1"),
])
def test_a_bounded_option_is_an_int_or_float_range(options, expected):
    import click

    from toolkit.cli.options import click_type

    made = click_type(options)
    assert isinstance(made, click.IntRange if options[0].type is int else click.FloatRange)
    assert made._describe_range() == expected


def test_a_flag_whose_engines_accept_different_values_has_the_plain_type():
    import click

    from toolkit.cli.options import click_type

    assert click_type([Option(int, 1, "", minimum=1, maximum=5), Option(int, 1, "", minimum=1)]) == click.INT
    assert click_type([Option(str, "a", "", choices=("a", "b"))]).choices == ("a", "b")
    # click.Choice compares strings: other choices are the engine's to check.
    assert click_type([Option(int, 2, "", choices=(1, 2, 3))]) == click.INT
    assert click_type([Option(bool, False, "")]) == click.BOOL


def test_question_context_task_and_top_k(run, tmp_path):
    result = run("ask", "-t", "abcdef", "--question", "xyz", "--top-k", "3", "-f", "jsonl")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["result"] == {"answer": "abc", "k": 3}
    (tmp_path / "qa.jsonl").write_text(json.dumps({"id": 7, "question": "q", "context": "ctx"}) + "\n")
    result = run("ask", "qa.jsonl", "-i", "jsonl", "-f", "jsonl")
    assert json.loads(result.stdout)["id"] == "7" and json.loads(result.stdout)["result"]["answer"] == "c"
    assert run("ask", "-t", "abc").exit_code == 2


def test_a_blank_question_asked_of_files_is_a_usage_error(run, tmp_path):
    (tmp_path / "a.txt").write_text("Bob is here.")
    for args in (["--question", "  ", "a.txt"], ["-c", "a.txt", " "], ["-c", "a.txt", "--question", ""]):
        result = run("ask", *args)
        assert result.exit_code == 2 and "Error: a question is empty" in result.stderr, args


def test_explain(run):
    result = run("summarize", "--explain", "-e", "picky", "--shout", "-f", "json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert (info["plugin"], info["plugin_version"], info["engine"], info["options"]) == (
        "test-plugin", "9.9", "picky", {"sentences": 0, "ratio": 0.0, "words": 0, "shout": True, "suffix": ""}
    )
    text = run("summarize", "--explain").stdout
    assert "plugin:  summarization" in text and "engine:  trained" in text and "options: sentences=0" in text
    assert "model:   none (the engine needs no model)" in run("summarize", "--explain", "-e", "lead").stdout


def test_explain_says_when_a_model_is_needed(tmp_path, monkeypatch):
    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path))
    cli = make_cli(lambda: load_registry(("toolkit_plugins.classification",), entry_points=[]))
    result = CliRunner().invoke(cli, ["classify", "--explain", "-e", "ngram"])
    assert result.exit_code == 0, result.output
    assert ("model:   none: this engine needs --model FILE (train one with `nlp-tool train classify DATA"
            " --engine ngram`)") in result.stdout


def test_explain_checks_option_types(run):
    result = run("ask", "--explain", "--top-k", "2", "-f", "json")
    assert json.loads(result.stdout)["options"] == {"top_k": 2}


def test_task_named_like_a_command_gets_no_verb_and_a_warning(tmp_path, monkeypatch):
    class Plugins(Picky):
        task, name = "plugins", "x"

    class Clash:
        @hookimpl
        def register_engines(self, register):
            register("plugins", "x", Plugins, "clashes")

    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path))
    registry = load_registry(SUMMARIZATION_ONLY, entry_points=[])
    registry.add_plugin(Clash(), PluginInfo("clash", "1", "package"))
    result = CliRunner().invoke(make_cli(lambda: registry), ["plugins", "--json"])
    assert result.exit_code == 0
    assert "task 'plugins' (plugin clash) has the name of a command" in result.stderr
    assert [p["name"] for p in json.loads(result.stdout)] == ["summarization", "clash"]


def test_tasks_command(run):
    result = run("tasks")
    assert result.exit_code == 0
    assert "summarize  trained *" in result.stdout and "ask" in result.stdout
    rows = json.loads(run("tasks", "--json").stdout)
    default = next(r for r in rows if r["engine"] == "trained")
    lead = next(r for r in rows if r["engine"] == "lead")
    assert default["default"] and not lead["default"]
    assert lead["options"]["sentences"] == {
        "type": "int",
        "default": 0,
        "help": "Number of sentences in the summary (0: about the square root of the document's sentence count, 1 to 20).",
        "range": "at least 0",
    }


def test_plugins_command(run):
    plugins = json.loads(run("plugins", "--json").stdout)
    assert [(p["name"], p["source"], p["status"], p["tasks"]) for p in plugins] == [
        ("summarization", "built-in", "loaded", ["summarize:trained", "summarize:centrality", "summarize:lead"]),
        ("test-plugin", "package", "loaded", ["summarize:picky", "summarize:ctrl-c", "summarize:lossy", "odd:odd",
                                                 "ask:echo"]),
    ]
    table = run("plugins").stdout.splitlines()
    assert table[0].split() == ["NAME", "VERSION", "SOURCE", "TASKS", "STATUS"]


def test_plugins_disable_and_enable(run, tmp_path):
    result = run("plugins", "disable", "test-plugin")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "home" / "config.json").read_text())["disabled"] == ["test-plugin"]
    assert run("plugins", "enable", "test-plugin").exit_code == 0
    assert json.loads((tmp_path / "home" / "config.json").read_text())["disabled"] == []
    assert run("plugins", "disable", "summarization").exit_code == 2
    assert run("plugins", "disable", "nope").exit_code == 2


@pytest.mark.parametrize(
    "args, pip_args",
    [
        (["install", "nlp-tool-kw"], ["install", "nlp-tool-kw"]),
        (["install", "-U", "a", "b"], ["install", "--upgrade", "a", "b"]),
        (["install", "-e", "examples/kw"], ["install", "--editable", "examples/kw"]),
        (["uninstall", "nlp-tool-kw", "-y"], ["uninstall", "--yes", "nlp-tool-kw"]),
    ],
)
def test_install_and_uninstall_run_pip_of_this_interpreter(run, monkeypatch, args, pip_args):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert calls == [[sys.executable, "-m", "pip", *pip_args]]


def test_failing_pip_is_a_runtime_failure(run, monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1))
    result = run("install", "nope")
    assert result.exit_code == 1
    assert "nlp-tool: error: pip install failed with exit code 1" in result.stderr


# -- the real console script, with real (fake-installed) plugins --------------------------


def script() -> str:
    name = "nlp-tool.exe" if sys.platform == "win32" else "nlp-tool"
    return str(Path(sys.executable).parent / name)


@pytest.fixture
def site(tmp_path):
    """Environment for the script: a dist with a working plugin and one whose import fails."""
    for name, module, body in [
        ("nlp-tool-broken", "broken_plugin_mod", "raise ImportError('needs libfoo')\n"),
        ("nlp-tool-cmd", "cmd_plugin_mod", """
            import click
            from toolkit import hookimpl

            @hookimpl
            def register_commands(cli):
                @cli.command()
                def hello():
                    "Say hello."
                    click.echo("hello from a plugin")
        """),
    ]:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(body))
        info = tmp_path / f"{name.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[nlp_tool]\n{name} = {module}\n")
    env = {k: v for k, v in os.environ.items() if k != "NLP_TOOL_PLUGINS"}
    env.update(PYTHONPATH=str(tmp_path), NLP_TOOL_HOME=str(tmp_path / "home"))
    return env


def run_script(env, *args, input=None):
    return subprocess.run([script(), *args], input=input, capture_output=True, text=True, env=env, timeout=60)


def test_broken_plugin_does_not_break_the_tool(site):
    proc = run_script(site, "summarize", "-e", "centrality", "--sentences", "1", input=DOC)
    assert (proc.returncode, proc.stdout) == (0, "The council met on Monday.\n")
    assert proc.stderr == "nlp-tool: warning: plugin 'nlp-tool-broken' failed to load: ImportError: needs libfoo\n"
    plugins = {p["name"]: p for p in json.loads(run_script(site, "plugins", "--json").stdout)}
    assert plugins["nlp-tool-broken"]["status"] == "failed"
    assert plugins["nlp-tool-broken"]["error"] == "ImportError: needs libfoo"
    assert plugins["nlp-tool-cmd"]["status"] == "loaded"
    assert run_script(site, "hello").stdout == "hello from a plugin\n"


def test_disable_persists_across_runs_and_env_var_selects(site):
    assert run_script(site, "plugins", "disable", "nlp-tool-broken").returncode == 0
    proc = run_script(site, "summarize", "-t", DOC)
    assert proc.returncode == 0 and proc.stderr == ""
    site["NLP_TOOL_PLUGINS"] = ""
    proc = run_script(site, "plugins", "--json")
    statuses = {p["name"]: p["status"] for p in json.loads(proc.stdout)}
    builtins = {module.rsplit(".", 1)[-1]: "loaded" for module in BUILTIN_PLUGINS}
    assert statuses == {**builtins, "nlp-tool-broken": "disabled", "nlp-tool-cmd": "disabled"}


@pytest.mark.parametrize(
    "args",
    [["--help"], ["plugins"], ["tasks"], ["summarize", "--help"], ["summarize", "--explain"], ["train", "--help"],
     ["evaluate", "--help"]],
)
def test_startup_commands_do_not_import_numpy(site, args):
    code = (
        "import sys\n"
        "from toolkit.cli import cli\n"
        "try:\n"
        f"    cli({args!r})\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "assert 'numpy' not in sys.modules, 'numpy was imported'\n"
        "assert 'toolkit.kernels' not in sys.modules\n"
        "assert 'toolkit.distributed' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=site, timeout=60)
    assert proc.returncode == 0, proc.stderr
