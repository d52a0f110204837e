"""SciPy's BLAS for the compiled kernels, loaded without the rest of scipy.linalg.

The kernels call ``sgemm`` from scipy.linalg.cython_blas, as scikit-learn
does. Imported by name, that module first runs scipy.linalg's ``__init__``,
which imports most of SciPy: 0.2-0.3 s, a third of a one-shot
``nlp-tool classify``. The extension module needs none of it, so it is
loaded from its file, and left out of ``sys.modules``: a later
``import scipy.linalg.cython_blas`` then imports scipy.linalg as usual and
gets the same module object (a Cython module is created once per process),
bound as the package's attribute.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

NAME = "scipy.linalg.cython_blas"


@functools.cache
def scipy_cython_blas() -> ModuleType:
    """scipy.linalg.cython_blas, whose ``__pyx_capi__`` holds its BLAS functions."""
    if NAME in sys.modules:
        return sys.modules[NAME]
    scipy = importlib.util.find_spec("scipy")
    if scipy is not None and scipy.origin is not None:
        folder = Path(scipy.origin).parent / "linalg"
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = folder / f"cython_blas{suffix}"
            if path.is_file():
                spec = importlib.util.spec_from_file_location(NAME, path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                sys.modules.pop(NAME, None)  # loading registered it, but its package is not imported
                return module
    return importlib.import_module(NAME)  # a SciPy laid out otherwise: the usual import
