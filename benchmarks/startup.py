"""Start-up time of the `nlp-tool` command line, against the target of issue 4.

    python benchmarks/startup.py [--runs 20] [--target 0.25] [--exe PATH] [--one-shot]

Times the wall clock of ``nlp-tool --help`` as a user sees it (a new process
each time: interpreter start, entry-point discovery, plugin loading, Click),
after one warm-up run so the OS file cache is hot (and the modules'
bytecode written, as an installed package has it: PYTHONDONTWRITEBYTECODE
is dropped for the timed commands), and the bare interpreter's start-up
beside it for scale. Then checks, in a separate
process, that neither ``--help`` nor ``plugins`` imports numpy (or scipy,
scikit-learn, the compiled kernels): those cost more than the whole budget.
Lists the slowest imports of ``--help`` (from ``python -X importtime``) so a
regression says where the time went.

With ``--one-shot``, also the median wall time of one-shot task commands
(one short input each, the default models), and, side by side in fresh
interpreters that have imported numpy, the two ways to reach the kernels'
BLAS: ``import scipy.linalg.cython_blas`` (scipy.linalg first) and
``toolkit.blas`` (the extension module from its file, what the kernels do).

Exit code 0 when the median is within the target and nothing heavy is
imported, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Modules that must stay out of the start-up path.
HEAVY = ("numpy", "scipy", "sklearn", "toolkit._kernels", "toolkit.kernels", "toolkit.nn")

# Runs the CLI in-process like the console script does, then reports which
# heavy modules got imported. Output of the CLI itself goes to /dev/null.
PROBE = """
import contextlib, io, json, sys
from toolkit.cli import cli
heavy = {heavy!r}
code = 0
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        cli({args!r}, prog_name="nlp-tool")
    except SystemExit as exc:
        code = exc.code or 0
loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
print(json.dumps({{"exit": code, "heavy": loaded}}))
"""


def python_of(exe: str) -> str:
    """The interpreter of the environment holding ``exe`` (a console script
    sits beside its python), so the import probes see the same installation."""
    beside = Path(exe).with_name(Path(sys.executable).name)
    return str(beside) if beside.exists() else sys.executable


def find_exe(explicit: str | None) -> str:
    """The `nlp-tool` script of this interpreter's environment, else the one on PATH."""
    if explicit:
        return explicit
    beside = Path(sys.executable).with_name("nlp-tool")
    if beside.exists():
        return str(beside)
    found = shutil.which("nlp-tool")
    if not found:
        sys.exit("nlp-tool is not installed here: pip install -e . first")
    return found


# An installed package's modules are compiled once (pip writes their bytecode); with PYTHONDONTWRITEBYTECODE set
# (some images set it) every process compiles nlp-tool's modules from source again: some 0.1 s of `--help`
# measured 2026-12-04. The timed commands run without it, so the warm-up run leaves the bytecode a user has.
TIMED_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def time_commands(cmds: list[list[str]], runs: int) -> list[list[float]]:
    """Wall times in seconds of each command, one fresh process per run.

    One warm-up run each, then the commands take turns, so a change in
    machine load during the measurement hits them alike.
    """
    for cmd in cmds:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=TIMED_ENV)
    times: list[list[float]] = [[] for _ in cmds]
    for _ in range(runs):
        for cmd, out in zip(cmds, times):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=TIMED_ENV)
            out.append(time.perf_counter() - t0)
    return times


def heavy_imports(python: str, args: list[str]) -> tuple[int, list[str]]:
    """(exit code, heavy modules imported) of `nlp-tool ARGS` run in a fresh interpreter."""
    code = PROBE.format(heavy=HEAVY, args=args)
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return report["exit"], report["heavy"]


def slowest_imports(python: str, exe: str, n: int = 8) -> list[tuple[int, str]]:
    """The n top-level imports of `nlp-tool --help` with the largest cumulative time (microseconds).

    Runs the console script itself under ``-X importtime``, so the list is
    what a user's start-up imports, nothing added by a probe.
    """
    proc = subprocess.run([python, "-X", "importtime", exe, "--help"], capture_output=True, text=True, env=TIMED_ENV)
    rows = []
    for line in proc.stderr.splitlines():
        # "import time:   self [us] | cumulative | imported package"
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        if name.startswith("  "):  # nested import: counted in its parent's cumulative time
            continue
        rows.append((int(parts[1]), name.strip()))
    return sorted(rows, reverse=True)[:n]


ONE_SHOT = (["classify", "--text", "A fine film."], ["classify", "--text", "这部电影很好看"],
            ["translate", "--text", "Hello there."], ["generate", "--max-tokens", "3", "Once"],
            ["qa", "--question", "Who is here?", "--text", "Bob is here."])
BLAS_WAYS = {"import scipy.linalg.cython_blas": "import numpy, scipy.linalg.cython_blas",
             "toolkit.blas": "import numpy; from toolkit.blas import scipy_cython_blas; scipy_cython_blas()"}


def one_shot(python: str, exe: str, runs: int) -> None:
    """Print the one-shot commands' median wall times, and the two ways to the BLAS side by side."""
    print(f"one-shot task commands ({runs} runs each after 1 warm-up, median)")
    for cmd, times in zip(ONE_SHOT, time_commands([[exe, *cmd] for cmd in ONE_SHOT], runs)):
        print(f"  {statistics.median(times):.3f} s  nlp-tool {' '.join(cmd)}")
    baseline = [python, "-c", "import numpy"]
    times = time_commands([baseline] + [[python, "-c", code] for code in BLAS_WAYS.values()], runs)
    extra = [statistics.median(t) - statistics.median(times[0]) for t in times[1:]]
    print("the kernels' BLAS, beyond `import numpy` (median of fresh interpreters):")
    for way, seconds in zip(BLAS_WAYS, extra):
        print(f"  {seconds:.3f} s  {way}")
    print(f"  ratio: {extra[0] / max(extra[1], 1e-3):.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs (at least 10)")
    parser.add_argument("--target", type=float, default=0.25, help="median wall time target, seconds")
    parser.add_argument("--exe", help="path of the nlp-tool script (default: this environment's)")
    parser.add_argument("--one-shot", action="store_true", help="also time one-shot task commands and the"
                        " two ways to load the kernels' BLAS")
    args = parser.parse_args()
    if args.runs < 10:
        parser.error("--runs must be at least 10")

    exe = find_exe(args.exe)
    python = python_of(exe)
    # The bare interpreter's start-up is timed alongside: the part of the
    # budget nlp-tool cannot influence (and a sign of a loaded machine).
    times, bare = time_commands([[exe, "--help"], [python, "-c", "pass"]], args.runs)
    median = statistics.median(times)
    time_ok = median <= args.target
    print(f"nlp-tool --help  ({exe}, {args.runs} runs after 1 warm-up)")
    print(f"  min {min(times):.3f} s   median {median:.3f} s   max {max(times):.3f} s")
    print(f"  target median <= {args.target:.2f} s: {'met' if time_ok else 'MISSED'}")
    print(f"  bare interpreter start-up (`python -c pass`), median {statistics.median(bare):.3f} s")

    imports_ok = True
    for cmd in (["--help"], ["plugins"]):
        status, heavy = heavy_imports(python, cmd)
        # A command that failed proves nothing about its imports.
        imports_ok &= status == 0 and not heavy
        shown = ", ".join(heavy) if heavy else "none"
        print(f"heavy modules imported by `nlp-tool {' '.join(cmd)}` (exit {status}): {shown}")

    print("slowest top-level imports of `nlp-tool --help` (cumulative):")
    for micros, name in slowest_imports(python, exe):
        print(f"  {micros / 1000:7.1f} ms  {name}")
    if args.one_shot:
        one_shot(python, exe, args.runs)
    return 0 if time_ok and imports_ok else 1


if __name__ == "__main__":
    sys.exit(main())
