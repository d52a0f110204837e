"""toolkit.blas: the kernels' BLAS taken from scipy.linalg.cython_blas without importing scipy.linalg."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          check=True).stdout


def test_the_kernels_load_without_scipy_linalg_and_scipy_later_gets_the_same_blas_module():
    out = run_python("""
        import sys
        import numpy as np
        import toolkit.kernels as K
        print(sorted(m for m in ("scipy.linalg", "scipy.linalg.cython_blas", "scipy.special", "scipy.sparse")
                     if m in sys.modules))
        import toolkit.numpy_kernels as R

        rng = np.random.default_rng(0)
        x, w = rng.standard_normal((3, 40, 16), dtype=np.float32), rng.standard_normal((5, 16, 24), dtype=np.float32)
        before = K.conv1d_forward(x, w)  # a product through the BLAS pointer
        print(np.allclose(before, R.conv1d_forward(x, w), atol=1e-4))

        import scipy.linalg
        from scipy.linalg import cython_blas
        from toolkit.blas import scipy_cython_blas
        print(cython_blas is scipy_cython_blas() is scipy.linalg.cython_blas)
        print(np.array_equal(K.conv1d_forward(x, w), before))  # scipy.linalg's own import changed nothing
    """)
    assert out.split("\n")[:4] == ["[]", "True", "True", "True"]


def test_scikit_learn_runs_after_the_kernels_loaded_scipys_blas():
    # scikit-learn cimports scipy.linalg.cython_blas itself: the module must come to it whole, once.
    out = run_python("""
        import numpy as np
        import toolkit.kernels
        from sklearn.linear_model import LogisticRegression
        x = np.array([[0.0], [1.0], [2.0], [3.0]])
        print(LogisticRegression().fit(x, [0, 0, 1, 1]).predict([[-1.0], [4.0]]).tolist())
    """)
    assert out.strip() == "[0, 1]"
