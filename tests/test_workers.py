"""--workers N and toolkit.workers (issue 22 item 1): chunks run in worker processes, results in input order,
the same bytes as one process writes, failures reported once, chunks in flight bounded, Ctrl-C and a dead
worker end the run cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from toolkit import hookimpl, workers
from toolkit.api import ErrorRecord, Pipeline
from toolkit.cli import make_cli
from toolkit.engine import Engine, Option
from toolkit.errors import ModelFileError
from toolkit.plugins import PluginInfo, load_registry
from toolkit.workers import RemoteInputError, WorkerPool

TESTS = Path(__file__).resolve().parent


class Echo(Engine):
    """Upper-cases its inputs; fails on BOOM, kills its own process on DIE (run it in workers only), takes
    ``delay`` seconds per input, and with ``threads`` says the kernel threads its process was given."""

    task, name, version = "echo", "upper", "1"
    options = {"delay": Option(float, 0.0, "Seconds per input."),
               "threads": Option(bool, False, "Say OMP_NUM_THREADS.")}

    def run(self, inputs):
        if any("BOOM" in x for x in inputs):
            raise ValueError("cannot echo BOOM")
        if any("DIE" in x for x in inputs):
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.settings["delay"] * len(inputs))
        if self.settings["threads"]:
            return [{"text": os.environ.get("OMP_NUM_THREADS", "")} for _ in inputs]
        return [{"text": x.upper()} for x in inputs]

    def format_text(self, result):
        return result["text"]


class Damaged(Echo):
    """An engine whose model file cannot be read: it fails as it starts."""

    name = "damaged"

    def loaded_metadata(self):
        raise ModelFileError("m.nlpt: array 'w' does not match its checksum (file altered?)")


class EchoPlugin:
    @hookimpl
    def register_engines(self, register):
        register("echo", "upper", Echo, "Upper-cases.")
        register("echo", "damaged", Damaged, "Cannot start.")


def echo_registry():
    registry = load_registry(entry_points=[])
    registry.add_plugin(EchoPlugin(), PluginInfo("echo", "1", "package"))
    return registry


def main() -> None:
    """The command line with the echo task, for tests that run it in a process of its own."""
    make_cli(echo_registry)(prog_name="nlp-tool")


@pytest.fixture(scope="module")
def registry():
    return echo_registry()


@pytest.fixture
def run(registry, cli_over):
    return cli_over(registry)


def test_map_gives_the_pipelines_results_in_order_with_failures_in_their_place(registry):
    pipe = Pipeline("echo", on_error="skip", registry=registry)
    inputs = [f"input {i}" if i % 9 else f"BOOM {i}" for i in range(50)]
    expected = pipe(inputs)
    found = list(workers.map(pipe, iter(inputs), workers=2, chunk_size=4))
    assert [r.error if isinstance(r, ErrorRecord) else r for r in found] == \
        [r.error if isinstance(r, ErrorRecord) else r for r in expected]
    failure = found[0]
    assert isinstance(failure, ErrorRecord) and isinstance(failure.exception, RemoteInputError)
    assert failure.error == "ValueError: cannot echo BOOM" and failure.exception.exit_code == 1


def test_chunks_in_flight_are_bounded_and_come_back_in_order(registry):
    pipe = Pipeline("echo", registry=registry)
    pulled = consumed = most = 0

    def chunks():
        nonlocal pulled, most
        for i in range(30):
            pulled += 1
            most = max(most, pulled - consumed)
            yield i, [f"chunk {i}"] * (1 + i % 3)

    finished = []  # the progress count: chunks' inputs as they finish, in whichever worker
    with WorkerPool(pipe, 2, in_flight=3) as pool:
        for key, results in pool.map(chunks(), finished.append):
            assert key == consumed and results == [{"text": f"CHUNK {key}"}] * (1 + key % 3)
            consumed += 1
            assert sum(finished) >= sum(1 + k % 3 for k in range(consumed))
    assert consumed == 30 and most == 3 and sum(finished) == sum(1 + k % 3 for k in range(30))


def test_leaving_the_pool_ends_its_processes_and_threads(registry):
    # A thread of the executor still ending when the interpreter exits made Python 3.11's exit handler print
    # "Exception ignored ... Bad file descriptor" (a write to the pipe that thread had just closed).
    import threading

    before = set(threading.enumerate())
    with WorkerPool(Pipeline("echo", registry=registry), 2) as pool:
        processes = list(pool._executor._processes.values())
        assert [results for _, results in pool.map([(0, ["x"]), (1, ["y"])])] == [[{"text": "X"}], [{"text": "Y"}]]
    assert not any(process.is_alive() for process in processes)
    assert set(threading.enumerate()) <= before


def test_each_worker_gets_the_cores_shared_out_unless_the_user_set_threads(registry, monkeypatch):
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(variable, raising=False)
    pipe = Pipeline("echo", registry=registry, threads=True)
    assert workers.worker_threads(2) == max(1, len(os.sched_getaffinity(0)) // 2)
    with WorkerPool(pipe, 2) as pool:
        assert [results for _, results in pool.map([(0, ["x"])])] == [[{"text": str(workers.worker_threads(2))}]]
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert list(workers.map(pipe, ["x"], workers=2)) == [{"text": "3"}]


def test_one_worker_runs_the_chunks_in_this_process(registry):
    pipe = Pipeline("echo", registry=registry)
    assert list(workers.map(pipe, ["a", "b", "c"], workers=1, chunk_size=2)) == [{"text": c} for c in "ABC"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Files for the built-in engines: reviews, one per line, and news-like articles as files and JSONL."""
    folder = tmp_path_factory.mktemp("corpus")
    words = ["great", "dull", "moving", "awful", "funny", "slow", "brilliant", "boring"]
    reviews = [f"A {words[i % 8]} film, and the cast is {words[(3 * i) % 8]}." for i in range(40)]
    (folder / "reviews.txt").write_text("\n".join(reviews[:20]) + "\n\n" + "\n".join(reviews[20:]) + "\n")
    articles = [" ".join(f"Sentence {j} of article {i} is about the {words[(i + j) % 8]} council plan."
                         for j in range(3 + i % 5)) for i in range(12)]
    for i, article in enumerate(articles[:5]):
        (folder / f"article{i}.txt").write_text(article)
    (folder / "articles.jsonl").write_text("".join(json.dumps({"id": f"a{i}", "text": a}) + "\n"
                                                   for i, a in enumerate(articles)))
    return folder


@pytest.mark.parametrize("args", [
    ["classify", "-i", "lines", "reviews.txt"],                       # line in, line out
    ["classify", "-i", "lines", "reviews.txt", "-f", "json", "--top-k", "2"],
    ["summarize", "-e", "centrality", "-i", "jsonl", "articles.jsonl", "-f", "json"],
    ["summarize", "-e", "centrality", "article*.txt", "--sentences", "2"],   # text under ==> id <== headers
], ids=["classify-lines-text", "classify-json", "summarize-json", "summarize-text"])
def test_two_workers_write_the_bytes_one_process_writes(corpus, monkeypatch, args):
    monkeypatch.chdir(corpus)
    cli = make_cli(lambda: load_registry(entry_points=[]))
    serial = CliRunner().invoke(cli, args)
    parallel = CliRunner().invoke(cli, [*args, "--workers", "2", "--chunk-size", "3"])
    assert serial.exit_code == parallel.exit_code == 0, parallel.output
    assert parallel.stdout == serial.stdout and parallel.stderr == serial.stderr == ""


def test_a_failing_input_is_reported_once_and_written_in_its_place(run, tmp_path):
    (tmp_path / "in.txt").write_text("".join(f"line {i}\n" if i != 6 else "BOOM\n" for i in range(1, 12)))
    args = ["echo", "-i", "lines", "in.txt", "-f", "jsonl", "--on-error", "skip", "--chunk-size", "4"]
    serial, parallel = run(*args), run(*args, "--workers", "2")
    assert serial.exit_code == parallel.exit_code == 1
    assert parallel.stdout == serial.stdout and parallel.stderr == serial.stderr
    assert parallel.stderr.splitlines() == [
        "nlp-tool: error: input 'in.txt:6': ValueError: cannot echo BOOM",
        "nlp-tool: error: 1 input(s) failed; the results of the others were written"]
    assert [json.loads(line).get("error") for line in parallel.stdout.splitlines()][4:7] == [
        None, "ValueError: cannot echo BOOM", None]
    # --on-error stop: the output ends with the failed input, as one process ends it.
    serial, parallel = run(*args[:-4], "--chunk-size", "2"), run(*args[:-4], "--chunk-size", "2", "--workers", "3")
    assert serial.exit_code == parallel.exit_code == 1 and parallel.stdout == serial.stdout
    assert len(parallel.stdout.splitlines()) == 6 and parallel.stderr == serial.stderr


def test_an_engine_that_cannot_start_ends_the_run_before_any_input_as_in_one_process(run, tmp_path):
    (tmp_path / "in.txt").write_text("a\nb\n")
    serial = run("echo", "-e", "damaged", "-i", "lines", "in.txt", "--on-error", "skip")
    parallel = run("echo", "-e", "damaged", "-i", "lines", "in.txt", "--on-error", "skip", "--workers", "2")
    assert serial.exit_code == parallel.exit_code == 1 and serial.stdout == parallel.stdout == ""
    assert parallel.stderr == serial.stderr == ("nlp-tool: error: cannot start engine echo:damaged: ModelFileError:"
                                                " m.nlpt: array 'w' does not match its checksum (file altered?)\n")


def test_a_worker_that_dies_ends_the_run_and_is_not_run_again(run, tmp_path):
    (tmp_path / "in.txt").write_text("a\nb\nDIE\n" + "c\n" * 30)
    result = run("echo", "-i", "lines", "in.txt", "--workers", "2", "--chunk-size", "1", "--on-error", "skip",
                 "-o", "out.txt")
    assert result.exit_code == 1
    assert "a worker process ended without finishing its chunk of inputs" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir() if path.name != "home") == ["in.txt"]


# Two local worker processes, or a Dask LocalCluster of two (issue 22, item 2).
TWO_WORKERS = [["--workers", "2"], ["--cluster", "local:2"]]


def start_slow_run(tmp_path: Path, where: list[str], started: bool = True) -> subprocess.Popen:
    """``echo`` on 400 lines in 2 workers (``where``: --workers 2 or --cluster local:2), in a process group of its
    own, once its first result is out (``started``) or at once."""
    (tmp_path / "in.txt").write_text("".join(f"line {i}\n" for i in range(400)))
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_workers; test_workers.main()"
    env = {**os.environ, "NLP_TOOL_HOME": str(tmp_path / "home")}
    process = subprocess.Popen([sys.executable, "-c", code, "echo", "-i", "lines", "in.txt", *where,
                                "--chunk-size", "10", "--delay", "0.02"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    if started:
        assert process.stdout.readline() == b"LINE 0\n"  # the workers are at work
    return process


def running(pid: int) -> bool:
    """Whether process ``pid`` runs (not gone, not a zombie nobody reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process groups in /proc")
@pytest.mark.parametrize("where", TWO_WORKERS)
def test_workers_end_when_their_parent_is_killed(tmp_path, where):
    process = start_slow_run(tmp_path, where)
    # Found by process group, not by /proc's children files: Dask starts its workers from threads of its own,
    # which may end (and hand their children to another thread) while the files are read.
    workers = [pid for pid in group_members(process.pid) if pid != process.pid]
    assert len(workers) >= 2
    process.kill()  # SIGKILL: the parent cannot end its workers itself
    process.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while any(map(running, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(running, workers)), "worker processes outlived their parent"


def group_members(group: int) -> list[int]:
    """The processes of process group ``group`` that run now."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended while /proc was read
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


@pytest.mark.parametrize("where", TWO_WORKERS)
def test_ctrl_c_ends_the_workers_with_the_run(tmp_path, where):
    process = start_slow_run(tmp_path, where)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal sends it: to every process of the group
    _, stderr = process.communicate(timeout=30)
    assert (process.returncode, stderr) == (130, b"nlp-tool: interrupted\n")
    assert_group_ends(process)


def test_a_ctrl_c_python_swallows_in_a_del_still_ends_the_run(tmp_path):
    # Python raises a Ctrl-C in whatever the main thread runs; in a __del__ (a Dask future's, dropped as a
    # --cluster run reads its chunks) it only prints it: the likely way a --cluster run in CI ended with exit 0
    # after its Ctrl-C. Here the signal comes, deterministically, in a __del__ as the pool waits for a chunk.
    (tmp_path / "in.txt").write_text("".join(f"line {i}\n" for i in range(400)))
    code = textwrap.dedent(f"""
        import signal, sys
        sys.path.insert(0, {str(TESTS)!r})
        import test_workers
        from toolkit import workers

        class SignalInDel:
            def __del__(self):
                signal.raise_signal(signal.SIGINT)
                sum(range(10))

        first_done = workers.WorkerPool._first_done
        def first_done_with_a_ctrl_c(self, futures):
            SignalInDel()  # dropped at once
            return first_done(self, futures)
        workers.WorkerPool._first_done = first_done_with_a_ctrl_c
        test_workers.main()
    """)
    env = {**os.environ, "NLP_TOOL_HOME": str(tmp_path / "home")}
    process = subprocess.run([sys.executable, "-c", code, "echo", "-i", "lines", "in.txt", "--workers", "2",
                              "--chunk-size", "10", "--delay", "0.02"], cwd=tmp_path, env=env, capture_output=True,
                             timeout=60)
    assert (process.returncode, process.stderr) == (130, b"nlp-tool: interrupted\n")
    assert len(process.stdout.splitlines()) < 400


@pytest.mark.parametrize("delay", [0.6, 1.4])
def test_ctrl_c_while_a_local_cluster_starts_ends_the_run_in_one_line(tmp_path, delay):
    # Closed half-started, a LocalCluster failed with Dask's tracebacks and left its processes; and its workers,
    # hit as they imported, printed theirs (here: the command importing at 0.6 s, the cluster starting at 1.4 s).
    process = start_slow_run(tmp_path, ["--cluster", "local:2"], started=False)
    time.sleep(delay)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert (process.returncode, stderr) == (130, b"nlp-tool: interrupted\n")
    assert_group_ends(process)


def assert_group_ends(process: subprocess.Popen) -> None:
    """No process of ``process``'s group is left within 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return  # no process of the run is left
        time.sleep(0.05)
    raise AssertionError("worker processes outlived the run")
