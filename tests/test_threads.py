"""The compiled kernels under concurrency: Python threads, and OpenMP thread counts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import toolkit.kernels as K

N_THREADS = 4
REPEATS = 3


def make_inputs(seed: int) -> dict:
    """One thread's inputs, big enough that the kernels take their parallel paths."""
    rng = np.random.default_rng(seed)

    def randn(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    V, D = 3000, 48
    ids = rng.integers(0, V, size=(8, 200))
    x, w, b = randn(4, 150, 12), randn(3, 12, 20) / 6, randn(20)
    q, k, v = randn(2, 2, 140, 16), randn(2, 2, 530, 16), randn(2, 2, 530, 8)
    mask = rng.random((2, 530)) < 0.2
    return dict(
        table=randn(V, D), ids=ids, grad_out=randn(8, 200, D), V=V,
        x=x, w=w, b=b, dy=randn(4, 148, 20), dpooled=randn(4, 20),
        q=q, k=k, v=v, mask=mask, dout=randn(2, 2, 140, 8),
    )


def run_all(a: dict) -> list[np.ndarray]:
    """Every compiled kernel once on one input set; the flat list of all outputs."""
    outs = [K.embedding_forward(a["table"], a["ids"])]
    outs.append(K.embedding_backward(a["grad_out"], a["ids"], a["V"], 0))
    outs.extend(K.embedding_backward_sparse(a["grad_out"], a["ids"], a["V"], 0))
    outs.append(K.conv1d_forward(a["x"], a["w"], a["b"], "valid"))
    outs.extend(K.conv1d_backward(a["dy"], a["x"], a["w"], "valid"))
    pooled, argmax = K.conv1d_relu_maxpool_forward(a["x"], a["w"], a["b"], "same")
    outs += [pooled, argmax]
    outs.extend(K.conv1d_relu_maxpool_backward(a["dpooled"], a["x"], a["w"], pooled, argmax, "same"))
    out, lse = K.attention_forward(a["q"], a["k"], a["v"], a["mask"], True)
    outs += [out, lse]
    outs.extend(K.attention_backward(a["dout"], a["q"], a["k"], a["v"], out, lse, a["mask"], True))
    return outs


def blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_concurrent_calls_match_serial_calls():
    inputs = [make_inputs(seed) for seed in range(N_THREADS)]
    serial = [run_all(a) for a in inputs]
    blas_before = blas_threads()
    # All threads start together, so the calls really overlap.
    start = threading.Barrier(N_THREADS)

    def worker(i: int) -> list[list[np.ndarray]]:
        start.wait()
        return [run_all(inputs[i]) for _ in range(REPEATS)]

    with ThreadPoolExecutor(max_workers=N_THREADS) as pool:
        results = list(pool.map(worker, range(N_THREADS)))

    for i, runs in enumerate(results):
        for r, outs in enumerate(runs):
            assert len(outs) == len(serial[i])
            for j, (got, want) in enumerate(zip(outs, serial[i])):
                assert np.array_equal(got, want), f"thread {i}, repeat {r}, output {j} differs from the serial call"
    # The kernels pin BLAS to one thread while they run; the pin must be
    # lifted once the last concurrent call is done.
    assert blas_threads() == blas_before


def test_repeated_calls_are_deterministic():
    a = make_inputs(7)
    first = run_all(a)
    for _ in range(2):
        assert all(np.array_equal(x, y) for x, y in zip(run_all(a), first))


SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import toolkit.kernels as K

    rng = np.random.default_rng(1234)
    def randn(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    # Batch and heads larger than the thread count, so that work is split.
    x, w, b = randn(6, 300, 10), randn(5, 10, 12) / 7, randn(12)
    q, k, v = randn(3, 2, 200, 8), randn(3, 2, 700, 8), randn(3, 2, 700, 5)
    mask = rng.random((3, 700)) < 0.25
    y = K.conv1d_forward(x, w, b, "same")
    dx, dw, db = K.conv1d_backward(randn(*y.shape), x, w, "same")
    pooled, argmax = K.conv1d_relu_maxpool_forward(x, w, b, "valid")
    fdx, fdw, fdb = K.conv1d_relu_maxpool_backward(randn(6, 12), x, w, pooled, argmax, "valid")
    out, lse = K.attention_forward(q, k, v, mask, True)
    dq, dk, dv = K.attention_backward(randn(*out.shape), q, k, v, out, lse, mask, True)
    np.savez(sys.argv[1], y=y, dx=dx, dw=dw, db=db, pooled=pooled, argmax=argmax, fdx=fdx, fdw=fdw,
             fdb=fdb, out=out, lse=lse, dq=dq, dk=dk, dv=dv,
             threads=np.array([K.max_threads(), int(K.openmp_enabled())]))
    """
)


def run_with_threads(n: int, tmp_path) -> dict:
    path = tmp_path / f"threads{n}.npz"
    env = dict(os.environ, OMP_NUM_THREADS=str(n))
    subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env, check=True, timeout=120)
    with np.load(path) as data:
        return dict(data)


def test_results_do_not_depend_on_thread_count(tmp_path, h):
    one = run_with_threads(1, tmp_path)
    two = run_with_threads(2, tmp_path)
    openmp = bool(one["threads"][1])
    assert one["threads"][0] == 1
    assert two["threads"][0] == (2 if openmp else 1)
    assert np.array_equal(one["argmax"], two["argmax"])
    for name in one:
        if name not in ("threads", "argmax"):
            # Bitwise equality is not promised: per-thread partial sums change order.
            h.assert_close(two[name], one[name], rtol=1e-5, atol_factor=1e-6, what=name)


@pytest.mark.skipif(not K.openmp_enabled(), reason="built without OpenMP")
def test_max_threads_follows_environment(tmp_path):
    code = "import toolkit.kernels as K; print(K.max_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "3"


FORK_SCRIPT = """
import os, sys, faulthandler
import numpy as np
import toolkit.kernels as K
rng = np.random.default_rng(0)
x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((8, 50, 32), (5, 32, 16), (16,)))
parent = K.conv1d_relu_maxpool_forward(x, w, b)[0]  # the parent's thread team now exists
pid = os.fork()
if pid == 0:
    faulthandler.dump_traceback_later(30, exit=True)
    child = K.conv1d_relu_maxpool_forward(x, w, b)[0]
    os._exit(0 if np.allclose(child, parent, rtol=1e-5) and K.max_threads() == 1 else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_kernels_run_in_a_forked_child_after_the_parent_used_its_threads():
    # Without the at-fork hook the child's first parallel region waits forever for the parent's threads.
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, "-c", FORK_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_use_threads_sets_the_pool_variables_without_importing_numpy(monkeypatch):
    from toolkit.threads import THREAD_VARIABLES, use_threads

    for variable in THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    use_threads(3)
    assert {v: os.environ[v] for v in THREAD_VARIABLES} == dict.fromkeys(THREAD_VARIABLES, "3")
    # It must run before numpy starts its BLAS pool, so importing it must not import numpy.
    code = "import sys, toolkit.threads; print('numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_short_blas_spin_sets_openblas_timeout_unless_the_user_did(monkeypatch):
    from toolkit.threads import SHORT_BLAS_SPIN, short_blas_spin

    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    assert short_blas_spin() and os.environ["OPENBLAS_THREAD_TIMEOUT"] == SHORT_BLAS_SPIN
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "20")
    assert not short_blas_spin() and os.environ["OPENBLAS_THREAD_TIMEOUT"] == "20"


TRAIN_SPY = """
import os, sys
import toolkit.cli.train_evaluate as commands
seen = []
original = commands.set_up_training_process
commands.set_up_training_process = lambda: seen.append("numpy" in sys.modules) or original()
def train(*args, **kwargs):
    print(seen, os.environ.get("OPENBLAS_THREAD_TIMEOUT"))
    raise SystemExit(0)
commands.api.train = train
from toolkit.cli import cli
cli(["train", "generate", sys.argv[1], "-o", sys.argv[2]])
"""


def test_nlp_tool_train_sets_the_short_blas_spin_before_numpy_loads(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text("a few words of text\n" * 20, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", TRAIN_SPY, str(data), str(tmp_path / "m.nlpt")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[False]", "4"]


def test_serial_blas_holds_blas_to_one_thread_counted_and_restores():
    from threadpoolctl import threadpool_limits

    from toolkit.threads import serial_blas

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        assert before and all(n == 2 for n in before)
        with serial_blas:
            assert all(n == 1 for n in blas_threads())
            with serial_blas:
                assert all(n == 1 for n in blas_threads())
            assert all(n == 1 for n in blas_threads())  # the outer caller is still inside
        assert blas_threads() == before
        with pytest.raises(ValueError), serial_blas:
            raise ValueError("an error inside still restores the limit")
        assert blas_threads() == before


def test_summarizers_rank_on_one_blas_thread():
    from threadpoolctl import threadpool_limits

    from toolkit_plugins.summarization.centrality import CentralitySummarizer

    seen = []

    class Probe(CentralitySummarizer):
        def _rank(self, text, sentences, k):
            seen.append(blas_threads())
            return super()._rank(text, sentences, k)

    with threadpool_limits(limits=2, user_api="blas"):
        result = Probe(sentences=1).summarize("The council met. It approved the plan. Work starts in May.")
        assert blas_threads() and all(n == 2 for n in blas_threads())
    assert len(result["sentences"]) == 1 and seen and all(n == 1 for n in seen[0])


def test_serial_blas_holds_one_thread_when_entered_from_worker_threads():
    # threadpoolctl >= 3.8 ignores limits set by any thread but its "controlling" one; the kernels run
    # in worker threads too (thread pools, servers), so the limit must hold there as well.
    from toolkit.threads import serial_blas

    with serial_blas:
        pass  # the main thread uses it first, as an import-time call would
    seen = []

    def worker() -> None:
        for _ in range(200):
            with serial_blas:
                seen.append(blas_threads())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen and all(counts == [1] * len(counts) for counts in seen), {tuple(c) for c in seen}
