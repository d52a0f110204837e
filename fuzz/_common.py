"""What the fuzz harnesses share: where crashes go, and how a run keeps going past one.

A harness calls ``record_crash`` for an exception that breaks the contract
under test. With ``FUZZ_KEEP_GOING=1`` (what scripts/fuzz.sh sets) the input is
saved under fuzz/crashes/<target>/ once per distinct place of failure and the
run goes on, so one known bug does not end a ten-minute run in its first
second; without it the exception propagates and atheris stops with its usual
crash report and artifact.
"""

from __future__ import annotations

import hashlib
import os
import sys
import traceback
from pathlib import Path

CRASH_ROOT = Path(__file__).resolve().parent / "crashes"
_seen: set[str] = set()


def keep_going() -> bool:
    return os.environ.get("FUZZ_KEEP_GOING") == "1"


def signature(err: BaseException) -> str:
    """Exception type plus the innermost frame in the project: the same bug found twice has one signature."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if "/toolkit/" in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    return f"{type(err).__name__}@{where}"


def record_crash(target: str, data: bytes, err: BaseException) -> None:
    """Save ``data`` as a crash of ``target`` (once per signature), or re-raise when not keeping going."""
    if not keep_going():
        raise err
    sig = signature(err)
    if sig in _seen:
        return
    _seen.add(sig)
    folder = CRASH_ROOT / target
    folder.mkdir(parents=True, exist_ok=True)
    safe = sig.replace("@", "-").replace(":", "-").replace("/", "_")
    name = f"{safe}-{hashlib.sha1(data).hexdigest()[:12]}"
    (folder / name).write_bytes(data)
    (folder / f"{name}.txt").write_text(
        f"{sig}\n{type(err).__name__}: {str(err)[:2000]}\n\n" + "".join(traceback.format_exception(err))[-6000:]
    )
    print(f"\n== NEW CRASH {sig}: saved {folder / name}", file=sys.stderr, flush=True)


def instrument_module(module: object) -> int:
    """Add atheris coverage to the functions and methods defined in an already imported module.

    For standard-library and numpy modules that are loaded before a harness can
    wrap their import in ``atheris.instrument_imports`` (numpy imports zipfile
    itself). Returns how many functions were instrumented.
    """
    import inspect

    import atheris

    name = getattr(module, "__name__", "")
    count = 0
    for obj in list(vars(module).values()):
        targets = []
        if inspect.isfunction(obj) and obj.__module__ == name:
            targets.append(obj)
        elif inspect.isclass(obj) and obj.__module__ == name:
            for member in vars(obj).values():
                member = getattr(member, "__func__", member)
                if isinstance(member, property):
                    targets.extend(f for f in (member.fget, member.fset) if f is not None)
                elif inspect.isfunction(member):
                    targets.append(member)
        for func in targets:
            try:
                atheris.instrument_func(func)
                count += 1
            except Exception:  # noqa: BLE001 - a function atheris cannot patch is left as it is
                pass
    return count
