"""Kernel speed: ours vs PyTorch CPU vs our numpy reference, side by side.

    python benchmarks/kernels.py [--repeats 20] [--threads 2] [--skip-numpy]

Each case times forward, and forward + backward, of one kernel at the
reference shapes of issue 2, and the second round's kernels at issue 23's:
layer norm (plain and fused with the residual add) and GELU (tanh and exact)
on 8192 tokens x 768, and one decode step of attention (B=8, H=12, D=64,
against a cache of 1024 positions, full and ragged) against PyTorch's SDPA
with one query. The decode step has no backward (its fwd+bwd row is skipped). The softmax cross-entropy fused with
the output projection (linear_cross_entropy) runs against PyTorch's
``F.cross_entropy(F.linear(h, w), t)`` at N=2048 tokens, D=256, V=8000 and
N=2048, D=768, V=50257 (GPT-2's vocabulary); its fwd+bwd row is followed by
each contender's peak memory above its inputs (Linux), next to the size of
the logits matrix that ours never stores, and by the one-call form
(linear_cross_entropy_with_grad, no recomputation) timed against torch again.

Every row also gives our rate against a physical limit of the machine,
measured in the same run and timed interleaved with that row's contenders:
GFLOP/s against the GEMM peak (a 2048 x 2048 float32 product through
scipy's sgemm, the BLAS the kernels call) for the compute-bound kernels
(attention, conv1d, cross-entropy), GB/s against a 64 MB copy (bytes read +
written) for the memory-bound ones (embedding, layer norm, GELU, and the
decode step, counted as the bytes of cache it reads). A row with a target of
issue 23 (attention: 1.3x PyTorch forward, 1.5x forward + backward; the
decode step: 2x) gets a "limit" line: the limit that bounds it (the GEMM
peak; for the decode step, which only reads its cache, a 64 MB read through
BLAS sgemv), our rate and PyTorch's as fractions of it, and the fraction the
target needs, target x PyTorch's, which above 1.00 no code reaches
(benchmarks/shared/machine.py). All contenders run interleaved in one process
(ours, torch, numpy, ours, ...) so that the machine's background noise hits
them alike; the table reports medians after warm-up and the ratios
peer time / our time (above 1.0: we are faster).

PyTorch is a benchmark-only dependency (`pip install torch==2.13.0` here);
without it the torch column says "n/a" and the rest still runs.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

from toolkit.threads import use_threads


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=20, help="timed repeats per contender (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    p.add_argument("--threads", type=int, default=2, help="threads for every contender (default 2)")
    p.add_argument("--skip-numpy", action="store_true", help="leave out the (slow) numpy reference")
    p.add_argument("--only", default="", help="run only cases whose name contains this text")
    return p.parse_args()


args = parse_args()
# Thread counts must be fixed before numpy, torch or our kernels start their pools.
use_threads(args.threads)
# After each product OpenBLAS's idle threads spin for about 2^28 cycles (0.1 s) before
# they sleep, on the cores the next contender needs: timed right after the GEMM
# reference, attention here ran up to 1.3x slower. They sleep at once with this.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402

import toolkit.kernels as ours  # noqa: E402
import toolkit.numpy_kernels as ref  # noqa: E402

sys.path.append(str(Path(__file__).resolve().parent / "shared"))
import machine  # noqa: E402

try:
    import torch
    import torch.nn.functional as TF

    torch.set_num_threads(args.threads)
except ImportError:
    torch = None

rng = np.random.default_rng(0)


def randn(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def tt(a: np.ndarray, grad: bool = False):
    t = torch.from_numpy(a.copy())
    return t.requires_grad_(grad)


# Each case builder returns {contender: (forward, forward_backward)}; a
# contender missing from the dict is reported as n/a.
Case = dict[str, tuple[Callable[[], object], Callable[[], object]]]


def embedding_case() -> Case:
    V, D, B, T = 20_000, 128, 64, 400
    table, ids = randn(V, D), rng.integers(0, V, (B, T)).astype(np.int64)
    g = randn(B, T, D)
    case: Case = {}
    for name, k in (("ours", ours), ("numpy", ref)):
        case[name] = (
            lambda k=k: k.embedding_forward(table, ids),
            lambda k=k: (k.embedding_forward(table, ids), k.embedding_backward(g, ids, V)),
        )
    if torch is not None:
        w, i, gt = tt(table, True), torch.from_numpy(ids), tt(g)

        def fb():
            w.grad = None
            TF.embedding(i, w).backward(gt)

        case["torch"] = (lambda: TF.embedding(i, w.detach()), fb)
    return case


def conv_cases() -> dict[str, Case]:
    B, T, C, K, F = 64, 400, 128, 5, 128
    x, w, b = randn(B, T, C), randn(K, C, F, scale=0.05), randn(F)
    dy, dp = randn(B, T - K + 1, F), randn(B, F)
    plain: Case = {}
    fused: Case = {}
    for name, k in (("ours", ours), ("numpy", ref)):
        plain[name] = (
            lambda k=k: k.conv1d_forward(x, w, b),
            lambda k=k: (k.conv1d_forward(x, w, b), k.conv1d_backward(dy, x, w)),
        )

        def fused_fb(k=k):
            pooled, arg = k.conv1d_relu_maxpool_forward(x, w, b)
            return k.conv1d_relu_maxpool_backward(dp, x, w, pooled, arg)

        fused[name] = (lambda k=k: k.conv1d_relu_maxpool_forward(x, w, b), fused_fb)
    if torch is not None:
        # torch gets its own native layout, (B, C, T) input and (F, C, K) weights.
        xt = tt(np.ascontiguousarray(x.transpose(0, 2, 1)), True)
        wt = tt(np.ascontiguousarray(w.transpose(2, 1, 0)), True)
        bt, dyt, dpt = tt(b, True), tt(np.ascontiguousarray(dy.transpose(0, 2, 1))), tt(dp)

        def zero():
            xt.grad = wt.grad = bt.grad = None

        def conv_fb():
            zero()
            TF.conv1d(xt, wt, bt).backward(dyt)

        def fused_fwd():
            with torch.no_grad():
                return torch.relu(TF.conv1d(xt, wt, bt)).amax(dim=2)

        def fused_fb_t():
            zero()
            torch.relu(TF.conv1d(xt, wt, bt)).amax(dim=2).backward(dpt)

        plain["torch"] = (lambda: TF.conv1d(xt.detach(), wt.detach(), bt.detach()), conv_fb)
        fused["torch"] = (fused_fwd, fused_fb_t)
    return {
        f"conv1d valid {B}x{T}x{C} K={K} F={F}": plain,
        f"fused conv+relu+maxpool {B}x{T}x{C} K={K} F={F}": fused,
    }


def attention_case(B: int, H: int, T: int, D: int, causal: bool) -> Case:
    q, k, v, do = (randn(B, H, T, D) for _ in range(4))
    case: Case = {}
    for name, mod in (("ours", ours), ("numpy", ref)):

        def fb(mod=mod):
            out, lse = mod.attention_forward(q, k, v, causal=causal)
            return mod.attention_backward(do, q, k, v, out, lse, causal=causal)

        case[name] = (lambda mod=mod: mod.attention_forward(q, k, v, causal=causal), fb)
    if torch is not None:
        qt, kt, vt, dot_ = tt(q, True), tt(k, True), tt(v, True), tt(do)

        def fwd():
            with torch.no_grad():
                return TF.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)

        def fb_t():
            qt.grad = kt.grad = vt.grad = None
            TF.scaled_dot_product_attention(qt, kt, vt, is_causal=causal).backward(dot_)

        case["torch"] = (fwd, fb_t)
    return case


def layer_norm_cases() -> dict[str, Case]:
    N, D = 8192, 768
    x, r, g, b, dy, ds = randn(N, D), randn(N, D), randn(D), randn(D), randn(N, D), randn(N, D)
    plain: Case = {}
    fused: Case = {}
    for name, k in (("ours", ours), ("numpy", ref)):

        def fb(k=k):
            y, mean, rstd = k.layer_norm_forward(x, g, b)
            return k.layer_norm_backward(dy, x, g, mean, rstd)

        def fused_fb(k=k):
            y, s, mean, rstd = k.add_layer_norm_forward(x, r, g, b)
            return k.layer_norm_backward(dy, s, g, mean, rstd, ds)

        plain[name] = (lambda k=k: k.layer_norm_forward(x, g, b), fb)
        fused[name] = (lambda k=k: k.add_layer_norm_forward(x, r, g, b), fused_fb)
    if torch is not None:
        xt, rt, gt, bt, dyt, dst = tt(x, True), tt(r, True), tt(g, True), tt(b, True), tt(dy), tt(ds)

        def fwd():
            with torch.no_grad():
                return TF.layer_norm(xt, (D,), gt, bt)

        def fb_t():
            xt.grad = gt.grad = bt.grad = None
            TF.layer_norm(xt, (D,), gt, bt).backward(dyt)

        def fused_fwd():
            with torch.no_grad():
                s = xt + rt
                return TF.layer_norm(s, (D,), gt, bt), s

        def fused_fb_t():
            xt.grad = rt.grad = gt.grad = bt.grad = None
            s = xt + rt
            torch.autograd.backward([TF.layer_norm(s, (D,), gt, bt), s], [dyt, dst])

        plain["torch"] = (fwd, fb_t)
        fused["torch"] = (fused_fwd, fused_fb_t)
    return {f"layer_norm {N}x{D}": plain, f"add+layer_norm {N}x{D}": fused}


def gelu_case(approximate: str) -> Case:
    x, dy = randn(8192, 768), randn(8192, 768)
    case: Case = {}
    for name, k in (("ours", ours), ("numpy", ref)):
        case[name] = (
            lambda k=k: k.gelu_forward(x, approximate),
            lambda k=k: (k.gelu_forward(x, approximate), k.gelu_backward(dy, x, approximate)),
        )
    if torch is not None:
        xt, dyt = tt(x, True), tt(dy)

        def fwd():
            with torch.no_grad():
                return TF.gelu(xt, approximate=approximate)

        def fb_t():
            xt.grad = None
            TF.gelu(xt, approximate=approximate).backward(dyt)

        case["torch"] = (fwd, fb_t)
    return case


DECODE = dict(B=8, H=12, L=1024, D=64)


def decode_case(ragged: bool) -> Case:
    """One new query per sequence against a (B, H, 1024, 64) cache; ragged: lengths 64..1024 and left padding."""
    B, H, L, D = DECODE["B"], DECODE["H"], DECODE["L"], DECODE["D"]
    q, k, v = randn(B, H, 1, D), randn(B, H, L, D), randn(B, H, L, D)
    lengths = np.linspace(64, L, B).astype(np.int64) if ragged else np.full(B, L, np.int64)
    starts = (lengths // 8) if ragged else None
    case: Case = {}
    for name, mod in (("ours", ours), ("numpy", ref)):
        case[name] = (lambda mod=mod: mod.attention_decode(q, k, v, lengths, starts), None)
    if torch is not None:
        qt, kt, vt = tt(q), tt(k), tt(v)
        # torch reads the same preallocated cache; the ragged batch needs a boolean mask (True = attend).
        pos = torch.arange(L)
        lo = torch.from_numpy(starts if starts is not None else np.zeros(B, np.int64))
        mask = ((pos >= lo[:, None]) & (pos < torch.from_numpy(lengths)[:, None]))[:, None, None, :]

        def fwd():
            with torch.no_grad():
                if ragged:
                    return TF.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask)
                return TF.scaled_dot_product_attention(qt, kt, vt)

        case["torch"] = (fwd, None)
    return case


def decode_bytes(ragged: bool) -> int:
    B, H, L, D = DECODE["B"], DECODE["H"], DECODE["L"], DECODE["D"]
    lengths = np.linspace(64, L, B).astype(np.int64) if ragged else np.full(B, L, np.int64)
    read = lengths - (lengths // 8 if ragged else 0)
    return int(read.sum()) * H * D * 4 * 2  # keys and values, float32


# The physical references (benchmarks/shared/machine.py), timed interleaved with the
# contenders of each row so that the same background load hits them: each unit of work is
# set against one (GFLOP against the GEMM peak, GB against the copy), and a row with a
# target of issue 23 also against the limit that decides whether the target can be reached
# (attention: the GEMM peak; the decode step, which only reads its cache: the read).
UNIT_REFERENCE = {"GFLOP": "gemm", "GB": "copy"}


def numpy_gemm_rate(repeats: int) -> float:
    a = np.ones((machine.GEMM_N, machine.GEMM_N), np.float32)
    c = np.empty_like(a)
    med = time_interleaved({"numpy": lambda: np.matmul(a, a, out=c)}, repeats, 1)["numpy"]
    return 2.0 * machine.GEMM_N**3 / med / 1e9


CROSS_ENTROPY = ((2048, 256, 8000), (2048, 768, 50257))


def cross_entropy_inputs(N: int, D: int, V: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return randn(N, D), randn(V, D, scale=0.05), rng.integers(0, V, N).astype(np.int64)


def cross_entropy_case(N: int, D: int, V: int) -> Case:
    h, w, t = cross_entropy_inputs(N, D, V)
    case: Case = {}
    # The numpy reference holds several float64 (N, V) matrices: only at the small vocabulary.
    for name, k in (("ours", ours), ("numpy", ref)) if V <= 10_000 else (("ours", ours),):

        def fb(k=k):
            _, lse = k.linear_cross_entropy(h, w, t)
            return k.linear_cross_entropy_backward(h, w, t, lse)

        case[name] = (lambda k=k: k.linear_cross_entropy(h, w, t), fb)
    # Not a column of the table: timed against torch on a line of its own after the fwd+bwd row.
    case["ours one call"] = (None, lambda: ours.linear_cross_entropy_with_grad(h, w, t))
    if torch is not None:
        ht, wt, tt_ = tt(h, True), tt(w, True), torch.from_numpy(t)

        def fwd():
            with torch.no_grad():
                return TF.cross_entropy(TF.linear(ht, wt), tt_)

        def fb_t():
            ht.grad = wt.grad = None
            TF.cross_entropy(TF.linear(ht, wt), tt_).backward()

        case["torch"] = (fwd, fb_t)
    return case


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def peak_memory_mb(fn: Callable[[], object]) -> float | None:
    """MB by which the process's peak resident memory rises above the current one while ``fn`` runs (Linux)."""
    try:
        # Hand the allocator's free heap back first, so that reused pages do not hide what fn allocates.
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM, the peak, to the current resident size
        before = _status_kb("VmRSS")
        fn()
        return (_status_kb("VmHWM") - before) / 1024
    except (OSError, AttributeError):
        return None


def cross_entropy_report(label: str, case: Case, repeats: int, warmup: int) -> None:
    N, D, V = next(shape for shape in CROSS_ENTROPY if label.endswith(f"N={shape[0]} D={shape[1]} V={shape[2]}"))
    peaks = {c: peak_memory_mb(case[c][1]) for c in ("ours", "torch") if c in case}
    shown = ", ".join(f"{c} {p:.0f} MB" if p is not None else f"{c} n/a" for c, p in peaks.items())
    print(f"{'':<48} {'':<8} peak memory above the inputs: {shown}; the logits matrix is "
          f"{N * V * 4 / 2**20:.0f} MB")
    fns = {c: case[c][1] for c in ("ours one call", "torch") if c in case}
    one = time_interleaved(fns, repeats, warmup)
    versus = f", torch/ours {one['torch'] / one['ours one call']:.2f}" if "torch" in one else ""
    print(f"{'':<48} {'':<8} fwd+bwd in one call (linear_cross_entropy_with_grad): "
          f"{one['ours one call'] * 1e3:.2f} ms{versus} (torch {one.get('torch', float('nan')) * 1e3:.2f} ms)")


def attention_flops(B: int, H: int, T: int, D: int, causal: bool) -> float:
    """Forward FLOPs: two (T x T x D) products per (batch, head); causal counts only the visible
    T (T + 1) / 2 logits, since the kernels skip the masked tiles."""
    logits = T * (T + 1) / 2 if causal else T * T
    return 4.0 * B * H * logits * D


# Work per row, forward and forward + backward, for the rate column: ("GFLOP", n) is set
# against the GEMM peak, ("GB", n) against the copy bandwidth, both measured in the same
# run. Byte counts are the least traffic a kernel must make (each input read once, each
# output written once).
Work = tuple[str, float]


def all_work() -> dict[str, tuple[Work, Work]]:
    n, D = 64 * 400, 128  # embedding ids, width
    emb = 2 * n * D * 4 + n * 8
    B, T, C, K, F = 64, 400, 128, 5, 128
    conv = 2.0 * B * (T - K + 1) * K * C * F
    N, Dn = 8192, 768
    row = N * Dn * 4
    work: dict[str, tuple[Work, Work]] = {
        "embedding V=20000 D=128 ids 64x400": (("GB", emb), ("GB", emb + 20_000 * D * 4 + 3 * n * D * 4)),
        f"conv1d valid {B}x{T}x{C} K={K} F={F}": (("GFLOP", conv), ("GFLOP", 3 * conv)),
        f"fused conv+relu+maxpool {B}x{T}x{C} K={K} F={F}": (("GFLOP", conv), ("GFLOP", conv)),
        f"layer_norm {N}x{Dn}": (("GB", 2 * row), ("GB", 5 * row)),
        f"add+layer_norm {N}x{Dn}": (("GB", 4 * row), ("GB", 8 * row)),
        "gelu tanh 8192x768": (("GB", 2 * row), ("GB", 5 * row)),
        "gelu exact 8192x768": (("GB", 2 * row), ("GB", 5 * row)),
    }
    for Ba, Ha, Ta, Da, causal in ATTENTION:
        f = attention_flops(Ba, Ha, Ta, Da, causal)
        work[attention_label(Ba, Ha, Ta, Da, causal)] = (("GFLOP", f), ("GFLOP", 3.5 * f))
    for ragged in (False, True):
        b = decode_bytes(ragged)
        work[decode_label(ragged)] = (("GB", b), ("GB", b))
    for Nc, Dc, V in CROSS_ENTROPY:
        # The backward recomputes the forward's product, then makes the two gradient products.
        work[f"linear+cross_entropy N={Nc} D={Dc} V={V}"] = (("GFLOP", 2.0 * Nc * Dc * V), ("GFLOP", 8.0 * Nc * Dc * V))
    return work


ATTENTION = ((32, 8, 128, 64, False), (32, 8, 128, 64, True), (8, 8, 512, 64, False))


def attention_label(B: int, H: int, T: int, D: int, causal: bool) -> str:
    return f"attention B={B} H={H} T={T} D={D}" + (" causal" if causal else "")


def decode_label(ragged: bool) -> str:
    return "decode B=8 H=12 L=1024 D=64" + (" ragged" if ragged else "")


# Issue 23's targets over PyTorch, (label, pass) -> (target, the limit that bounds it).
TARGETS = {(attention_label(*shape), pass_name): (target, "gemm")
           for shape in ATTENTION for pass_name, target in (("fwd", 1.3), ("fwd+bwd", 1.5))}
TARGETS.update({(decode_label(ragged), "fwd"): (2.0, "read") for ragged in (False, True)})


def all_cases() -> dict[str, Case]:
    cases = {"embedding V=20000 D=128 ids 64x400": embedding_case()}
    cases.update(conv_cases())
    for B, H, T, D, causal in ATTENTION:
        cases[attention_label(B, H, T, D, causal)] = attention_case(B, H, T, D, causal)
    cases.update(layer_norm_cases())
    cases["gelu tanh 8192x768"] = gelu_case("tanh")
    cases["gelu exact 8192x768"] = gelu_case("none")
    for ragged in (False, True):
        cases[decode_label(ragged)] = decode_case(ragged)
    for N, D, V in CROSS_ENTROPY:
        cases[f"linear+cross_entropy N={N} D={D} V={V}"] = cross_entropy_case(N, D, V)
    return cases


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int) -> dict[str, float]:
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def main() -> int:
    contenders = ["ours", "torch"] + ([] if args.skip_numpy else ["numpy"])
    print(f"threads={args.threads} repeats={args.repeats} (median) openmp={ours.openmp_enabled()}")
    if torch is None:
        print("torch is not installed: the torch column is n/a (pip install torch==2.13.0, benchmark-only)")
    else:
        print(f"torch {torch.__version__} threads={torch.get_num_threads()}")
    print(f"references, timed beside each row: {machine.GEMM_N}x{machine.GEMM_N} float32 GEMM through scipy's "
          f"sgemm (the kernels' BLAS; numpy's matmul here: {numpy_gemm_rate(max(3, args.repeats // 4)):.0f} "
          "GFLOP/s), a 64 MB copy (read + write) and, beside the decode step, a 64 MB read (sgemv)")
    print("attention FLOPs: 4*B*H*T*T*D forward, 3.5x that forward+backward (backward 2.5x); "
          "causal counts the visible T*(T+1)/2 logits only")
    header = (f"{'case':<48} {'pass':<8} {'ours ms':>9} {'torch ms':>9} {'numpy ms':>9} {'torch/ours':>10} "
              f"{'numpy/ours':>10}  ours rate, reference, fraction")
    print(header)
    print("-" * len(header))
    work = all_work()
    for label, case in all_cases().items():
        if args.only and args.only not in label:
            continue
        for which, pass_name in ((0, "fwd"), (1, "fwd+bwd")):
            fns = {c: case[c][which] for c in contenders if c in case and case[c][which] is not None}
            if "ours" not in fns:
                continue  # forward-only kernels (decode)
            # The numpy reference is slow; fewer repeats keep the run short
            # without touching the ours-vs-torch medians.
            unit, amount = work[label][which]
            ref_name = UNIT_REFERENCE[unit]
            ref_fn, ref_amount, _, ref_label = machine.REFERENCES[ref_name]
            target, bound = TARGETS.get((label, pass_name), (None, None))
            timed = {c: f for c, f in fns.items() if c != "numpy"}
            timed[ref_name] = ref_fn
            if bound is not None:
                timed[bound] = machine.REFERENCES[bound][0]
            med = time_interleaved(timed, args.repeats, args.warmup)
            if "numpy" in fns:
                med.update(time_interleaved({"numpy": fns["numpy"]}, max(3, args.repeats // 5), 1))
            cell = lambda c: f"{med[c] * 1e3:9.2f}" if c in med else f"{'n/a':>9}"  # noqa: E731
            ratio = lambda c: f"{med[c] / med['ours']:10.2f}" if c in med else f"{'n/a':>10}"  # noqa: E731
            rate, ref_rate = amount / med["ours"] / 1e9, ref_amount / med[ref_name]
            print(f"{label:<48} {pass_name:<8} {cell('ours')} {cell('torch')} {cell('numpy')} {ratio('torch')} "
                  f"{ratio('numpy')}  {rate:6.1f} {unit}/s, {ref_label} {ref_rate:.1f}, {rate / ref_rate:.2f}")
            if target is not None and "torch" in med:
                _, bound_amount, bound_unit, bound_label = machine.REFERENCES[bound]
                limit = bound_amount / med[bound]
                print(f"{'':<48} {'':<8} limit: {bound_label} {limit:.1f} {bound_unit}/s; ours at {rate / limit:.2f};"
                      f" {machine.needed(target, amount / med['torch'] / 1e9, limit)}")
            if label.startswith("linear+cross_entropy") and pass_name == "fwd+bwd":
                cross_entropy_report(label, case, args.repeats, args.warmup)
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
