"""The machine's physical limits, as references a benchmark times beside its own rows.

A ratio against PyTorch or transformers says who is faster; a rate against
these says how far the faster side is from the hardware, and so whether a
target ratio can be reached at all: if the peer already runs at a fraction
f of a limit, beating it k times needs k * f of that limit, and above 1 no
code can. Each reference is a callable that does a fixed amount of work:

- GEMM: a 2048 x 2048 float32 product through scipy's sgemm, the BLAS our
  kernels call (scipy.linalg.cython_blas), in GFLOP;
- copy: a 64 MB array copied, counted as bytes read + bytes written;
- read: a float32 matrix-vector product over a 64 MB matrix (BLAS sgemv),
  which reads the matrix once and writes almost nothing, in GB read.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np

GEMM_N = 2048
_gemm_a = np.asfortranarray(np.ones((GEMM_N, GEMM_N), np.float32))
_gemm_c = np.asfortranarray(np.empty((GEMM_N, GEMM_N), np.float32))
_copy_src = np.ones(16 * 2**20, np.float32)
_copy_dst = np.empty_like(_copy_src)
_read_matrix = np.asfortranarray(np.ones((64, 2**18), np.float32))  # 64 MB, 64 rows as a cache's head width
_read_vector = np.ones(64, np.float32)


def gemm_reference() -> None:
    from scipy.linalg.blas import sgemm

    sgemm(1.0, _gemm_a, _gemm_a, c=_gemm_c, overwrite_c=True)


def read_reference() -> None:
    from scipy.linalg.blas import sgemv

    sgemv(1.0, _read_matrix, _read_vector, trans=1)


# name -> (callable, units of work per call, unit, label)
REFERENCES: dict[str, tuple[Callable[[], None], float, str, str]] = {
    "gemm": (gemm_reference, 2.0 * GEMM_N**3 / 1e9, "GFLOP", "GEMM peak"),
    "copy": (lambda: np.copyto(_copy_dst, _copy_src), 2.0 * _copy_src.nbytes / 1e9, "GB", "copy"),
    "read": (read_reference, _read_matrix.nbytes / 1e9, "GB", "read (sgemv)"),
}


def rate(name: str, repeats: int = 5) -> float:
    """A reference's rate, units per second: the median of ``repeats`` calls after one warm-up call."""
    fn, amount, _, _ = REFERENCES[name]
    fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return amount / statistics.median(seconds)


def needed(target: float, peer_rate: float, limit: float) -> str:
    """What beating a peer ``target`` times asks of the machine: the fraction of ``limit`` the faster side
    must reach, given the peer's measured rate (above 1.00: no code can)."""
    fraction = target * peer_rate / limit
    beyond = ": beyond the machine" if fraction > 1.0 else ""
    return f"{target:g}x the peer needs {fraction:.2f} of it (the peer at {peer_rate / limit:.2f}){beyond}"
