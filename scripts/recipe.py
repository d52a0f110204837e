"""What the default-model scripts share: a recipe's ``--set NAME=VALUE`` overrides, and a training run that
ends the script with the usual exit code and one line when it is cut short."""

from __future__ import annotations

import sys
from typing import Any

USAGE = 2
UNFINISHED = 3
INTERRUPTED = 130  # the shell's code for a process stopped by SIGINT


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
