"""Local worker processes: a pipeline's inputs cut into chunks, run in N processes, results in input order.

The unit of work is a chunk, a list of inputs that :func:`run_chunk` runs
through a pipeline. A worker process receives the pipeline once (pickled: its
options and model path, not the loaded model, which the worker loads as it
starts) and then only chunks; so any backend that can call one function on
picklable arguments (the process pool here, a Dask cluster) runs the same
chunks with the same results. :func:`map` is the API; the task verbs'
``--workers N`` runs :class:`WorkerPool` directly, and their serial path runs
the same :func:`outcomes` through :func:`ramped` batches.
"""

from __future__ import annotations

import itertools
import os
import pickle
import signal
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from toolkit.api import ErrorRecord, Pipeline
from toolkit.errors import RUNTIME_FAILURE, NlpToolError, WorkerError
from toolkit.interrupts import raise_swallowed
from toolkit.io import Record
from toolkit.threads import THREAD_VARIABLES, use_threads

# Records per chunk (and per part file of ``-o DIR/``): some 0.25 s of work for summarize and classify, more
# for the slower engines, so that what a chunk costs to send stays small beside it and a crash costs little;
# chunks of 64 measured no faster (docs/scale.md).
DEFAULT_CHUNK_SIZE = 256
# "spawn": a worker is a fresh interpreter that reads OMP_NUM_THREADS when it loads the kernels; a child of
# fork (or of a forkserver that imported the kernels) inherits the parent's OpenMP state and thread count.
START_METHOD = "spawn"

Key = TypeVar("Key")

# What became of one input: (record, result, None, 0) or (record, None, error, the exit code it ends a run with:
# 2 for an input the engine refuses as unusable, an InputError, and 1 for any other failure).
Outcome = tuple[Record, dict | None, str | None, int]


class RemoteInputError(NlpToolError):
    """An input's exception as it comes back from a worker process: its one-line text and exit code.

    The exception itself may not survive pickling (an ``__init__`` with
    arguments of its own breaks unpickling), and the message and exit code
    are all that results and reports use.
    """

    def __init__(self, error: str, exit_code: int) -> None:
        super().__init__(error)
        self.exit_code = exit_code

    def __reduce__(self) -> tuple:
        return type(self), (str(self), self.exit_code)


def run_chunk(pipe: Pipeline, values: list) -> list[dict | ErrorRecord]:
    """``pipe(values)``, each ErrorRecord's exception replaced by a picklable :class:`RemoteInputError`: the one
    function a worker runs, whatever started it."""
    results = []
    for result in pipe(values):
        if isinstance(result, ErrorRecord):
            code = result.exception.exit_code if isinstance(result.exception, NlpToolError) else RUNTIME_FAILURE
            result = ErrorRecord(result.error, RemoteInputError(result.error, code))
        results.append(result)
    return results


def chunked(items: Iterator, size: int) -> Iterator[list]:
    """Lists of ``size`` consecutive ``items`` (the last may be shorter)."""
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def ramped(items: Iterator, batch_size: int) -> Iterator[list]:
    """Lists of consecutive ``items``: 1, 2, 4, ... of them, then ``batch_size`` each.

    The first results of a stream come after one input, not after a full
    batch (a batch of 32 news articles kept ``summarize -i jsonl`` silent for
    1.5 s); results do not depend on their batch (the engine contract), so
    only the speed of the first few differs.
    """
    size = 1
    while batch := list(itertools.islice(items, size)):
        yield batch
        size = min(2 * size, batch_size)


def runnable(records: list[Record]) -> list:
    """The values of the records that go to the engine: not those that could not be read, nor blank lines."""
    return [record.value for record in records if record.error is None and not record.blank]


def outcomes(records: list[Record], results: list[dict | ErrorRecord]) -> list[Outcome]:
    """Each record's outcome, given the results of its :func:`runnable` values; the others (a file that cannot
    be decoded, a bad JSONL line, a blank line) are reported in their place."""
    answers = iter(results)
    found: list[Outcome] = []
    for record in records:
        if record.error is not None or record.blank:
            found.append((record, None, record.error, RUNTIME_FAILURE))
            continue
        result = next(answers)
        if isinstance(result, ErrorRecord):
            code = result.exception.exit_code if isinstance(result.exception, NlpToolError) else RUNTIME_FAILURE
            found.append((record, None, result.error, code))
        else:
            found.append((record, result, None, 0))
    return found


def worker_threads(workers: int) -> int:
    """Kernel threads for each of ``workers`` processes: the cores this process may use, shared out."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // workers)


# The pipeline of this worker process and its stamp (or why the engine could not start), set by _start_worker.
_PIPE: Pipeline | None = None
_STARTED: dict | Exception | None = None


def ignore_ctrl_c() -> None:
    """In a worker process: ignore SIGINT, and take signals again if it was started with SIGINT blocked (so that a
    Ctrl-C could not end it half-way). Ctrl-C at a terminal reaches every process of the group; the parent alone
    decides what stops, and ends its workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _start_worker(pipe: bytes, threads: int | None) -> None:
    # SIGINT was blocked while this process started (see WorkerPool._submit).
    ignore_ctrl_c()
    # A parent killed outright (SIGKILL, the OOM killer) cannot end its workers, and they would wait for chunks
    # forever: each watches its parent and ends with it.
    threading.Thread(target=_end_with_parent, daemon=True, name="nlp-tool parent watch").start()
    if threads is not None:
        # Before the pipeline is unpickled: that imports numpy and the kernels, whose thread pools read these.
        use_threads(threads)
    global _PIPE, _STARTED
    _PIPE = pickle.loads(pipe)
    # The stamp loads the model: now, while the parent reads the first inputs, rather than on the first chunk.
    try:
        _STARTED = _PIPE.stamp()
    except Exception as error:  # said by _stamp_in_worker; every chunk would fail alike
        _STARTED = error


def _stamp_in_worker() -> dict:
    if isinstance(_STARTED, Exception):
        raise _STARTED
    assert _STARTED is not None, "the worker was not started by WorkerPool"
    return _STARTED


def _end_with_parent() -> None:
    import multiprocessing
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is not None:
        wait([parent.sentinel])
        os._exit(1)


def _run_in_worker(values: list) -> list[dict | ErrorRecord]:
    assert _PIPE is not None, "the worker was not started by WorkerPool"
    return run_chunk(_PIPE, values)


class ChunkPool(ABC):
    """What runs chunks of one pipeline's inputs: this process, worker processes (:class:`WorkerPool`) or a
    Dask cluster (:class:`toolkit.distributed.ClusterPool`); a context manager.

    :meth:`map` is the same for all: at most ``in_flight`` chunks are out at
    once, so memory follows the chunk size, never the input's, and results
    come back in input order while the progress count follows the chunks as
    they finish. A subclass says how a chunk is sent (``_submit``), how to
    wait for the first of several (``_first_done``) and how a result is
    taken (``_outcome``); ``serial`` pools run chunks here, one after another.
    """

    pipe: Pipeline
    in_flight: int
    serial: bool = False

    def __enter__(self) -> ChunkPool:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    @abstractmethod
    def stamp(self) -> dict:
        """The pipeline's stamp, from where the engine runs (starting it there); an engine that cannot start
        raises its error here, as ``pipe.stamp()`` would."""

    @abstractmethod
    def _submit(self, values: list) -> Any:
        """Send one chunk to be run: a future of its results."""

    @abstractmethod
    def _first_done(self, futures: list) -> set:
        """Wait until at least one of ``futures`` is done; those that are."""

    @abstractmethod
    def _outcome(self, future: Any) -> list[dict | ErrorRecord]:
        """A done future's results; WorkerError when what ran it died for good."""

    def map(self, chunks: Iterable[tuple[Key, list]], done: Callable[[int], None] | None = None
            ) -> Iterator[tuple[Key, list[dict | ErrorRecord]]]:
        """``(key, run_chunk(pipe, values))`` for each ``(key, values)`` of ``chunks``, in their order.

        ``key`` stays in this process (the records, a part's number); only
        ``values`` travel. ``done(n)`` is called as each chunk of ``n``
        values finishes, wherever it ran, for a progress count. A worker
        that dies for good raises WorkerError; an input's exception (from a
        pipeline with ``on_error="raise"``) comes through as it is.
        """
        if self.serial:
            for key, values in chunks:
                results = run_chunk(self.pipe, values)
                if done is not None:
                    done(len(values))
                yield key, results
            return
        chunks = iter(chunks)
        pending: deque[tuple[Key, int, Any]] = deque()
        counted: set = set()
        more = True
        while True:
            while more and len(pending) < self.in_flight:
                item = next(chunks, None)
                if item is None:
                    more = False
                    break
                key, values = item
                # Nothing to run (blank lines, inputs that could not be read): None stands for no results.
                pending.append((key, len(values), self._submit(values) if values else None))
            if not pending:
                return
            key, size, head = pending[0]
            raise_swallowed()  # a Ctrl-C raised in a __del__ (a Dask future's, dropped here or below) is not lost
            while head is not None and head not in counted:
                # Waiting for the oldest chunk, count the others as they finish: progress across workers.
                sizes = {future: n for _, n, future in pending if future is not None and future not in counted}
                for future in self._first_done(list(sizes)):
                    counted.add(future)
                    if done is not None:
                        done(sizes[future])
                raise_swallowed()
            pending.popleft()
            counted.discard(head)
            yield key, [] if head is None else self._outcome(head)


class WorkerPool(ChunkPool):
    """``workers`` processes that run chunks of one pipeline; ``workers=1`` runs them in this process.

    Use it as a context manager: leaving it, normally or on an exception
    (Ctrl-C, a failure of the output, a reader that went away), ends the
    workers at once. ``in_flight`` (default: twice the workers) bounds the
    chunks sent and not yet given back by :meth:`map`. ``threads`` is each
    worker's kernel threads (default: the cores shared out, unless
    OMP_NUM_THREADS or a BLAS variable is set, which the workers then inherit).
    """

    def __init__(self, pipe: Pipeline, workers: int, *, in_flight: int | None = None,
                 threads: int | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.pipe = pipe
        self.workers = workers
        self.serial = workers == 1
        self.in_flight = in_flight if in_flight is not None else 2 * workers
        if self.in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, not {self.in_flight}")
        if threads is None and not any(variable in os.environ for variable in THREAD_VARIABLES):
            threads = worker_threads(workers)
        self.threads = threads
        self._executor: Any = None

    def __enter__(self) -> WorkerPool:
        if not self.serial:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            try:
                pickled = pickle.dumps(self.pipe)
            except Exception as error:
                raise WorkerError(f"{self.pipe!r} cannot be sent to worker processes: {error}") from error
            self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(START_METHOD),
                                                 initializer=_start_worker, initargs=(pickled, self.threads))
        return self

    def __exit__(self, *_: object) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # The workers are ended, not waited for: on an error or Ctrl-C their running chunks would be finished
        # (and waited for at exit) although nobody reads them, and once every result is in, a worker holds
        # nothing more, yet its interpreter took 0.1-0.2 s to wind down. The executor has no public way to end
        # its processes before Python 3.14's terminate_workers, which does what follows; shutdown forgets
        # them, so they are taken first.
        processes = list((getattr(executor, "_processes", None) or {}).values())
        manager = getattr(executor, "_executor_manager_thread", None)
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        # Its thread that manages the workers closes a pipe as it ends, and Python 3.11's exit handler writes to
        # that pipe unlocked: a thread still ending at exit printed "Exception ignored ... Bad file descriptor"
        # after one run in four of `summarize --workers 2`. Once the workers are gone it ends at once.
        if manager is not None:
            manager.join(timeout=5)

    def stamp(self) -> dict:
        """The pipeline's stamp. With worker processes, theirs: each loads the model as it starts (the stamp
        asks for it), so it is loaded where the engine runs, and not in this process too."""
        if self.serial:
            return self.pipe.stamp()
        self._entered()
        # One call per worker, so that all of them start now, each loading the model.
        calls = [self._call(_stamp_in_worker) for _ in range(self.workers)]
        return self._outcome(calls[0])

    def _entered(self) -> None:
        if self._executor is None:
            raise RuntimeError("WorkerPool needs to be entered first (with WorkerPool(...) as pool)")

    def _submit(self, values: list) -> Any:
        self._entered()
        return self._call(_run_in_worker, values)

    def _call(self, function: Callable, *args: Any) -> Any:
        from concurrent.futures.process import BrokenProcessPool

        # A worker may be started by this submit: it inherits SIGINT blocked, so that a Ctrl-C while it starts
        # cannot end it half-way with a traceback (it ignores SIGINT once started); this process gets its
        # Ctrl-C when the mask is restored.
        block = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
        if block:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return self._executor.submit(function, *args)
        except BrokenProcessPool as error:  # a worker died while an earlier chunk ran
            raise _worker_died() from error
        finally:
            if block:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    def _first_done(self, futures: list) -> set:
        from concurrent.futures import FIRST_COMPLETED, wait

        return wait(futures, return_when=FIRST_COMPLETED).done

    def _outcome(self, future: Any) -> list[dict | ErrorRecord]:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return future.result()
        except BrokenProcessPool as error:
            raise _worker_died() from error


def _worker_died() -> WorkerError:
    return WorkerError("a worker process ended without finishing its chunk of inputs (killed, or out of memory?);"
                       " the run stops there")


def map(pipe: Pipeline, inputs: Iterable, *, workers: int = 2, chunk_size: int = DEFAULT_CHUNK_SIZE,
        in_flight: int | None = None, threads: int | None = None) -> Iterator[dict | ErrorRecord]:
    """``pipe``'s results for ``inputs``, in order, computed in ``workers`` processes, lazily: inputs are read
    ``chunk_size`` at a time and at most ``in_flight`` chunks (default: twice the workers) are out at once.

    The results are those of ``pipe(inputs)``; with ``on_error="skip"`` a
    failed input's ErrorRecord holds a :class:`RemoteInputError` (its text
    and exit code) in place of the exception. The workers end when the
    iterator is exhausted or closed.
    """
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int of at least 1, not {chunk_size!r}")
    with WorkerPool(pipe, workers, in_flight=in_flight, threads=threads) as pool:
        for _, results in pool.map((None, chunk) for chunk in chunked(iter(inputs), chunk_size)):
            yield from results
