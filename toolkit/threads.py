"""How many threads OpenMP and BLAS use, for scripts and benchmarks that take ``--threads``."""

from __future__ import annotations

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def use_threads(n: int) -> None:
    """Have OpenMP, OpenBLAS and MKL use ``n`` threads.

    They read these variables when their thread pools start, so call this
    before numpy, the kernels or torch are imported; this module imports
    none of them.
    """
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(n)
