"""Build the compiled kernel core: C99 sources in csrc/ behind Cython bindings.

OpenMP is used when the compiler supports it (gcc, clang with libomp, MSVC);
otherwise the kernels build and run serially. No CPU-specific flags such as
-march=native are used, so a wheel runs on any machine of its platform.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
CSRC = "csrc"
OPENMP_PROBE = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"


def openmp_flags() -> tuple[list[str], list[str]]:
    """Compile and link flags for OpenMP, or empty lists when the compiler lacks it.

    The probe compiles and links a tiny program, because a compile-only check
    passes with a missing runtime and the extension then fails at import.
    """
    if os.environ.get("NLP_TOOL_NO_OPENMP"):
        return [], []
    if sys.platform == "win32":
        return ["/openmp"], []
    if sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    compiler = cc.split()[0]
    if shutil.which(compiler) is None:
        return [], []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text(OPENMP_PROBE)
        for cflags, ldflags in candidates:
            cmd = [compiler, *cflags, str(src), "-o", str(Path(tmp) / "probe"), *ldflags]
            if subprocess.run(cmd, capture_output=True).returncode == 0:
                return cflags, ldflags
    print("warning: compiler has no OpenMP; kernels will run on one thread", file=sys.stderr)
    return [], []


def extensions() -> list[Extension]:
    omp_compile, omp_link = openmp_flags()
    if sys.platform == "win32":
        base = ["/O2"]
    else:
        # -O3 vectorises the inner loops; no -ffast-math (it would turn on
        # flush-to-zero for the whole Python process, see docs/kernels.md).
        # -fno-trapping-math changes no result, only lets gcc compute both sides
        # of a select: without it the AVX2 clones of every loop with an exp in
        # it (softmax, attention, cross-entropy, GELU) stayed scalar, 8x slower.
        # -ffp-contract=fast gives back the fused multiply-adds that -std=c99
        # turns off (one rounding instead of two, in the FMA clones only).
        base = ["-O3", "-std=c99", "-fno-trapping-math", "-ffp-contract=fast", "-Wall",
                "-Wno-unused-function", "-Wno-unreachable-code"]
    c_sources = sorted(p.relative_to(HERE).as_posix() for p in (HERE / CSRC).glob("*.c"))
    return [
        Extension(
            "toolkit._kernels",
            sources=["toolkit/_kernels.pyx", *c_sources],
            include_dirs=[CSRC],
            extra_compile_args=base + omp_compile,
            extra_link_args=omp_link,
        )
    ]


setup(
    ext_modules=cythonize(
        extensions(),
        compiler_directives={
            "language_level": 3,
            "embedsignature": True,
        },
    ),
)
