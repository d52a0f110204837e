"""-o DIR/ (issue 22 item 3): one part file per chunk, written atomically, and a manifest; the same command
run again after a crash finishes the run with no input lost or written twice; another command is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolkit import hookimpl
from toolkit.cli import make_cli
from toolkit.engine import Engine, Option
from toolkit.plugins import PluginInfo, load_registry

TESTS = Path(__file__).resolve().parent


class Slow(Engine):
    """Reverses its inputs, ``delay`` seconds each; fails on BOOM."""

    task, name, version = "reverse", "slow", "1"
    options = {"delay": Option(float, 0.0, "Seconds per input.")}

    def run(self, inputs):
        if any("BOOM" in x for x in inputs):
            raise ValueError("cannot reverse BOOM")
        time.sleep(self.settings["delay"] * len(inputs))
        return [{"text": x[::-1]} for x in inputs]

    def format_text(self, result):
        return result["text"]


class SlowPlugin:
    @hookimpl
    def register_engines(self, register):
        register("reverse", "slow", Slow, "Reverses, slowly.")


def slow_registry():
    registry = load_registry(entry_points=[])
    registry.add_plugin(SlowPlugin(), PluginInfo("reverse", "1", "package"))
    return registry


def main() -> None:
    """The command line with the reverse task, for tests that run it in a process of its own."""
    make_cli(slow_registry)(prog_name="nlp-tool")


@pytest.fixture
def run(cli_over):
    return cli_over(slow_registry())


def lines_file(path: Path, count: int, boom: int | None = None) -> Path:
    path.write_text("".join(("BOOM" if i == boom else f"line {i}") + "\n" for i in range(1, count + 1)))
    return path


def parts(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*"))


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


@pytest.mark.parametrize("fmt, suffix", [("jsonl", "jsonl"), ("text", "txt")])
def test_parts_joined_are_the_output_of_one_run_and_the_manifest_says_what_made_them(run, tmp_path, fmt, suffix):
    lines_file(tmp_path / "in.txt", 23)
    serial = run("reverse", "-i", "lines", "in.txt", "-f", fmt)
    result = run("reverse", "-i", "lines", "in.txt", "-f", fmt, "--chunk-size", "5", "-o", "out/")
    assert serial.exit_code == result.exit_code == 0 and result.stdout == ""
    found = parts(tmp_path / "out")
    assert [p.name for p in found] == [f"part-{i:05d}.{suffix}" for i in range(5)]
    assert "".join(p.read_text() for p in found) == serial.stdout
    written = manifest(tmp_path / "out")
    assert written["complete"] and written["total_parts"] == 5 and written["records"] == 23
    assert written["run"]["chunk_size"] == 5 and written["run"]["stamp"]["engine"] == "reverse:slow"
    assert written["run"]["inputs"] == [{"path": "in.txt", "size": (tmp_path / "in.txt").stat().st_size,
                                         "mtime_ns": (tmp_path / "in.txt").stat().st_mtime_ns}]
    assert sorted(os.listdir(tmp_path / "out")) == [".lock", "manifest.json", *(p.name for p in found)]


def test_json_parts_are_arrays_of_their_chunk(run, tmp_path):
    lines_file(tmp_path / "in.txt", 7)
    serial = run("reverse", "-i", "lines", "in.txt", "-f", "json")
    result = run("reverse", "-i", "lines", "in.txt", "-f", "json", "--chunk-size", "3", "-o", "out/",
                 "--workers", "2")
    assert result.exit_code == 0
    arrays = [json.loads(p.read_text()) for p in parts(tmp_path / "out")]
    assert [len(a) for a in arrays] == [3, 3, 1] and sum(arrays, []) == json.loads(serial.stdout)


@pytest.mark.parametrize("where", [["--workers", "1"], ["--workers", "2"], ["--cluster", "local:2"]])
def test_a_run_killed_half_way_is_finished_by_the_same_command(tmp_path, where):
    lines_file(tmp_path / "in.txt", 300)
    args = ["reverse", "-i", "lines", "in.txt", "-f", "jsonl", "--chunk-size", "10", "--delay", "0.004",
            "-o", "out/", *where]
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_sharded_output as t; t.main()"
    env = {**os.environ, "NLP_TOOL_HOME": str(tmp_path / "home")}
    process = subprocess.Popen([sys.executable, "-c", code, *args], cwd=tmp_path, env=env,
                               stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len((manifest_or_none(tmp_path / "out") or {}).get("parts", {})) < 4:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)  # the run and its workers, as a crash or a lost machine ends them
    process.wait()
    killed = manifest(tmp_path / "out")
    assert not killed["complete"] and 4 <= len(killed["parts"]) < 30
    rerun = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stderr == f"nlp-tool: out/: {len(killed['parts'])} part(s) written by an earlier run are kept\n"
    done = manifest(tmp_path / "out")
    assert done["complete"] and done["total_parts"] == 30 and done["records"] == 300
    records = [json.loads(line) for p in parts(tmp_path / "out") for line in p.read_text().splitlines()]
    assert [r["id"] for r in records] == [f"in.txt:{i}" for i in range(1, 301)]  # none lost, none twice
    assert [r["result"]["text"] for r in records] == [f"line {i}"[::-1] for i in range(1, 301)]
    assert not [name for name in os.listdir(tmp_path / "out") if name.endswith(".tmp")]


def manifest_or_none(folder: Path) -> dict | None:
    try:
        return manifest(folder)
    except (FileNotFoundError, ValueError):
        return None


def test_a_failed_input_is_reported_by_the_run_that_ran_it_only(run, tmp_path):
    lines_file(tmp_path / "in.txt", 12, boom=7)
    args = ["reverse", "-i", "lines", "in.txt", "-f", "jsonl", "--on-error", "skip", "--chunk-size", "4",
            "-o", "out/"]
    first = run(*args, "--workers", "2")
    assert first.exit_code == 1 and first.stderr.splitlines() == [
        "nlp-tool: error: input 'in.txt:7': ValueError: cannot reverse BOOM",
        "nlp-tool: error: 1 input(s) failed; the results of the others were written"]
    again = run(*args)
    assert again.exit_code == 1 and "in.txt:7" not in again.stderr
    assert "1 input(s) failed" in again.stderr and manifest(tmp_path / "out")["failed"] == 1
    errors = [json.loads(line) for p in parts(tmp_path / "out") for line in p.read_text().splitlines()]
    assert [r["id"] for r in errors if "error" in r] == ["in.txt:7"] and len(errors) == 12


def test_under_on_error_stop_the_chunk_of_the_failure_is_not_written_and_the_rest_resumes(run, tmp_path):
    lines_file(tmp_path / "in.txt", 12, boom=7)
    args = ["reverse", "-i", "lines", "in.txt", "--chunk-size", "4", "-o", "out/"]
    stopped = run(*args)
    assert stopped.exit_code == 1 and "input 'in.txt:7'" in stopped.stderr
    assert [p.name for p in parts(tmp_path / "out")] == ["part-00000.txt"]
    assert not manifest(tmp_path / "out")["complete"]
    finished = run(*args, "--on-error", "skip")  # not part of what makes the results: the same run
    assert finished.exit_code == 1 and manifest(tmp_path / "out")["complete"]
    assert len(parts(tmp_path / "out")) == 3


def test_another_command_into_the_directory_is_refused(run, tmp_path):
    lines_file(tmp_path / "in.txt", 5)
    assert run("reverse", "-i", "lines", "in.txt", "-o", "out/").exit_code == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    other_option = run("reverse", "-i", "lines", "in.txt", "-o", "out", "--delay", "0.001")
    assert other_option.exit_code == 2
    assert "out holds the output of another command (options: {} then, {'delay': 0.001} now)" in other_option.stderr
    other_format = run("reverse", "-i", "lines", "in.txt", "-o", "out/", "-f", "jsonl")
    assert other_format.exit_code == 2 and "format: 'text' then, 'jsonl' now" in other_format.stderr
    lines_file(tmp_path / "in.txt", 6)
    changed = run("reverse", "-i", "lines", "in.txt", "-o", "out/")
    assert changed.exit_code == 2 and "input 'in.txt' changed (size or modification time)" in changed.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before


def test_a_directory_of_other_files_and_stdin_are_refused(run, tmp_path):
    lines_file(tmp_path / "in.txt", 3)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    foreign = run("reverse", "-i", "lines", "in.txt", "-o", "mine")
    assert foreign.exit_code == 2 and "mine holds files and no manifest.json" in foreign.stderr
    assert os.listdir(tmp_path / "mine") == ["notes.txt"]
    piped = run("reverse", "-i", "lines", "-o", "out/", input="a\nb\n")
    assert piped.exit_code == 2 and "give files, not stdin" in piped.stderr and not (tmp_path / "out").exists()


def test_a_directory_another_run_is_writing_is_refused(run, tmp_path):
    import fcntl

    lines_file(tmp_path / "in.txt", 3)
    (tmp_path / "out").mkdir()
    with open(tmp_path / "out" / ".lock", "ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        busy = run("reverse", "-i", "lines", "in.txt", "-o", "out/")
    assert busy.exit_code == 2 and "another run is writing to out/" in busy.stderr
    assert run("reverse", "-i", "lines", "in.txt", "-o", "out/").exit_code == 0
