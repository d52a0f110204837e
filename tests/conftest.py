"""Shared fixtures and helpers for the kernel tests.

Helpers are handed out as fixtures rather than imported from this file, so
the suite works under every pytest import mode and with more conftest files
later. Session scope keeps them usable inside hypothesis tests.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import toolkit.kernels as compiled
import toolkit.numpy_kernels as reference

BACKENDS = {"compiled": compiled, "numpy": reference}

# Property tests compare small random shapes; each example is cheap, but the
# whole suite must stay within a few minutes on two cores.
settings.register_profile(
    "kernels",
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("kernels")


@pytest.fixture(params=list(BACKENDS), ids=list(BACKENDS))
def backend(request):
    """Each test using it runs once on the compiled kernels and once on the numpy reference."""
    return BACKENDS[request.param]


@pytest.fixture
def rng(request) -> np.random.Generator:
    # Seeded from the test id: reproducible, yet different data per test and
    # per parametrization.
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def randn(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """Norm-wise relative error ||got - want|| / ||want|| in float64 (absolute when want is 0)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    diff = float(np.linalg.norm((got - want).ravel()))
    norm = float(np.linalg.norm(want.ravel()))
    return diff / norm if norm > 0 else diff


def assert_close(
    got, want, rtol: float = 1e-4, atol_factor: float = 1e-5, scale: float | None = None, what: str = ""
) -> None:
    """float32 kernel output vs a reference: same shape, same NaN/inf pattern, close elsewhere.

    Close means a norm-wise relative error <= rtol and an element-wise
    allclose(rtol) with atol = atol_factor * scale. ``scale`` is the size of
    the terms the result is summed from (default: max|want|); pass it when
    the result can cancel to near zero, as a gradient through a softmax
    does, since float32 rounding is relative to the terms, not to the sum.
    """
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    assert np.array_equal(np.isnan(g), np.isnan(w)), f"{what}: NaN positions differ"
    inf = np.isinf(w)
    assert np.array_equal(np.isinf(g), inf) and np.array_equal(g[inf], w[inf]), f"{what}: inf entries differ"
    finite = np.isfinite(w)
    g, w = g[finite], w[finite]
    if w.size == 0:
        return
    ref = float(np.abs(w).max())
    if scale is not None:
        ref = max(ref, float(scale))
    atol = atol_factor * max(ref, np.finfo(np.float32).tiny)
    diff, norm = float(np.linalg.norm(g - w)), float(np.linalg.norm(w))
    assert diff <= rtol * norm + atol * np.sqrt(w.size), (
        f"{what}: norm-wise relative error {rel_error(g, w):.3g} > {rtol}"
    )
    bad = ~np.isclose(g, w, rtol=rtol, atol=atol)
    assert not bad.any(), (
        f"{what}: {int(bad.sum())} of {bad.size} entries differ; worst |got-want| = "
        f"{float(np.abs(g - w).max()):.3g} (atol {atol:.3g})"
    )


def check_grads(
    loss: Callable[..., float],
    inputs: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    rng: np.random.Generator,
    eps: float = 3e-3,
    n_dirs: int = 3,
    n_coords: int = 6,
    rtol: float = 1e-2,
) -> None:
    """Central finite differences of a scalar float64 loss against analytic gradients.

    ``loss(**inputs)`` evaluates the loss from float32 kernel outputs;
    ``grads[name]`` is the claimed dL/d inputs[name]. Checked along a few
    random directions through all inputs at once, then along single
    coordinates, half of them where the claimed gradient is largest (where a
    wrong value matters most) and half at random (where a missing value shows).
    Steps are eps times each input's RMS, so that inputs of different scales
    (data and weights) are perturbed alike.
    Tolerance: rtol relative, plus rtol times the typical size of the
    derivative being checked, so a wrong gradient fails even near zero.
    """
    names = list(inputs)
    assert set(grads) == set(names)
    for name in names:
        assert grads[name].shape == inputs[name].shape, f"d{name} has the wrong shape"
        assert np.all(np.isfinite(grads[name])), f"d{name} is not finite"
    g64 = {n: grads[n].astype(np.float64) for n in names}
    step_scale = {n: float(np.sqrt(np.mean(inputs[n].astype(np.float64) ** 2))) or 1.0 for n in names}
    # For a step s * u with u standard normal, g . (s * u) is of this size:
    typical = float(np.sqrt(sum(step_scale[n] ** 2 * np.sum(g64[n] ** 2) for n in names)))
    total = sum(inputs[n].size for n in names)

    def derivative_along(step: dict[str, np.ndarray]) -> tuple[float, float]:
        plus, minus = dict(inputs), dict(inputs)
        analytic = 0.0
        for n, u in step.items():
            x = inputs[n]
            plus[n] = (x + eps * step_scale[n] * u).astype(np.float32)
            minus[n] = (x - eps * step_scale[n] * u).astype(np.float32)
            # The step actually taken, after rounding to float32.
            taken = plus[n].astype(np.float64) - minus[n].astype(np.float64)
            analytic += float(np.sum(g64[n] * taken))
        numeric = loss(**plus) - loss(**minus)
        scale = 2 * eps
        return numeric / scale, analytic / scale

    for d in range(n_dirs):
        numeric, analytic = derivative_along({n: rng.standard_normal(inputs[n].shape) for n in names})
        tol = rtol * abs(analytic) + rtol * typical
        assert abs(numeric - analytic) <= tol, (
            f"direction {d}: finite difference {numeric:.6g} vs analytic {analytic:.6g}"
        )

    weighted = np.concatenate([step_scale[n] * g64[n].ravel() for n in names])
    offsets = np.cumsum([0] + [inputs[n].size for n in names])
    largest = np.argsort(-np.abs(weighted))[: n_coords // 2]
    chosen = np.concatenate([largest, rng.choice(total, size=n_coords - largest.size, replace=False)])
    for idx in chosen:
        which = int(np.searchsorted(offsets, idx, side="right") - 1)
        n = names[which]
        where = np.unravel_index(int(idx - offsets[which]), inputs[n].shape)
        unit = np.zeros(inputs[n].shape)
        unit[where] = 1.0
        numeric, analytic = derivative_along({n: unit})
        tol = rtol * abs(analytic) + rtol * typical / np.sqrt(total)
        assert abs(numeric - analytic) <= tol, (
            f"d{n}{tuple(int(i) for i in where)}: finite difference {numeric:.6g} vs analytic {analytic:.6g}"
        )


def weighted_sum(out: np.ndarray, weights: np.ndarray) -> float:
    """The scalar loss sum(out * R), in float64 from a float32 output."""
    return float(np.sum(out.astype(np.float64) * weights.astype(np.float64)))


def run_checked(cmd: list, *, cwd, env: dict | None = None, timeout: float = 1200) -> str:
    """Run ``cmd`` without stdin and return its stdout; on a non-zero exit, fail with the tail of its output."""
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
        pytest.fail(f"exit code {proc.returncode}: {' '.join(map(str, cmd))}\n{tail}")
    return proc.stdout


def outside_checkout(env: dict) -> dict:
    """``env`` minus anything that could point Python at this checkout or choose plugins (NLP_TOOL_*): for
    commands run in a virtual environment of their own."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    env = {k: v for k, v in env.items() if k not in drop and not k.startswith("NLP_TOOL_")}
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


# Two topics whose words never meet: word vectors learned from topic_texts
# must put each topic's words near each other.
ANIMALS = "cat dog horse cow sheep goat pig duck goose hen mouse rat fox wolf bear deer".split()
VEHICLES = "car bus truck train tram ship boat plane jet bike van taxi lorry ferry yacht cab".split()


def topic_texts(n: int = 200, seed: int = 0) -> list[str]:
    """Documents that each draw their words from one of two topics."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(rng.choice([ANIMALS, VEHICLES]), k=12)) for _ in range(n)]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def born_records(n: int, seed: int = 0, filler: list[str] | None = None) -> list[dict]:
    """SQuAD-style records asking where someone was born, which a small reader learns in a few epochs.

    With ``filler``, each context also holds six of those words (a vocabulary
    larger than the reader's word_dim) instead of a fixed second sentence.
    """
    rng = random.Random(seed)
    names = ["Alice", "Bob", "Carol", "Dmitri", "Eve", "Farid", "Grace", "Hiro"]
    cities = ["Paris", "Lima", "Oslo", "Cairo", "Quito", "Hanoi", "Perth", "Dakar"]
    records = []
    for _ in range(n):
        name, city = rng.choice(names), rng.choice(cities)
        if filler is None:
            context = f"{name} likes tea and long walks. {name} was born in {city}. The weather was mild."
        else:
            context = f"{name} was born in {city}. The {' '.join(rng.sample(filler, 6))} weather was mild."
        records.append({"question": f"Where was {name} born?", "context": context,
                        "answers": [{"text": city, "answer_start": context.index(city)}]})
    return records


class Helpers:
    """The shared helpers, reachable from tests through the ``h`` fixture."""

    BACKENDS = BACKENDS
    compiled = compiled
    reference = reference
    randn = staticmethod(randn)
    rel_error = staticmethod(rel_error)
    assert_close = staticmethod(assert_close)
    check_grads = staticmethod(check_grads)
    weighted_sum = staticmethod(weighted_sum)
    run_checked = staticmethod(run_checked)
    outside_checkout = staticmethod(outside_checkout)
    ANIMALS = ANIMALS
    VEHICLES = VEHICLES
    topic_texts = staticmethod(topic_texts)
    cosine = staticmethod(cosine)
    born_records = staticmethod(born_records)


@pytest.fixture(scope="session")
def h() -> type[Helpers]:
    return Helpers


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel) built from the repository with ``python -m build`` (the wheel from the sdist), once per
    session: the packaging test inspects and installs them, the third-party plugin test installs the wheel."""
    pytest.importorskip("build", reason="building the sdist and wheel needs `pip install build`")
    repo = Path(__file__).resolve().parents[1]
    outdir = tmp_path_factory.mktemp("dist")
    run_checked([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", outdir, repo], cwd=repo)
    sdists = sorted(outdir.glob("*.tar.gz"))
    wheels = sorted(outdir.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in outdir.iterdir())
    return sdists[0], wheels[0]


@pytest.fixture(scope="session")
def wheel_venv_bin(dists: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scripts folder (python, nlp-tool) of a fresh virtual environment (no system site-packages) with the
    wheel of :func:`dists` installed, as a user installs it: the packaging test runs the kernels there, the
    third-party plugin test installs and uninstalls plugins in it (its dependencies are installed once, for
    both)."""
    root = tmp_path_factory.mktemp("wheel_venv")
    env = outside_checkout(dict(os.environ))
    run_checked([sys.executable, "-m", "venv", root / "venv"], cwd=root, env=env)
    bindir = root / "venv" / ("Scripts" if sys.platform == "win32" else "bin")
    run_checked([bindir / ("python.exe" if sys.platform == "win32" else "python"), "-m", "pip", "install",
                 dists[1]], cwd=root, env=env)
    return bindir


# The chat tests' dialogues: a greeting and a question about the time, and one exchange about the way.
DIALOGUES = [
    {"turns": ["Hi, how are you today?", "Fine, thanks. And you?", "Great. What time is it?", "It is five o'clock."]},
    {"turns": ["Where is the railway station?", "Go straight on and turn left at the bank."]},
]


@pytest.fixture
def dialogues() -> list[dict]:
    return [dict(d, turns=list(d["turns"])) for d in DIALOGUES]


@pytest.fixture
def corpus(tmp_path, dialogues) -> str:
    """A dialogue corpus for the chat task: JSON lines {"turns": [...]}."""
    path = tmp_path / "dialogues.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in dialogues), encoding="utf-8")
    return str(path)


@pytest.fixture
def cli_over(tmp_path, monkeypatch) -> Callable:
    """``cli_over(registry)``: a function running ``nlp-tool ARGS...`` (click's CliRunner, optional stdin
    ``input``) over the plugin ``registry``, in a fresh working folder and NLP_TOOL_HOME."""
    from click.testing import CliRunner

    from toolkit.cli import make_cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path / "home"))

    def over(registry) -> Callable:
        cli = make_cli(lambda: registry)

        def invoke(*args, input=None):
            return CliRunner().invoke(cli, [str(arg) for arg in args], input=input)

        return invoke

    return over


@pytest.fixture
def home(tmp_path, monkeypatch):
    """NLP_TOOL_HOME in a fresh folder: where the chat task saves its conversations."""
    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
