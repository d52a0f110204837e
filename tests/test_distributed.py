"""Dask (issue 22, items 2, 4 and 6): the chunks on a dask.distributed cluster give the results of one process,
each worker loads the model once, a killed worker costs nothing, the API's map/bag/column recipes for Dask and
pandas, input URLs through fsspec, and the command line's --cluster with its errors."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import dask
import dask.bag as db
import dask.dataframe as dd
import pandas as pd
import pytest
from distributed import Client

from toolkit import distributed as td
from toolkit import hookimpl
from toolkit.api import ErrorRecord, Pipeline
from toolkit.engine import Engine, LoadsModel, Option
from toolkit.errors import WorkerError
from toolkit.plugins import PluginInfo, load_registry
from toolkit.workers import RemoteInputError, worker_threads

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # the workers unpickle the test engines from this module


class Tagged(LoadsModel, Engine):
    """Upper-cases its inputs and says which process ran them and how often that process loaded the model;
    fails on BOOM, kills its own process on DIE, takes ``delay`` seconds per input."""

    task, name, version = "tag", "upper", "1"
    options = {"delay": Option(float, 0.0, "Seconds per input.")}
    loads = 0  # models loaded by this process

    def _load(self):
        type(self).loads += 1
        return "loaded"

    def loaded_metadata(self):
        self._loaded()
        return None

    def run(self, inputs):
        self._loaded()
        if any("BOOM" in x for x in inputs):
            raise ValueError("cannot tag BOOM")
        if any("DIE" in x for x in inputs):
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.settings["delay"] * len(inputs))
        return [{"text": x.upper(), "pid": os.getpid(), "loads": type(self).loads} for x in inputs]

    def format_text(self, result):
        return result["text"]


class TagPlugin:
    @hookimpl
    def register_engines(self, register):
        register("tag", "upper", Tagged, "Upper-cases, saying where.")


def tag_registry():
    registry = load_registry(entry_points=[])
    registry.add_plugin(TagPlugin(), PluginInfo("tag", "1", "package"))
    return registry


@pytest.fixture(scope="module")
def registry():
    return tag_registry()


@pytest.fixture(scope="module")
def client():
    with Client(td.local_cluster(2), set_as_default=False) as client:
        yield client
        client.cluster.close()


def texts(results):
    return [r.error if isinstance(r, ErrorRecord) else r["text"] for r in results]


def test_map_on_a_cluster_gives_the_pipelines_results_in_order_with_failures_in_their_place(registry, client):
    pipe = Pipeline("tag", on_error="skip", registry=registry)
    inputs = [f"input {i}" if i % 9 else f"BOOM {i}" for i in range(60)]
    found = list(td.map(pipe, iter(inputs), client, chunk_size=4))
    assert texts(found) == texts(pipe(inputs))
    failure = found[0]
    assert isinstance(failure, ErrorRecord) and isinstance(failure.exception, RemoteInputError)
    assert failure.error == "ValueError: cannot tag BOOM" and failure.exception.exit_code == 1
    # Both workers ran chunks, and each loaded the model once in the run: the pipeline it unpickled first
    # served its later chunks.
    ran = [r for r in found if not isinstance(r, ErrorRecord)]
    pids = {r["pid"] for r in ran}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(len({r["loads"] for r in ran if r["pid"] == pid}) == 1 for pid in pids)


def test_the_chunks_run_without_a_blocking_dask_call_in_the_thread_that_takes_ctrl_c(registry, client, monkeypatch):
    # A Ctrl-C that came as one of Dask's blocking calls (distributed.utils.sync) started ended the run with a
    # traceback of Dask's own: its cleanup fails on a variable not yet set. Once the pool is up, the main thread
    # (where Python raises KeyboardInterrupt) waits on its own conditions, and Dask's calls run beside it.
    import distributed.utils

    real, main_thread = distributed.utils.sync, []

    def sync(*args, **kwargs):
        main_thread.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(distributed.utils, "sync", sync)
    pipe = Pipeline("tag", registry=registry)
    with td.ClusterPool(pipe, client) as pool:
        main_thread.clear()  # entering it waited for the workers in this thread
        stamp = pool.stamp()
        found = [r["text"] for _, results in pool.map((None, [f"x{i}", f"y{i}"]) for i in range(12))
                 for r in results]
    assert stamp == pipe.stamp() and found == [x for i in range(12) for x in (f"X{i}", f"Y{i}")]
    assert main_thread.count(False) >= 12 and not any(main_thread)  # every result fetched beside it


def test_map_runs_on_the_default_client_or_else_here(registry, client):
    pipe = Pipeline("tag", registry=registry)
    with client.as_current():
        on_cluster = {r["pid"] for r in td.map(pipe, [f"x{i}" for i in range(40)], chunk_size=5)}
    assert on_cluster and os.getpid() not in on_cluster
    assert {r["pid"] for r in td.map(pipe, ["a", "b"])} == {os.getpid()}


def test_a_local_clusters_workers_get_the_cores_shared_out(client):
    expected = os.environ.get("OMP_NUM_THREADS", str(worker_threads(2)))
    assert set(client.run(lambda: os.environ["OMP_NUM_THREADS"]).values()) == {expected}
    assert sum(client.nthreads().values()) == 2


def test_a_local_clusters_workers_keep_no_profiles_and_one_malloc_arena(client):
    # Dask's profiler keeps a profile of each of the last 1,000 seconds, and each thread's malloc arena its own
    # freed memory: a worker grew by a quarter over a gigabyte of input.
    running = client.run(lambda dask_worker: "profile" in dask_worker.periodic_callbacks)
    assert len(running) == 2 and not any(running.values())
    expected = os.environ.get("MALLOC_ARENA_MAX", "1")
    assert set(client.run(lambda: os.environ.get("MALLOC_ARENA_MAX")).values()) == {expected}


def test_a_local_clusters_servers_wake_up_seldom(client):
    # Dask's 20 ms tick, 100 ms memory monitor and 500 ms system monitor took 0.4 s of CPU per 8 idle seconds in
    # the command's process (the scheduler and nannies) and 0.2 s in each worker, from the chunks' cores.
    def timers(server) -> dict:
        return {name: server.periodic_callbacks[name].callback_time for name in ("tick", "monitor")}

    expected = {"tick": 1000, "monitor": 2000}
    assert client.run_on_scheduler(lambda dask_scheduler: timers(dask_scheduler)) == expected
    assert list(client.run(lambda dask_worker: timers(dask_worker)).values()) == [expected, expected]
    for nanny in client.cluster.workers.values():
        assert {**timers(nanny), "memory": nanny.periodic_callbacks["memory_monitor"].callback_time} \
            == {**expected, "memory": 1000}


def test_a_worker_killed_mid_run_loses_and_repeats_nothing(registry):
    pipe = Pipeline("tag", registry=registry, delay=0.01)
    inputs = [f"input {i}" for i in range(400)]
    with Client(td.local_cluster(2), set_as_default=False) as own:
        pids = own.run(os.getpid)
        seen = []

        def kill_when_started():
            while len(seen) < 40:
                time.sleep(0.01)
            os.kill(next(iter(pids.values())), signal.SIGKILL)

        killer = threading.Thread(target=kill_when_started)
        killer.start()
        found = []
        for result in td.map(pipe, inputs, own, chunk_size=10):
            found.append(result)
            seen.append(result)
        killer.join()
        own.cluster.close()
    assert [r["text"] for r in found] == [x.upper() for x in inputs]
    # The killed worker's chunks were run again by the other or by its replacement.
    assert len({r["pid"] for r in found}) >= 2


def test_a_chunk_that_kills_its_workers_ends_the_run_instead_of_being_retried_forever(registry, client):
    pipe = Pipeline("tag", on_error="skip", registry=registry)
    with pytest.raises(WorkerError, match="died running the same chunk"):
        list(td.map(pipe, ["a", "DIE", "b"], client, chunk_size=1))


def test_bag_and_dataframe_recipes_give_the_pipelines_results(registry, client):
    pipe = Pipeline("tag", on_error="skip", registry=registry)
    inputs = [f"text {i}" if i != 7 else "BOOM" for i in range(30)]
    expected = texts(pipe(inputs))
    with client.as_current():
        assert texts(td.bag(pipe, db.from_sequence(inputs, npartitions=5)).compute()) == expected
        frame = dd.from_pandas(pd.DataFrame({"text": inputs}), npartitions=3)
        frame["upper"] = frame["text"].map_partitions(td.result_column, dask.delayed(pipe), "text",
                                                      meta=("upper", "object"))
        done = frame.compute()
    assert list(done["upper"]) == [None if i == 7 else x.upper() for i, x in enumerate(inputs)]
    local = pd.DataFrame({"text": ["a", "b"]}, index=[10, 20])
    local["upper"] = td.result_column(local["text"], pipe, "text")
    assert local.loc[20, "upper"] == "B" and list(local["upper"]) == ["A", "B"]


@pytest.fixture
def run(registry, cli_over):
    return cli_over(registry)


def test_cluster_output_is_the_bytes_of_one_process_in_every_format(run, tmp_path, client):
    (tmp_path / "in.txt").write_text("".join(f"line {i}\n" if i != 5 else "\n" for i in range(1, 40)))
    address = client.scheduler.address
    for fmt in ("text", "jsonl"):
        serial = run("tag", "-i", "lines", "in.txt", "-f", fmt)
        clustered = run("tag", "-i", "lines", "in.txt", "-f", fmt, "--chunk-size", "4", "--cluster", address)
        assert serial.exit_code == clustered.exit_code == 0, clustered.output
        if fmt == "text":
            assert clustered.stdout == serial.stdout and len(serial.stdout.splitlines()) == 39
            continue
        # JSON results name the process that ran them: the same records, run elsewhere.
        serial_records = [json.loads(line) for line in serial.stdout.splitlines()]
        cluster_records = [json.loads(line) for line in clustered.stdout.splitlines()]
        assert [(r["id"], r["result"]["text"]) for r in cluster_records] == \
            [(r["id"], r["result"]["text"]) for r in serial_records] and len(serial_records) == 38
        assert os.getpid() not in {r["result"]["pid"] for r in cluster_records}


def test_cluster_options_are_checked_before_anything_starts(run, tmp_path, monkeypatch):
    (tmp_path / "in.txt").write_text("a\n")
    for bad in ("local:0", "local:", "local:two"):
        result = run("tag", "in.txt", "--cluster", bad)
        assert result.exit_code == 2 and "a local cluster is local:N" in result.output
    result = run("tag", "in.txt", "--cluster", "local:2", "--workers", "2")
    assert result.exit_code == 2 and "not both" in result.output
    monkeypatch.setitem(dask.config.config["distributed"]["comm"]["timeouts"], "connect", "1s")
    started = time.monotonic()
    result = run("tag", "in.txt", "--cluster", "tcp://127.0.0.1:9")
    assert result.exit_code == 1 and time.monotonic() - started < 20
    assert "cannot reach a Dask cluster with workers at tcp://127.0.0.1:9" in result.output


def test_inputs_may_be_urls_that_fsspec_opens(run, tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / "a.txt").write_text("one\ntwo\n")
    (folder / "b.txt").write_text("three\n")
    result = run("tag", "-i", "lines", f"file://{folder}/*.txt")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["ONE", "TWO", "THREE"]
    for url, said in ((f"file://{folder}/none.txt", "no such file"), (f"file://{folder}/*.md", "no file matches"),
                      (f"file://{folder}", "is a directory"), ("nosuch://x/y.txt", "Protocol not known")):
        result = run("tag", url)
        assert result.exit_code == 2 and said in result.output, (url, result.output)
