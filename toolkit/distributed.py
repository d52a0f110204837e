"""Dask: a pipeline's chunks on a ``dask.distributed`` cluster, and pipelines inside Dask and pandas collections.

:class:`ClusterPool` runs the chunks of :mod:`toolkit.workers` (the same
:func:`~toolkit.workers.run_chunk` on the same chunks, so the same results)
on the workers of a Dask scheduler: one the user runs (``tcp://HOST:8786``),
or a ``LocalCluster`` started for the run (``local:N``). The pipeline is
sent to each worker once (it pickles as its options and model path), and
each worker loads the model once, when it first runs the pipeline; chunks
carry only their inputs. A worker that dies has its chunks run again
elsewhere by the scheduler, which is why a chunk must give the same results
wherever it runs (the engine contract).

:func:`map` is the API's form; :func:`bag` and :func:`result_column` put a
pipeline in a ``dask.bag`` or a (Dask or pandas) column. Dask is an optional
extra: ``pip install "nlp-tool[dask]"`` (docs/scale.md).
"""

from __future__ import annotations

import logging
import pickle
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from toolkit.api import ErrorRecord, Pipeline
from toolkit.errors import OptionError, UnsupportedError, WorkerError
from toolkit.memory import keep_freed_memory
from toolkit.threads import THREAD_VARIABLES
from toolkit.workers import (
    DEFAULT_CHUNK_SIZE, ChunkPool, WorkerPool, chunked, ignore_ctrl_c, run_chunk, worker_threads,
)

__all__ = ["ClusterPool", "bag", "local_cluster", "map", "pool", "result_column"]

LOCAL = "local:"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as error:
        raise UnsupportedError("running on a Dask cluster needs Dask: pip install \"nlp-tool[dask]\"") from error
    return distributed


def local_workers(cluster: str) -> int | None:
    """N of a ``local:N`` cluster address, None for any other address; OptionError for a bad N."""
    if not cluster.startswith(LOCAL):
        return None
    count = cluster[len(LOCAL):]
    if not count.isdigit() or int(count) < 1:
        raise OptionError(f"{cluster!r}: a local cluster is local:N, N the number of worker processes (1 or more)")
    return int(count)


def local_cluster(workers: int, threads: int | None = None) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` processes for one run: one task at a time each, with
    ``threads`` kernel threads (default: the cores shared out, unless OMP_NUM_THREADS or a BLAS variable is
    set, which the workers then inherit)."""
    distributed = _distributed()
    import dask

    # Dask starts each worker with OMP_NUM_THREADS=1 and the like (its pre-spawn environment, where a variable
    # already set here wins): on 2 cores a single worker would run its kernels on one thread.
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    environ.update({variable: str(threads or worker_threads(workers)) for variable in THREAD_VARIABLES})
    # And with MALLOC_TRIM_THRESHOLD_=65536, which has glibc hand every freed array back to the system and fault
    # it in again for the next chunk: summarize ran at 0.6x the local pool's speed. The workers keep freed
    # memory as the command's process does (dask_setup), unless the user set glibc's options.
    environ["MALLOC_TRIM_THRESHOLD_"] = None
    # A Dask worker runs its chunks in a task thread beside its event loop's, and glibc gives each thread an arena
    # of its own that keeps its freed memory: each worker grew from 159 to 194 MB over a gigabyte of input. One
    # arena for the process, as the pool's workers that run chunks in their main thread have (flat within 0.4 %).
    environ["MALLOC_ARENA_MAX"] = "1"
    # Its HTTP server (health, and the dashboard where bokeh is installed) starts anyway: on a free port, not on
    # 8787, which another cluster may hold.
    # A worker's statistical profiler (for the dashboard) keeps a profile of each second of the last 1,000: over a
    # gigabyte of input each worker grew from 208 to 261 MB, where the run's memory must stay flat.
    # Its servers wake up on timers for the dashboard and for warnings: each measures its event loop every 20 ms
    # (the tick), each nanny the worker's memory every 100 ms, and each process its CPU, memory and disk every
    # 500 ms. Idle for 8 s, the command's process spent 0.40-0.48 s of CPU and each worker 0.16-0.19 s, cores the
    # chunks need; at 1 s, 1 s and 2 s without the disk, 0.07-0.09 s and 0.03-0.04 s. A worker past its memory
    # limit is still stopped, a second later at most.
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ,
                          "distributed.worker.profile.enabled": False,
                          "distributed.admin.tick.interval": "1s",
                          "distributed.worker.memory.monitor-interval": "1s",
                          "distributed.admin.system-monitor.interval": "2s",
                          "distributed.admin.system-monitor.disk": False}):
        return distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        dashboard_address=":0", silence_logs=logging.ERROR,
                                        preload=[__name__])


def dask_setup(worker: Any) -> None:
    """Run by each worker of :func:`local_cluster` as it starts (Dask's preload: this module's ``dask_setup``).

    A Ctrl-C at a terminal reaches every process of the group, and each
    Dask worker would end with a traceback: they ignore it, and the process
    that started them alone decides what stops (then closes the cluster),
    as with WorkerPool's workers. A worker of a cluster that ClusterPool
    starts was started with SIGINT blocked (see _thread), so that a
    Ctrl-C could not end it half-way; it takes signals again once it
    ignores this one. The worker process is the run's own, so its
    allocator keeps freed memory for the next chunk (toolkit.memory).
    """
    ignore_ctrl_c()
    keep_freed_memory()


# The pipelines this worker process has run, by their pickle, each unpickled once so that its model is loaded
# once; the last few only, since a long-lived cluster serves one run after another.
_PIPELINES: OrderedDict[bytes, Pipeline] = OrderedDict()
_KEPT_PIPELINES = 4
_PIPELINES_LOCK = threading.Lock()


def _pipeline(pickled: bytes) -> Pipeline:
    with _PIPELINES_LOCK:
        pipe = _PIPELINES.get(pickled)
        if pipe is None:
            pipe = _PIPELINES[pickled] = pickle.loads(pickled)
            while len(_PIPELINES) > _KEPT_PIPELINES:
                _PIPELINES.popitem(last=False)
        _PIPELINES.move_to_end(pickled)
    return pipe


def _run_in_worker(pickled: bytes, values: list) -> list[dict | ErrorRecord]:
    return run_chunk(_pipeline(pickled), values)


def _stamp_in_worker(pickled: bytes) -> dict:
    return _pipeline(pickled).stamp()


class ClusterPool(ChunkPool):
    """Chunks of ``pipe`` run on a Dask cluster: ``cluster`` is a ``distributed.Client``, a scheduler's
    address (``tcp://HOST:8786``) or ``local:N``; a context manager.

    Entering it connects (or starts the local cluster); leaving it closes
    what it opened (never a Client it was given). A chunk travels with the
    pickled pipeline (its options and model path: bytes, not the model),
    which each worker unpickles once and keeps, so it loads the model once;
    unlike data scattered to the workers, nothing is lost with them when
    workers die. ``in_flight`` (default: twice the cluster's threads) bounds
    the chunks out at once.
    """

    def __init__(self, pipe: Pipeline, cluster: Any, *, in_flight: int | None = None) -> None:
        if in_flight is not None and in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, not {in_flight}")
        try:
            self._pickled = pickle.dumps(pipe)
        except Exception as error:
            raise WorkerError(f"{pipe!r} cannot be sent to Dask workers: {error}") from error
        self.pipe = pipe
        self.cluster = cluster
        self._in_flight = in_flight
        self._client: Any = None
        self._owned: list = []
        self._finished = threading.Condition()  # notified as each chunk's future is done

    def __enter__(self) -> ClusterPool:
        connecting = _thread(self._connect)
        try:
            client = connecting.result()
        except (OSError, TimeoutError) as error:
            self.__exit__()
            raise WorkerError(f"cannot reach a Dask cluster with workers at {self.cluster}: {error}") from error
        except BaseException:
            # A Ctrl-C while the cluster starts: closed half-started, a local cluster failed with Dask's
            # tracebacks and left worker processes behind; the start ends first (a second Ctrl-C does not wait).
            if not connecting.done():
                connecting.exception()
            self.__exit__()
            raise
        self._client = client
        self.in_flight = self._in_flight or 2 * max(1, sum(_thread(client.nthreads).result().values()))
        return self

    def _connect(self) -> Any:
        """The client, connected to a cluster with workers (starting the local cluster); what it opens is kept
        in ``_owned`` as it opens it."""
        distributed = _distributed()
        if isinstance(self.cluster, distributed.Client):
            client = self.cluster
        else:
            workers = local_workers(self.cluster)
            if workers is not None:
                _start_resource_tracker()
                self._owned.append(local_cluster(workers))
            client = distributed.Client(self._owned[0] if self._owned else self.cluster, set_as_default=False)
            self._owned.insert(0, client)
        # A scheduler may have no worker yet (they are starting, or being replaced).
        client.wait_for_workers(1, timeout=_connect_timeout())
        return client

    def __exit__(self, *_: object) -> None:
        self._client = None
        owned, self._owned = self._owned, []
        for thing in owned:  # the client, then the local cluster it talks to
            thing.close()

    def stamp(self) -> dict:
        """The pipeline's stamp, from every worker: each loads the model now, and an engine that cannot
        start raises its error here."""
        client = self._client
        if client is None:
            raise RuntimeError("ClusterPool needs to be entered first (with ClusterPool(...) as pool)")
        calls = [client.submit(_stamp_in_worker, self._pickled, workers=[address], pure=False)
                 for address in _thread(client.scheduler_info).result()["workers"]]
        stamps = [self._outcome(call) for call in calls]  # all of them: every worker has loaded the model
        return stamps[0]

    def _submit(self, values: list) -> Any:
        if self._client is None:
            raise RuntimeError("ClusterPool needs to be entered first (with ClusterPool(...) as pool)")
        future = self._client.submit(_run_in_worker, self._pickled, values, pure=False)
        future.add_done_callback(self._notify)
        return future

    def _notify(self, _: Any) -> None:
        with self._finished:
            self._finished.notify_all()

    def _first_done(self, futures: list) -> set:
        # Not distributed.wait: a Dask client's blocking calls run in its sync(), and a Ctrl-C that came as one
        # started ended the run with a traceback of Dask's own (its cleanup, distributed.utils.sync's cancel,
        # fails on a variable not yet set). A wait on the futures' done-callbacks takes a Ctrl-C at any time.
        with self._finished:
            self._finished.wait_for(lambda: any(future.done() for future in futures))
        return {future for future in futures if future.done()}

    def _outcome(self, future: Any) -> Any:
        distributed = _distributed()
        try:
            # Fetched in a thread of its own, for the same reason: a Ctrl-C finds this thread in a plain wait.
            return _thread(future.result).result()
        except distributed.scheduler.KilledWorker as error:
            raise WorkerError("Dask workers died running the same chunk of inputs again and again (killed, or"
                              " out of memory?); the run stops there") from error
        except distributed.client.FutureCancelledError as error:
            raise WorkerError(f"the Dask cluster dropped a chunk of inputs: {error}") from error


def _thread(call: Callable[[], Any]) -> Future:
    """A future of ``call()``, run in a daemon thread: the caller waits on it plainly, where a Ctrl-C is taken at
    any time (never inside Dask's sync()), and a call still blocked in Dask (a run interrupted, its client closed)
    does not hold up the interpreter's exit.

    The thread blocks SIGINT, and so do the threads it starts (Dask's event loop, when it starts the first
    cluster of the process) and the processes they start (a local cluster's workers, until dask_setup):
    a Ctrl-C goes to the main thread alone.
    """
    outcome: Future = Future()

    def run() -> None:
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            outcome.set_result(call())
        except BaseException as error:  # given to the waiting thread, which raises it
            outcome.set_exception(error)

    threading.Thread(target=run, daemon=True, name="nlp-tool dask call").start()
    return outcome


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, SIGINT blocked again after it in this thread.

    Started with the first worker process, it unblocks SIGINT in the thread
    that starts it, Dask's event loop, whose workers would then start
    open to a Ctrl-C (and end with tracebacks); started here first, the
    event loop keeps the mask it inherits from this thread (_thread's).
    """
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    if hasattr(signal, "pthread_sigmask") and threading.current_thread() is not threading.main_thread():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def _connect_timeout() -> float:
    import dask
    from dask.utils import parse_timedelta

    return parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="s")


def pool(pipe: Pipeline, workers: int = 1, cluster: Any = None) -> ChunkPool:
    """The chunk runner a run asks for: ``cluster`` (an address, ``local:N`` or a Client) if given, else
    ``workers`` local processes (1: this process)."""
    if cluster is not None:
        return ClusterPool(pipe, cluster)
    return WorkerPool(pipe, workers)


def map(pipe: Pipeline, inputs: Iterable, client: Any = None, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
        in_flight: int | None = None) -> Iterator[dict | ErrorRecord]:
    """``pipe``'s results for ``inputs``, in order, lazily, computed on ``client``'s Dask cluster (a
    ``distributed.Client``, a scheduler address or ``local:N``); with no ``client``, on the default client
    of this process if there is one (``distributed.Client(...)`` made it), else here.

    Inputs are read ``chunk_size`` at a time and at most ``in_flight``
    chunks are out at once. The results are those of ``pipe(inputs)``; with
    ``on_error="skip"`` a failed input's ErrorRecord holds a
    :class:`~toolkit.workers.RemoteInputError` (its text and exit code).
    """
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int of at least 1, not {chunk_size!r}")
    if client is None:
        client = _default_client()
    runner = WorkerPool(pipe, 1) if client is None else ClusterPool(pipe, client, in_flight=in_flight)
    with runner:
        for _, results in runner.map((None, chunk) for chunk in chunked(iter(inputs), chunk_size)):
            yield from results


def _default_client() -> Any:
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:  # no client in this process
        return None


def _run_partition(values: Iterable, pipe: Pipeline) -> list[dict | ErrorRecord]:
    return run_chunk(pipe, list(values))


def bag(pipe: Pipeline, items: Any) -> Any:
    """A ``dask.bag`` of ``pipe``'s results for the inputs of the bag ``items``, partition by partition.

    The pipeline enters the graph once (a ``dask.delayed`` value), so each
    worker receives it once and loads the model once, whatever the number of
    partitions.
    """
    import dask

    return items.map_partitions(_run_partition, dask.delayed(pipe, traverse=False))


def result_column(texts: Any, pipe: Pipeline, field: str) -> Any:
    """The ``field`` of ``pipe``'s result for each text of the pandas Series ``texts``: a Series on the same
    index, None where an input failed (a pipeline with ``on_error="skip"``).

    ``df["label"] = result_column(df["text"], pipe, "label")`` in pandas;
    in Dask, ``ddf["text"].map_partitions(result_column, dask.delayed(pipe),
    "label", meta=("label", "object"))`` (docs/scale.md).
    """
    import pandas as pd

    results = pipe(list(texts))
    values = [None if isinstance(result, ErrorRecord) else result[field] for result in results]
    return pd.Series(values, index=texts.index, name=field, dtype=object)
