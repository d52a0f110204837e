"""Each side of a benchmark in a process of its own, the main process having them take turns call by call.

A contender is a class, built in its process from the number of threads
(``factory(threads)``), whose methods the main process calls with keyword
arguments; each method times its own work. Started with "spawn", a process
holds its own libraries, OpenMP runtime and thread pools and nothing of the
other side's: in one process the two OpenMP runtimes slowed whichever ran
second (docs/benchmarks.md, generate.py's runs 4 and 5). The factory must be
importable in the child: a class of the benchmark script, which "spawn"
imports again there.
"""

from __future__ import annotations

import resource
from typing import Any, Callable


def serve(factory: Callable[[int], Any], threads: int, connection: Any) -> None:
    """A contender's process: its thread counts fixed before numpy, torch or our kernels start their pools, then
    the calls of the main process, one at a time, until None."""
    from toolkit.threads import use_threads

    use_threads(threads)
    contender = factory(threads)
    while (call := connection.recv()) is not None:
        method, kwargs = call
        try:
            connection.send(("ok", getattr(contender, method)(**kwargs)))
        except Exception:  # the main process says what failed, then stops
            import traceback

            connection.send(("error", traceback.format_exc()))


class Contender:
    """A contender's process; :meth:`call` runs one of its methods there and returns the result."""

    def __init__(self, factory: Callable[[int], Any], threads: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=serve, args=(factory, threads, child), daemon=True)
        self.process.start()

    def call(self, method: str, **kwargs: Any) -> Any:
        self.connection.send((method, kwargs))
        status, value = self.connection.recv()
        if status != "ok":
            raise RuntimeError(f"the contender's {method} failed:\n{value}")
        return value

    def close(self) -> None:
        self.connection.send(None)
        self.process.join(timeout=60)


def peak_megabytes() -> float:
    """The calling process's peak resident memory so far (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
