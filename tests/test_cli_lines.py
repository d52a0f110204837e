"""Line in, line out: ``-i lines -f text`` prints exactly one output line per input line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from toolkit import hookimpl
from toolkit.cli import make_cli
from toolkit.engine import Engine
from toolkit.plugins import PluginInfo, load_registry


class Split(Engine):
    """Shows a "|" in its input as a line break, fails on BOOM, like an engine whose text has several lines."""

    task, name, version = "split", "bars", "1"

    def run(self, inputs):
        if any("BOOM" in x for x in inputs):
            raise ValueError("cannot split BOOM")
        return [{"parts": x.split("|")} for x in inputs]

    def format_text(self, result):
        return "\n".join(result["parts"])


class Plugin:
    @hookimpl
    def register_engines(self, register):
        register("split", "bars", Split, "Splits at bars.")


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path / "home"))
    registry = load_registry((), entry_points=[])
    registry.add_plugin(Plugin(), PluginInfo("split", "1", "package"))
    cli = make_cli(lambda: registry)

    def invoke(*args, input=None):
        return CliRunner().invoke(cli, list(args), input=input)

    return invoke


def test_one_output_line_per_input_line_without_headers_and_line_breaks_escaped(run, tmp_path):
    (tmp_path / "in.txt").write_text("one|two\nthree\nfour|five|six\r\nseven\n")
    result = run("split", "-i", "lines", "in.txt")
    assert result.exit_code == 0, result.output
    assert result.stdout == "one\\ntwo\nthree\nfour\\nfive\\nsix\nseven\n"
    assert len(result.stdout.splitlines()) == len((tmp_path / "in.txt").read_text().splitlines())


def test_blank_input_lines_give_blank_output_lines(run, tmp_path):
    (tmp_path / "in.txt").write_text("\na\n\n  \nb|c\n")
    result = run("split", "-i", "lines", "in.txt")
    assert (result.exit_code, result.stdout) == (0, "\na\n\n\nb\\nc\n")
    result = run("split", "-i", "lines", input="x\n\ny\n")  # stdin: ids -:1, -:3
    assert (result.exit_code, result.stdout) == (0, "x\n\ny\n")
    # Blank lines at the end of a file, and a file of blank lines only, keep their lines too.
    (tmp_path / "tail.txt").write_text("a\n\n\n")
    (tmp_path / "empty.txt").write_text("\n \n")
    result = run("split", "-i", "lines", "tail.txt", "empty.txt", "in.txt")
    joined = "".join((tmp_path / n).read_text() for n in ("tail.txt", "empty.txt", "in.txt"))
    assert result.exit_code == 0 and result.stdout == "a\n\n\n\n\n\na\n\n\nb\\nc\n"
    assert len(result.stdout.splitlines()) == len(joined.splitlines())
    # Other output formats have no line for a blank line.
    result = run("split", "-i", "lines", "tail.txt", "-f", "jsonl")
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["tail.txt:1"]


def test_a_failing_line_under_skip_is_an_empty_line_with_its_error_on_stderr(run, tmp_path):
    (tmp_path / "in.txt").write_text("a|b\nBOOM\nc\n")
    result = run("split", "-i", "lines", "in.txt", "--on-error", "skip")
    assert result.exit_code == 1
    assert result.stdout == "a\\nb\n\nc\n"
    assert "nlp-tool: error: input 'in.txt:2': ValueError: cannot split BOOM" in result.stderr
    assert "1 input(s) failed" in result.stderr
    result = run("split", "-i", "lines", "in.txt")
    assert (result.exit_code, result.stdout) == (1, "a\\nb\n\n")  # stopped at line 2


def test_several_line_files_and_texts_are_lines_in_order(run, tmp_path):
    (tmp_path / "a.txt").write_text("a1\n\na3\n")
    (tmp_path / "b.txt").write_text("b1|x\n")
    result = run("split", "-i", "lines", "-t", "t1", "-t", "t2", "a.txt", "b.txt")
    assert (result.exit_code, result.stdout) == (0, "t1\nt2\na1\n\na3\nb1\\nx\n")


def test_an_unreadable_file_is_one_empty_line(run, tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfa not utf-8")
    (tmp_path / "good.txt").write_text("g1\ng2\n")
    result = run("split", "-i", "lines", "bad.txt", "good.txt", "--on-error", "skip")
    assert result.exit_code == 1 and result.stdout == "\ng1\ng2\n"
    assert "input 'bad.txt': cannot read bad.txt" in result.stderr


def test_lines_before_a_bad_byte_come_out_and_the_rest_of_the_file_is_one_empty_line(run, tmp_path):
    (tmp_path / "late.txt").write_bytes(b"a1\na2\nbad \xff here\na4\n")
    (tmp_path / "good.txt").write_text("g1\n")
    result = run("split", "-i", "lines", "late.txt", "good.txt", "--on-error", "skip")
    assert result.exit_code == 1 and result.stdout == "a1\na2\n\ng1\n"
    assert ("input 'late.txt': cannot read late.txt: line 3: not valid utf-8 (byte 0xff at offset 10); give the"
            " file's encoding with --encoding") in result.stderr


def test_whole_files_keep_headers_and_other_formats_are_unchanged(run, tmp_path):
    (tmp_path / "a.txt").write_text("a|b")
    (tmp_path / "c.txt").write_text("c")
    result = run("split", "a.txt", "c.txt")
    assert result.stdout == "==> a.txt <==\na\nb\n\n==> c.txt <==\nc\n"
    (tmp_path / "in.txt").write_text("a|b\n\nc\n")
    result = run("split", "-i", "lines", "in.txt", "-f", "jsonl")
    assert [(r["id"], r["result"]["parts"]) for r in map(json.loads, result.stdout.splitlines())] == [
        ("in.txt:1", ["a", "b"]), ("in.txt:3", ["c"])]


def test_a_stream_runs_in_batches_that_start_small_so_its_first_results_come_at_once():
    from toolkit.cli.task_output import ramped

    assert [len(b) for b in ramped(iter(range(40)), 8)] == [1, 2, 4, 8, 8, 8, 8, 1]
    assert [len(b) for b in ramped(iter(range(3)), 1)] == [1, 1, 1]
    assert list(ramped(iter([]), 4)) == []
    assert [x for b in ramped(iter(range(40)), 8) for x in b] == list(range(40))
