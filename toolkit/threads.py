"""How many threads OpenMP and BLAS use: ``use_threads`` for scripts and benchmarks that take
``--threads``, ``serial_blas`` for code whose BLAS calls must not fan out over threads, and
``short_blas_spin`` for training."""

from __future__ import annotations

import os
import threading

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def use_threads(n: int) -> None:
    """Have OpenMP, OpenBLAS and MKL use ``n`` threads.

    They read these variables when their thread pools start, so call this
    before numpy, the kernels or torch are imported; this module imports
    none of them.
    """
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(n)


# OpenBLAS's idle threads spin for 2**this CPU cycles after a product before they sleep (its default is 28, some
# 0.1 s); 4, its least, has them sleep at once.
SHORT_BLAS_SPIN = "4"


def short_blas_spin() -> bool:
    """Have OpenBLAS's threads sleep as soon as a product ends, unless the user set OPENBLAS_THREAD_TIMEOUT;
    whether it was set. OpenBLAS reads it as it loads: call this before numpy is imported.

    For training: each step alternates numpy's products (OpenBLAS's threads)
    with the kernels (OpenMP's threads), and the BLAS threads spinning after
    a product kept the cores from the kernel that came next. A language
    model's training step ran 12-18 % faster on 2 cores with them sleeping.
    Not for decoding, whose products are small and many: translation ran
    some 10 % slower, each product waking the threads again.
    """
    if "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        return False
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = SHORT_BLAS_SPIN
    return True


class SerialBlas:
    """A context manager that keeps BLAS on one thread while any caller is inside it.

    Two kinds of callers need it. The compiled kernels call ``sgemm`` from
    inside their OpenMP threads: a threaded BLAS (OpenBLAS with pthreads, as
    scipy ships) would start its own threads on top, oversubscribing the
    cores and spinning (measured: 2-3x slower on 2 cores); scikit-learn
    limits BLAS the same way around its prange loops. And code that makes
    many small products, such as the summarizers' sentence similarities: a
    threaded BLAS wakes its threads for products just past its size
    threshold, which cost a third of a news article's summary time.

    The limit is process-wide, so it is counted: set when the first caller
    enters, restored when the last one leaves. The BLAS libraries are looked
    up (with threadpoolctl) at the first use; one loaded later is not limited.
    Entering and leaving cost about a microsecond.

    threadpoolctl 3.8 lets only one "controlling" Python thread set the
    OpenBLAS (pthreads) limit and silently ignores the others, so a kernel
    called from a worker thread ran with threaded BLAS inside its OpenMP
    threads: oversubscribed, and with results that depended on what ran
    beside it. This class serialises its own changes under its lock, so it
    takes control for each change and gives it back after.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._libraries: list | None = None
        self._saved: list[int] = []

    def __enter__(self) -> SerialBlas:
        with self._lock:
            if self._users == 0:
                if self._libraries is None:
                    from threadpoolctl import ThreadpoolController

                    self._libraries = ThreadpoolController().select(user_api="blas").lib_controllers
                self._saved = [library.num_threads for library in self._libraries]
                self._set([1] * len(self._libraries))
            self._users += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._set(self._saved)

    def _set(self, counts: list[int]) -> None:
        for library, n in zip(self._libraries, counts):
            release = getattr(type(library), "clear_controlling_thread", None)
            if release is not None:
                release(force=True)
            library.set_num_threads(n)
            if release is not None:
                release(force=True)


serial_blas = SerialBlas()
