"""Coverage-guided fuzzer (atheris) for the kernel bindings, toolkit.kernels.

Contract under test (docs/kernels.md, "Errors"): every call either returns
arrays of the documented shapes and dtypes, or raises TypeError, ValueError
or IndexError; it never crashes the process. When the call returns and its
inputs are finite and moderate, the result must also match the numpy
reference (toolkit.numpy_kernels) within float32 tolerance: a wrong answer is
a crash too.

Each input drives one call: the first byte picks the kernel, the rest gives
shapes, dtypes, layouts (non-contiguous, wrong rank, read-only), values
(including NaN, inf and huge ones) and scalar arguments (vocab_size,
padding_idx, scale, padding) through atheris.FuzzedDataProvider.

Coverage: atheris measures the Python it instruments (the bindings' checks
in toolkit._checks and toolkit.kernels). The C kernels are compiled by gcc,
which cannot emit libFuzzer's coverage counters, so they are exercised but do
not guide the mutations; a crash in C still ends the run, and under
``FUZZ_SANITIZE=1`` scripts/fuzz.sh loads the AddressSanitizer build so that
memory errors in C are caught even when they would not crash.

Run through ``scripts/fuzz.sh kernels MINUTES``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record_crash  # noqa: E402

with atheris.instrument_imports(include=["toolkit"]):
    import numpy as np
    import toolkit.kernels as K
    import toolkit.numpy_kernels as N

TARGET = "kernels"
ALLOWED = (TypeError, ValueError, IndexError)
HOSTILE_SCALARS = [0, -1, 1, 2**31 - 1, 2**31, 2**63, -(2**63), 10**30, 1.5, float("nan"), float("inf"),
                   float("-inf"), 1e39, -1e39, 3.4e38, 1e-45, None, True, "3", b"x", [1]]
DTYPES = [np.float32, np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_, np.complex64]


class Draw:
    """Arguments drawn from the fuzzer's bytes."""

    def __init__(self, data: bytes) -> None:
        self.fdp = atheris.FuzzedDataProvider(data)

    def int(self, lo: int, hi: int) -> int:
        return self.fdp.ConsumeIntInRange(lo, hi)

    def chance(self, sixteenths: int) -> bool:
        return self.fdp.ConsumeIntInRange(0, 15) < sixteenths

    def values(self, n: int) -> np.ndarray:
        kind = self.int(0, 7)
        if kind <= 3:
            # Reproducible moderate data seeded from the input: the interesting
            # part is the shapes, and random bytes make poor floats.
            return np.random.default_rng(self.int(0, 2**32 - 1)).standard_normal(n)
        if kind <= 5:
            raw = np.frombuffer(self.fdp.ConsumeBytes(4 * n).ljust(4 * n, b"\0"), np.float32)
            return raw.astype(np.float64)
        special = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e30, -1e30, 1e-40, 3.4e38])
        picks = [self.int(0, len(special) - 1) for _ in range(min(n, 64))] + [0] * max(n - 64, 0)
        return special[np.array(picks, dtype=np.int64)]

    def array(self, shape: tuple, dtype: type = np.float32) -> object:
        """A float32 (or given-dtype) array of ``shape``, sometimes bent: wrong dtype, rank, layout, or no array."""
        n = int(np.prod(shape)) if shape else 1
        a = self.values(n).reshape(shape) if dtype == np.float32 else None
        if a is None:
            a = np.array([self.int(-3, 12) for _ in range(min(n, 256))] + [0] * max(n - 256, 0)).reshape(shape)
        with np.errstate(all="ignore"):
            a = a.astype(dtype)
        if not self.chance(2):
            return a
        how = self.int(0, 7)
        if how == 0:
            with np.errstate(all="ignore"):
                return a.astype(DTYPES[self.int(0, len(DTYPES) - 1)])
        if how == 1 and a.ndim >= 1:  # same shape, not contiguous
            big = np.repeat(a, 2, axis=-1)
            return big[..., ::2]
        if how == 2 and a.ndim >= 2:
            return np.ascontiguousarray(np.swapaxes(a, 0, 1))
        if how == 3:
            return a[None]
        if how == 4 and a.ndim >= 1:
            return a.reshape(-1)[: max(a.size - 1, 0)]
        if how == 5:
            a.flags.writeable = False
            return a
        if how == 6:
            return a.tolist()
        return np.zeros(tuple(self.int(0, 3) for _ in range(a.ndim)), a.dtype)

    def scalar(self, normal: object) -> object:
        if self.chance(13):
            return normal
        return HOSTILE_SCALARS[self.int(0, len(HOSTILE_SCALARS) - 1)]




def copy_arg(a: object) -> object:
    return a.copy() if isinstance(a, np.ndarray) else a


def differential(name: str, args: tuple, scale: float | None, safe: bool = True) -> None:
    """Call the kernel ``name`` and its numpy reference on the same arguments and hold them to each other.

    Both run the same argument checks, so they must refuse the same calls with
    the same exception type; when both return, the results must have the same
    shapes and dtypes and, if ``scale`` is given (finite, moderate inputs),
    agree within float32 tolerance of terms of that size. ``safe`` False
    skips the reference (arguments that would make it allocate gigabytes).
    """
    try:
        got = getattr(K, name)(*[copy_arg(a) for a in args])
    except ALLOWED as err:
        if safe:
            try:
                getattr(N, name)(*[copy_arg(a) for a in args])
            except type(err):
                return
            except ALLOWED as other:
                raise AssertionError(f"{name}: kernel raised {type(err).__name__}, reference {type(other).__name__}")
            raise AssertionError(f"{name}: kernel refused what the reference took: {err}")
        return
    if not safe:
        return
    want = getattr(N, name)(*[copy_arg(a) for a in args])
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for i, (g, w) in enumerate(zip(got, want)):
        if g.shape != w.shape or g.dtype != w.dtype:
            raise AssertionError(f"{name} result {i}: {g.shape} {g.dtype}, reference {w.shape} {w.dtype}")
        if scale is None or (name == "conv1d_relu_maxpool_forward" and i == 1):
            continue  # argmax: near-ties may pick another step in float32
        g64, w64 = g.astype(np.float64), w.astype(np.float64)
        if not np.allclose(g64, w64, rtol=1e-3, atol=1e-3 * scale, equal_nan=True):
            worst = float(np.nanmax(np.abs(g64 - w64)))
            raise AssertionError(f"{name} result {i}: differs from the reference by {worst:.3g} (scale {scale:.3g})")


def moderate(*arrays: object) -> bool:
    return all(a is None or (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.size > 0
                             and bool(np.all(np.abs(a) < 1e4))) for a in arrays)


def peak(*arrays: object) -> float:
    return max(float(np.abs(a).max()) for a in arrays if isinstance(a, np.ndarray) and a.size)


def small_vocab(vocab: object) -> bool:
    return isinstance(vocab, (int, np.integer)) and not isinstance(vocab, bool) and vocab <= 4096


def embedding(d: Draw, which: int) -> None:
    V, D = d.int(1, 9), d.int(1, 6)
    shape = tuple(d.int(0, 4) for _ in range(d.int(0, 3)))
    n = int(np.prod(shape)) if shape else 1
    ids = np.array([d.int(-2, V + 1) if d.chance(1) else d.int(0, V - 1) for _ in range(n)], np.int64).reshape(shape)
    if d.chance(8):
        ids = ids.astype(np.int32)
    if d.chance(1):
        ids = d.array(shape, np.float32)
    if which == 0:
        table = d.array((V, D))
        differential("embedding_forward", (table, ids), 0.0 if moderate(table) else None)
        return
    grad = d.array(shape + (D,))
    vocab = d.scalar(V)
    pad = d.scalar(None if d.chance(8) else d.int(0, V - 1))
    safe = small_vocab(vocab)
    scale = peak(grad) * max(n, 1) + 1.0 if moderate(grad) else None
    if which == 1:
        out = d.array((V, D)) if d.chance(4) else None
        if out is not None and not moderate(out):
            scale = None
        differential("embedding_backward", (grad, ids, vocab, pad, out), scale, safe)
        return
    differential("embedding_backward_sparse", (grad, ids, vocab, pad), scale, safe)


def conv(d: Draw, which: int) -> None:
    B, T, C, K_, F = d.int(1, 3), d.int(1, 12), d.int(1, 20), d.int(1, 6), d.int(1, 20)
    if d.chance(6):  # the Winograd path: K in (3, 5), C and F >= 16
        K_, C, F = (3, 5)[d.int(0, 1)], d.int(16, 20), d.int(16, 20)
    padding = d.scalar(("valid", "same")[d.int(0, 1)])
    x, w = d.array((B, T, C)), d.array((K_, C, F))
    b = d.array((F,)) if d.chance(8) else None
    To = T if padding == "same" else T - K_ + 1
    term = peak(x) * peak(w) * K_ * C + 1.0 if moderate(x, w) else None
    if which == 3:
        differential("conv1d_forward", (x, w, b, padding), term if moderate(b) else None)
    elif which == 4:
        dy = d.array((B, max(To, 1), F))
        scale = term * peak(dy) * T + 1.0 if term and moderate(dy) else None
        differential("conv1d_backward", (dy, x, w, padding), scale)
    elif which == 5:
        differential("conv1d_relu_maxpool_forward", (x, w, b, padding), term if moderate(b) else None)
    else:
        dpooled, pooled = d.array((B, F)), d.array((B, F))
        argmax = np.array([d.int(-1, max(To, 1)) if d.chance(1) else d.int(0, max(To - 1, 0))
                           for _ in range(B * F)], np.int32).reshape(B, F)
        scale = term * peak(dpooled) + 1.0 if term and moderate(dpooled, pooled) else None
        differential("conv1d_relu_maxpool_backward", (dpooled, x, w, pooled, argmax, padding), scale)


def attention(d: Draw, which: int) -> None:
    B, H, Tq, Tk, D, Dv = d.int(1, 2), d.int(1, 2), d.int(1, 9), d.int(1, 9), d.int(1, 6), d.int(1, 6)
    q, k, v = d.array((B, H, Tq, D)), d.array((B, H, Tk, D)), d.array((B, H, Tk, Dv))
    mask = None
    if d.chance(6):
        mask = np.array([d.chance(5) for _ in range(B * Tk)]).reshape(B, Tk)
        if d.chance(2):
            mask = d.array((B, Tk), (np.int64, np.float32, np.bool_)[d.int(0, 2)])
    causal = d.chance(8)
    scale = d.scalar(None if d.chance(8) else d.fdp.ConsumeFloatInRange(-3.0, 3.0))
    # Values are compared only where float32 logits cannot overflow (both refuse a scale beyond float32).
    s = 1.0 if scale is None else scale
    bounded = (moderate(q, k, v) and isinstance(s, (int, float)) and not isinstance(s, bool) and
               abs(s) * peak(q) * peak(k) * D < 30)
    if which == 7:
        differential("attention_forward", (q, k, v, mask, causal, scale), peak(v) + 1.0 if bounded else None)
        return
    try:
        out, lse = K.attention_forward(q, k, v, mask, causal, scale)
        consistent = True
    except ALLOWED:
        # The kernel's backward trusts out and lse to come from its forward;
        # the reference recomputes them, so made-up ones are compared for
        # refusals and shapes only.
        out, lse = d.array((B, H, Tq, Dv)), d.array((B, H, Tq))
        consistent = False
    dout = d.array((B, H, Tq, Dv))
    # dq and dk are scale times differences of nearly equal products: their
    # float32 rounding grows with the scale even where the logits are small.
    size = (max(abs(s), 1.0) * peak(dout) * (peak(v) + 1) * (peak(q) + peak(k) + 1) * Tk + 1.0
            if bounded and consistent and moderate(dout) else None)
    differential("attention_backward", (dout, q, k, v, out, lse, mask, causal, scale), size)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    d = Draw(data)
    which = d.int(0, 8)
    try:
        with np.errstate(all="ignore"):
            if which <= 2:
                embedding(d, which)
            elif which <= 6:
                conv(d, which)
            else:
                attention(d, which)
    except MemoryError as err:
        # Legitimate only for a vocabulary so large that its gradient cannot
        # be allocated (up to 2**31 - 1 rows are accepted).
        if "Unable to allocate" not in str(err):
            record_crash(TARGET, data, err)
    except Exception as err:  # noqa: BLE001 - anything else breaks the contract
        record_crash(TARGET, data, err)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
