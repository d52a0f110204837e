"""What every trainable engine shares: the training options of the trainer, the trainer set up from them,
and the header of the model file it writes.

An engine declares ``train_options = {**trainer_options(epochs=..., patience=...), ...its own}``,
builds its network, and hands ``make_trainer`` what one step and one epoch's
batches are: the options ``name``, ``epochs``, ``patience``, ``ema``,
``max_minutes``, ``checkpoint``, ``checkpoint_minutes`` and ``resume`` then
mean the same for every engine, and its model file starts with the same
:func:`model_header`.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.engine import Option

if TYPE_CHECKING:
    import numpy as np

    from toolkit.engine import Engine
    from toolkit.nn import Layer, Optimizer
    from toolkit.nn.checkpoint import Checkpoint
    from toolkit.nn.trainer import History, Trainer

NAME_OPTION = Option(str, "", "Model name stamped on results (default: the output file's name).")


def trainer_options(epochs: int, patience: int = 0) -> dict[str, Option]:
    """The options of the shared trainer, with the engine's defaults for ``epochs`` and ``patience``."""
    return {
        "name": NAME_OPTION,
        "epochs": Option(int, epochs, "Passes over the training data (at most).", minimum=1),
        "patience": Option(int, patience, "Stop after this many epochs without a better validation score (0: never;"
                           " without validation data it is not used).", minimum=0),
        "ema": Option(float, 0.0, "Decay of a moving average of the weights, which is what is validated and saved"
                      " (0: off; e.g. 0.999). It may be switched on when resuming.", minimum=0, maximum=1,
                      max_open=True),
        "max_minutes": Option(float, 0.0, "Stop after this many minutes of training (0: no limit): the best model so"
                              " far is written and the checkpoint kept, to go on with resume.", minimum=0),
        "checkpoint": Option(str, "", "Checkpoint file (default: OUTPUT.ckpt), written after each epoch, every"
                             " checkpoint_minutes, at the time limit and on Ctrl-C; removed when training completes."),
        "checkpoint_minutes": Option(float, 10.0, "Minutes between checkpoints within an epoch.", minimum=0,
                                     min_open=True),
        "resume": Option(bool, False, "Continue from the checkpoint, with the options it was started with (epochs,"
                         " patience, ema, max_minutes and name may change), instead of starting afresh."),
    }


def checkpoint_path(settings: dict[str, Any], output: str | os.PathLike) -> str:
    """The checkpoint file of a run: the ``checkpoint`` option, else ``OUTPUT.ckpt``."""
    return settings["checkpoint"] or f"{os.fspath(output)}.ckpt"


def resumed(settings: dict[str, Any], output: str | os.PathLike, seed: int,
            may_change: tuple[str, ...] = ()) -> Checkpoint | None:
    """The checkpoint to resume from when the ``resume`` option is on (refused if started otherwise), else None.

    Read before the engine builds anything: the engine rebuilds its
    vocabulary and network from the checkpoint's setup.
    """
    from toolkit.nn.checkpoint import resumable_checkpoint

    if not settings["resume"]:
        return None
    return resumable_checkpoint(checkpoint_path(settings, output), settings, seed, may_change)


def trainer_settings(settings: dict[str, Any], output: str | os.PathLike, seed: int, progress: bool | None,
                     setup: dict[str, Any] | None = None,
                     setup_arrays: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The Trainer's keywords (also ``toolkit.nn.fit``'s) from the trainer options in ``settings``.

    The checkpoint's setup holds ``settings`` and ``seed``, which resuming is
    checked against, and the engine's ``setup``.
    """
    return {
        "epochs": settings["epochs"], "patience": settings["patience"], "ema": settings["ema"],
        "checkpoint": checkpoint_path(settings, output), "checkpoint_minutes": settings["checkpoint_minutes"],
        "max_minutes": settings["max_minutes"], "setup": {"options": settings, "seed": seed, **(setup or {})},
        "setup_arrays": setup_arrays, "seed": seed, "progress": progress,
    }


def make_trainer(
    model: Layer,
    optimizer: Optimizer,
    step: Callable[[Any], float],
    batches: Callable[[int, np.random.Generator], Sequence[Any]],
    settings: dict[str, Any],
    output: str | os.PathLike,
    seed: int,
    progress: bool | None,
    *,
    saved: Checkpoint | None = None,
    validate: Callable[[], dict[str, float]] | None = None,
    monitor: str | None = None,
    mode: str = "max",
    clip_norm: float | None = None,
    setup: dict[str, Any] | None = None,
    setup_arrays: dict[str, np.ndarray] | None = None,
    throughput: tuple[str, Callable[[Any], int]] | None = None,
) -> Trainer:
    """A Trainer configured by the trainer options in ``settings`` (see :func:`trainer_settings`), resumed from
    ``saved`` when given; ``throughput`` as the Trainer's (the progress bar's tokens/s)."""
    from toolkit.nn.trainer import Trainer

    trainer = Trainer(model, optimizer, step, batches, validate=validate, monitor=monitor, mode=mode,
                      clip_norm=clip_norm, throughput=throughput,
                      **trainer_settings(settings, output, seed, progress, setup, setup_arrays))
    if saved is not None:
        trainer.resume(saved)
    return trainer


def history_report(history: History) -> dict[str, Any]:
    """The trainer's History as the training report (and model metadata) of every engine give it."""
    return {"epochs": history.epochs, "best_epoch": history.best_epoch, "stopped": history.stopped,
            "steps": history.steps, "train_seconds": history.seconds, "checkpoint": history.checkpoint}


def best_scores(history: History) -> dict[str, Any] | None:
    """The validation scores of the best epoch, named without their ``val_`` prefix (a model's "metrics"); None
    without validation."""
    if history.best_epoch is None:
        return None

    def scores(record: dict[str, Any]) -> dict[str, Any]:
        return {key[len("val_"):]: value for key, value in record.items() if key.startswith("val_")}

    # An epoch cut by the time limit and finished when resumed has two records: the best is the one that scored best.
    return scores(next(record for record in reversed(history.epochs) if record["epoch"] == history.best_epoch
                       and history.best_value in scores(record).values()))


def model_header(engine_class: type[Engine], output: str | os.PathLike, settings: dict[str, Any], seed: int, *,
                 texts: Sequence[str], records: int, valid_records: int | None, seconds: float,
                 **training: Any) -> dict[str, Any]:
    """The metadata every trained model file starts with: task, engine, its version, the model's name and version
    (the date), the languages of its training ``texts`` (:func:`toolkit.languages.training_languages`), and how
    it was trained (``training``: records, options, seed, time, and the engine's ``training``)."""
    from toolkit.languages import training_languages

    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "task": engine_class.task,
        "engine": engine_class.name,
        "engine_version": engine_class.version,
        "name": settings.get("name") or Path(output).stem,
        "version": now.date().isoformat(),
        "languages": training_languages(texts),
        "training": {
            "records": records,
            "validation_records": valid_records,
            "seed": seed,
            "options": settings,
            "seconds": round(seconds, 2),
            "date": now.isoformat(timespec="seconds"),
            **training,
        },
    }
