"""What the default-model scripts share: their arguments, a recipe's ``--set NAME=VALUE`` overrides, a
training run that ends the script with the usual exit code and one line when it is cut short, and the
shipping of the model file with its card."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

USAGE = 2
UNFINISHED = 3
INTERRUPTED = 130  # the shell's code for a process stopped by SIGINT


def script_parser(doc: str, output: Path, set_help: str, data: tuple[Path, str] | None = None,
                  threads: int = 2, seed_help: str | None = None) -> argparse.ArgumentParser:
    """The arguments of every default-model script: ``--data`` (``data``: its default folder and what it
    holds; None for a script that reads no folder), ``--output`` (the model file), ``--threads``, ``--seed``
    and ``--set`` (``set_help``: what a pair sets). A script adds its own to the parser."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if data is not None:
        p.add_argument("--data", type=Path, default=data[0], help=f"folder with {data[1]}")
    p.add_argument("--output", type=Path, default=output, help="model file (MODEL_CARD.md goes beside it)")
    p.add_argument("--threads", type=int, default=threads)
    p.add_argument("--seed", type=int, default=0, help=seed_help)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help=f"{set_help} (repeatable)")
    return p


def ship(staged: Path, output: Path, max_bytes: int, card: Callable[[int], str]) -> int:
    """Move the model file ``staged`` to ``output`` when it is at most ``max_bytes`` and write MODEL_CARD.md
    beside it, ``card(size)``; 0, or 1 with one line when the file is larger (nothing is replaced)."""
    from toolkit.files import AtomicFile, TooLarge, move_within

    try:
        size = move_within(staged, output, max_bytes)
    except TooLarge as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with AtomicFile(output.parent / "MODEL_CARD.md") as file:
        file.write(card(size).encode("utf-8"))
    print(f"-> {output}")
    return 0


def recipe_settings(engine_class: type, pairs: list[str]) -> dict[str, Any]:
    """The ``--set`` pairs as values of the engine's training options; exit 2 with one line for a bad one."""
    from toolkit.engine import OptionError, parse_settings

    try:
        return parse_settings(engine_class.train_options, pairs)
    except OptionError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(USAGE) from None


def train(task: str, records: list[dict], *, again: str | None, **train_options: Any) -> dict:
    """``toolkit.train(task, records, **train_options)``'s report when training completed. Otherwise the script
    ends: 130 when interrupted, 2 for a bad option, 3 at the time limit, printing ``again``, the command that
    continues the run, or (None: the script starts again rather than resumes) that nothing was written."""
    import toolkit
    from toolkit.engine import OptionError
    from toolkit.nn import TrainingInterrupted

    go_on = f"continue with: {again}" if again else "nothing written"
    try:
        report = toolkit.train(task, records, **train_options)
    except TrainingInterrupted:
        print(f"interrupted; {go_on}", file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None
    except OptionError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(USAGE) from None
    if report["stopped"] == "time limit":
        # Without a way to continue, a model cut short would be compared with, or shipped as, a finished one.
        print(f"stopped at the time limit (max_minutes); {go_on}", file=sys.stderr)
        raise SystemExit(UNFINISHED)
    return report
