"""What the default-model scripts share: their arguments, a recipe's ``--set NAME=VALUE`` overrides, a
training run into OUTPUT.new that ends the script with the usual exit code and one line when it is cut
short, the test scores stamped into the model file, the table of epochs of its card, and the shipping of
the model file with its card."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

USAGE = 2
UNFINISHED = 3
INTERRUPTED = 130  # the shell's code for a process stopped by SIGINT


def set_up_process(threads: int) -> None:
    """A training script's first step, before numpy loads: its thread count, and the process set up as
    `nlp-tool train` sets up its own (BLAS threads that sleep after a product, freed memory kept for the next
    step: toolkit.training_process), so that a script trains at the command's speed."""
    from toolkit.threads import use_threads
    from toolkit.training_process import set_up_training_process

    use_threads(threads)
    set_up_training_process()


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


def read_dialogues(folder: Path, split: str) -> list[dict]:
    """The dialogues of ``folder/SPLIT.jsonl.gz`` (DailyDialog's files), ``{"turns": [...]}`` each; the script
    ends with one line when the file is missing."""
    from toolkit.datasets import read_records

    path = folder / f"{split}.jsonl.gz"
    if not path.exists():
        sys.exit(f"error: {path} not found (pass --data DIR)")
    return read_records(str(path), {"turns": "turns"})


def ship(staged: Path, output: Path, max_bytes: int, card: Callable[[int], str], card_path: Path | None = None) -> int:
    """Move the model file ``staged`` to ``output`` when it is at most ``max_bytes`` and write its card,
    ``card(size)``, to ``card_path`` (default: MODEL_CARD.md beside it); 0, or 1 with one line when the file is
    larger (nothing is replaced)."""
    from toolkit.files import AtomicFile, TooLarge, move_within

    try:
        size = move_within(staged, output, max_bytes)
    except TooLarge as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with AtomicFile(card_path or output.parent / "MODEL_CARD.md") as file:
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


def train_staged(args: argparse.Namespace, engine_class: type, records: list[dict], valid: list[dict],
                 recipe: dict[str, Any]) -> tuple[Path, dict, str]:
    """Train the engine ``engine_class`` on ``records`` with ``recipe`` and the script's ``--set`` overrides
    (``args``: :func:`script_parser`'s) into OUTPUT.new, ``valid`` choosing the epoch; an interrupted run
    ends the script as :func:`train` does, printing the command that continues it. Return the staged file,
    the training report and the script's command line."""
    command = f"python scripts/{Path(sys.argv[0]).name} " + shlex.join(sys.argv[1:])
    settings = recipe_settings(engine_class, args.set)
    again = command if settings.get("resume") else f"{command} --set resume=true"
    staged = args.output.with_name(args.output.name + ".new")
    staged.parent.mkdir(parents=True, exist_ok=True)  # a models folder holds nothing until its first model
    report = train(engine_class.task, records, engine=engine_class.name, output=staged, valid=valid, seed=args.seed,
                   again=again, **{**recipe, **settings})
    print(f"trained in {report['train_seconds']:.0f} s ({report['stopped']}); val {report.get('metrics')}",
          flush=True)
    return staged, report, command


def stamp_test(staged: Path, command: str, data: str, test_data: str, metrics: dict, keys: Sequence[str],
               **extra: Any) -> dict:
    """Write into the metadata of the model file ``staged`` the script's ``command``, its training ``data``
    and the test scores (``keys`` of ``metrics`` and ``extra``, on ``test_data``); return the metadata."""
    from toolkit.nn import rewrite_metadata

    def stamp(meta: dict) -> None:
        meta["training"].update({"command": command, "data": data})
        meta["test_metrics"] = {"data": test_data, **{key: metrics[key] for key in keys}, **extra}

    return rewrite_metadata(staged, stamp)


def epoch_rows(epochs: list[dict], columns: Sequence[str]) -> str:
    """The rows of a model card's table of epochs: the epoch, its train loss and the ``columns`` of its record.
    An epoch cut by the time limit has a row of its own (the batches done), then another when resumed."""
    return "\n".join(
        f"| {h['epoch']}{' (' + h['batches'] + ' batches)' if 'batches' in h else ''} | {h['loss']} | "
        + " | ".join(str(h.get(column, "")) for column in columns) + " |" for h in epochs)


def classification_tables(test: dict) -> str:
    """A classification model card's test tables: per-class precision/recall/F1 and the confusion matrix
    (``test``: ``toolkit.api.evaluate``'s report)."""
    cm = test["confusion_matrix"]
    per_class = "\n".join(f"| {label} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['support']} |"
                          for label, m in test["per_class"].items())
    matrix = "\n".join(f"| true {label} | " + " | ".join(map(str, row)) + " |"
                       for label, row in zip(cm["labels"], cm["matrix"]))
    return (f"| label | precision | recall | F1 | support |\n|---|---|---|---|---|\n{per_class}\n\n"
            f"| | {' | '.join('pred ' + label for label in cm['labels'])} |\n|---|{'---|' * len(cm['labels'])}\n"
            f"{matrix}")

