"""Issue 18 as a user meets it: streamed inputs, damaged models, failing outputs, Ctrl-C and a closed pipe.

Each test runs the command as a user types it (in a process, where the
attempt needs a real pipe, stdin, ulimit or /dev/full) and checks that it
ends as docs/cli.md says: results as they come, constant memory, one
``nlp-tool:`` line and the documented exit code, no temporary file left.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from toolkit import hookimpl
from toolkit.cli import make_cli
from toolkit.engine import Engine
from toolkit.plugins import PluginInfo, load_registry

NLP_TOOL = [sys.executable, "-c", "from toolkit.cli import cli; cli()"]
PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
# A long line: the engines' cost is mostly per line, the reader's per byte.
LINE = " ".join(f"Sentence {i} of the review tells another part of the story." for i in range(130))


def start(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([*NLP_TOOL, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=cwd)


def memory(pid: int, key: str) -> int:
    """VmRSS or VmHWM (the peak) of a running process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(key)


def readline(stream, seconds: float) -> bytes:
    ready, _, _ = select.select([stream], [], [], seconds)
    assert ready, f"no output line within {seconds} s"
    return stream.readline()


def shell(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, line", [
    (["classify", "-i", "lines"], "Great film."),
    (["summarize", "-i", "jsonl", "-f", "jsonl"], json.dumps({"text": "Great film. It was long."})),
])
def test_the_first_results_come_out_while_the_input_is_still_open(args, line):
    proc = start(*args, "-q", "--batch-size", "4")
    try:
        proc.stdin.write((line + "\n").encode() * 4)
        proc.stdin.flush()
        assert readline(proc.stdout, 120).strip(), "the first batch's results come before the end of the input"
        proc.stdin.close()
        assert proc.wait(60) == 0, proc.stderr.read()
    finally:
        proc.kill()


@pytest.mark.parametrize("fmt, line", [("lines", LINE), ("jsonl", json.dumps({"text": LINE}))])
def test_a_30_mb_stream_takes_constant_memory(fmt, line):
    data = (line + "\n").encode()
    # Whole batches (1, 2, 4, 8, 16, then 32 records: 32k - 1 in all): the results of a last, partial batch
    # would wait for the end of the input.
    count = 30 * 2**20 // len(data) // 32 * 32 - 1
    proc = start("summarize", "-e", "lead", "-i", fmt, "-f", "jsonl", "-q", "--batch-size", "32")
    done = threading.Event()

    def feed():
        block = data * 64
        for _ in range(count // 64):
            proc.stdin.write(block)
        proc.stdin.write(data * (count % 64))
        proc.stdin.flush()
        done.wait(120)  # stdin stays open while the peak is read
        proc.stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        readline(proc.stdout, 60)
        started = memory(proc.pid, "VmRSS")
        for _ in range(count - 1):
            assert json.loads(proc.stdout.readline())["result"]["summary"]
        peak = memory(proc.pid, "VmHWM")
        done.set()
        assert proc.wait(60) == 0, proc.stderr.read()
    finally:
        done.set()
        proc.kill()
    # The whole input held at once costs several times its 30 MB (bytes, text, lines); a batch at a time, little.
    assert peak - started < 15 * 2**20, f"peak {peak / 2**20:.0f} MB, {started / 2**20:.0f} MB at the first result"


def test_a_closed_pipe_downstream_ends_quietly(tmp_path):
    # The attempt of issue 18, on 20 MB instead of 200: `head -1` goes away after one line.
    command = " ".join(map(shlex.quote, NLP_TOOL))
    result = shell(f"yes 'Great film.' | head -c 20000000 | {command} classify -i lines -q 2>err | head -1;"
                   " echo ${PIPESTATUS[2]}", tmp_path)
    assert result.stdout.splitlines()[0].startswith("pos\t")
    assert result.stdout.splitlines()[1] == "141" and (tmp_path / "err").read_text() == ""


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("in") / "in.txt"
    path.write_text("A good film. It was long.\n" * 3000)
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "json", "text"])
@pytest.mark.parametrize("on_error", ["stop", "skip"])
def test_a_full_device_stops_the_run_at_once_with_one_line(lines_file, fmt, on_error):
    result = subprocess.run([*NLP_TOOL, "summarize", "-e", "lead", "-i", "lines", "-f", fmt, str(lines_file),
                             "-o", "/dev/full", "--on-error", on_error], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr == "nlp-tool: error: cannot write /dev/full: No space left on device\n"


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_a_file_size_limit_leaves_no_temporary_file_and_the_old_output(tmp_path, lines_file, fmt):
    (tmp_path / "out").write_text("old")
    command = " ".join(map(shlex.quote, [*NLP_TOOL, "summarize", "-e", "lead", "-i", "lines", "-f", fmt,
                                         str(lines_file), "-o", "out", "--on-error", "skip"]))
    result = shell(f"ulimit -f 8; {command}", tmp_path)
    assert result.returncode == 1
    assert result.stderr == "nlp-tool: error: cannot write out: File too large\n"
    assert os.listdir(tmp_path) == ["out"] and (tmp_path / "out").read_text() == "old"


def test_stdout_on_a_full_device_is_one_line(tmp_path, lines_file):
    command = " ".join(map(shlex.quote, [*NLP_TOOL, "summarize", "-e", "lead", "-i", "lines", "-f", "jsonl",
                                         str(lines_file)]))
    result = shell(f"{command} > /dev/full", tmp_path)
    assert (result.returncode, result.stderr) == (1, "nlp-tool: error: cannot write stdout: No space left on device\n")


def altered(source: Path, target: Path) -> Path:
    """``source`` with one byte of its first array changed, as the attempts of issue 18 altered model files."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zout:
        done = False
        for info in zin.infolist():
            data = zin.read(info)
            if not done and info.filename.startswith("arrays/"):
                data, done = data[:-1] + bytes([data[-1] ^ 1]), True
            zout.writestr(info.filename, data)
    return target


@pytest.mark.parametrize("task, engine, model, args", [
    ("classify", "ensemble", "classification/models/imdb-sentiment.nlpt", []),
    ("qa", "reader", "qa/models/squad-reader.nlpt", ["--question", "Who was it?"]),
    ("translate", "transformer", "translation/models/en-de.nlpt", []),
    ("summarize", "trained", "summarization/models/news.nlpt", []),
])
@pytest.mark.parametrize("more", [[], ["--on-error", "skip"], ["-i", "lines", "--on-error", "skip"]])
def test_a_damaged_model_is_one_line_before_any_input(tmp_path, monkeypatch, task, engine, model, args, more):
    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path / "home"))
    path = altered(PLUGINS / model, tmp_path / "altered.nlpt")
    (tmp_path / "in.txt").write_text("Great film.\nIt was long.\n")
    result = CliRunner().invoke(make_cli(), [task, "--model", str(path), *args, *more, str(tmp_path / "in.txt")])
    assert result.exit_code == 1 and result.stdout == ""
    line = result.stderr.splitlines()
    assert len(line) == 1 and line[0].startswith(f"nlp-tool: error: cannot start engine {task}:{engine}: "
                                                 f"ModelFileError: {path}"), result.stderr


class Unloadable(Engine):
    """A plugin engine whose model fails with an error outside the toolkit's family when it is first loaded."""

    task, name, version = "tag", "unloadable", "1"

    def loaded_metadata(self):
        raise MemoryError("the model needs 6 GB")

    def run(self, inputs):
        return [{} for _ in inputs]


class Plugin:
    @hookimpl
    def register_engines(self, register):
        register("tag", "unloadable", Unloadable, "Fails to load.")


def test_any_error_of_a_starting_engine_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path / "home"))
    registry = load_registry((), entry_points=[])
    registry.add_plugin(Plugin(), PluginInfo("tag", "1", "package"))
    result = CliRunner().invoke(make_cli(lambda: registry), ["tag", "-t", "x", "-i", "lines", "--on-error", "skip"])
    assert (result.exit_code, result.stderr) == (
        1, "nlp-tool: error: cannot start engine tag:unloadable: MemoryError: the model needs 6 GB\n")


def test_ctrl_c_while_plugins_load_is_one_line_and_130():
    def interrupted():
        raise KeyboardInterrupt

    result = CliRunner().invoke(make_cli(interrupted), ["tasks"])
    assert (result.exit_code, result.stderr) == (130, "nlp-tool: interrupted\n")


def test_ctrl_c_during_the_start_up_imports_is_one_line_and_130(tmp_path):
    # A Ctrl-C that lands while the command imports its modules, made certain: the first import of a
    # dependency (pluggy, which the plugin system imports) is interrupted.
    (tmp_path / "pluggy").mkdir()
    (tmp_path / "pluggy" / "__init__.py").write_text("raise KeyboardInterrupt\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    started = time.monotonic()
    result = subprocess.run([*NLP_TOOL, "tasks"], capture_output=True, text=True, env=env, timeout=60)
    assert (result.returncode, result.stderr, result.stdout) == (130, "nlp-tool: interrupted\n", "")
    assert time.monotonic() - started < 30
