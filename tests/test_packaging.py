"""Packaging: what a user gets from the sdist and the wheel, not from this checkout.

Builds the sdist and the wheel with ``python -m build`` (isolated build
environment: setuptools, Cython, numpy and scipy come from the package index),
checks that the sdist carries every C and Cython source, installs the wheel
into a fresh virtual environment (no system site-packages) and runs two
kernels there, from a directory outside the repository so that neither the
checkout nor the editable install can be imported by mistake.

This is the slowest test of the suite (one to three minutes: two compilations
and a pip install of numpy, scipy and scikit-learn). It needs the ``build``
package and access to a package index.
"""

from __future__ import annotations

import os
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

import toolkit

pytest.importorskip("build", reason="the packaging test needs `pip install build`")

REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 300


def test_sdist_has_all_sources(dists):
    sdist, _ = dists
    with tarfile.open(sdist) as tar:
        # Members look like nlp_tool-0.1.0/csrc/nlpk.h; drop the top folder.
        members = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    expected = {"csrc/nlpk.h", "toolkit/_kernels.pyx", "setup.py", "pyproject.toml", "README.md"}
    expected |= {p.relative_to(REPO).as_posix() for p in (REPO / "csrc").glob("*.[ch]")}
    assert len([p for p in expected if p.endswith(".c")]) > 0
    missing = sorted(expected - members)
    assert not missing, f"the sdist lacks {missing}; add them to MANIFEST.in"


def test_wheel_has_compiled_module_and_entry_point(dists):
    _, wheel = dists
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = next(
            (zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt")), ""
        )
    compiled = [n for n in names if n.startswith("toolkit/_kernels.") and n.endswith((".so", ".pyd"))]
    assert compiled, f"no compiled toolkit._kernels in the wheel: {names}"
    for module in ("toolkit/__init__.py", "toolkit/kernels.py", "toolkit/numpy_kernels.py",
                   "toolkit/_checks.py", "toolkit/cli/__init__.py"):
        assert module in names, f"{module} missing from the wheel"
    assert "nlp-tool = toolkit.cli:cli" in entry_points, entry_points
    # The built-in plugins install as toolkit_plugins (never as a top-level "plugins", which any other
    # project's package of that name would overwrite), with every shipped default model and its card.
    assert "toolkit_plugins/__init__.py" in names and not [n for n in names if n.startswith("plugins/")]
    shipped = {"toolkit_" + p.relative_to(REPO).as_posix() for p in REPO.glob("plugins/*/models/*")
               if p.suffix in (".nlpt", ".md")}
    missing = sorted(shipped - set(names))
    assert not missing, f"the wheel lacks the shipped models {missing}; add them to package-data"


CHECK_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import numpy as np

    import toolkit
    import toolkit._kernels
    import toolkit.kernels as K

    prefix = Path(sys.prefix).resolve()
    for module in (toolkit, toolkit._kernels):
        where = Path(module.__file__).resolve()
        assert prefix in where.parents, f"{module.__name__} imported from {where}, not from {prefix}"

    rng = np.random.default_rng(0)

    table = rng.standard_normal((50, 8)).astype(np.float32)
    for dtype in (np.int32, np.int64):
        ids = rng.integers(0, 50, (3, 7)).astype(dtype)
        np.testing.assert_array_equal(K.embedding_forward(table, ids), table[ids])

    x = rng.standard_normal((2, 9, 4)).astype(np.float32)
    w = rng.standard_normal((3, 4, 5)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    width, T = w.shape[0], x.shape[1]
    for padding, left, length in (("valid", 0, T - width + 1), ("same", (width - 1) // 2, T)):
        xp = np.pad(x.astype(np.float64), ((0, 0), (left, length + width - 1 - T - left), (0, 0)))
        expected = b + sum(xp[:, k : k + length] @ w[k].astype(np.float64) for k in range(width))
        got = K.conv1d_forward(x, w, b, padding)
        assert got.shape == (2, length, 5), (padding, got.shape)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

    print("ok", toolkit.__version__, "openmp" if K.openmp_enabled() else "serial")
    """
)


def test_wheel_installs_and_runs_in_fresh_venv(wheel_venv_bin, tmp_path, h):
    env = h.outside_checkout(dict(os.environ))
    python = wheel_venv_bin / ("python.exe" if sys.platform == "win32" else "python")
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = work / "check_kernels.py"
    script.write_text(CHECK_SCRIPT)
    out = h.run_checked([python, script], cwd=work, env=env, timeout=RUN_TIMEOUT)
    assert out.strip().splitlines()[-1].startswith("ok "), out

    tool = wheel_venv_bin / ("nlp-tool.exe" if sys.platform == "win32" else "nlp-tool")
    version = h.run_checked([tool, "--version"], cwd=work, env=env, timeout=RUN_TIMEOUT)
    assert version.strip() == f"nlp-tool, version {toolkit.__version__}"


def test_every_package_folder_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"toolkit": "toolkit", **{name: path for name, path in config["package-dir"].items()}}
    found = set()
    for name, path in folders.items():
        for init in (REPO / path).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO / path).parts
            found.add(".".join((name, *parts)))
    assert sorted(config["packages"]) == sorted(found)
