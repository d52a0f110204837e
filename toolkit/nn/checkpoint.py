"""Training checkpoints: one model-format file (arrays + JSON, no pickle) that any training run resumes from.

Arrays are grouped by a prefix: ``model/NAME`` (the weights), ``optimizer/SLOT/NAME``
(e.g. Adam's ``m`` and ``v``), ``ema/NAME`` (the moving average, when one is kept),
``best/NAME`` (the best-validated weights) and ``setup/KEY`` (arrays of the engine's
own, e.g. a subword model). The metadata holds the ``setup`` (what the engine needs
to rebuild the model before its weights: vocabulary, options) and the trainer's
``state`` (epoch, batch, optimizer steps, history, best score, random generators).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ModelFileError, ModelMismatchError, ModelNotFoundError
from toolkit.nn.model_file import read_model_file, save_arrays

KIND = "training-checkpoint"
FORMAT = 1


@dataclass
class Checkpoint:
    """A read (or to be written) checkpoint: the engine's setup, the trainer's state, the arrays by group."""

    setup: dict[str, Any]
    state: dict[str, Any]
    groups: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def write(self, path: str | os.PathLike) -> None:
        """Write atomically: an interrupted write leaves the previous checkpoint."""
        arrays = {f"{group}/{name}": value for group, named in self.groups.items() for name, value in named.items()}
        save_arrays(path, arrays, {"kind": KIND, "format": FORMAT, "setup": self.setup, "state": self.state})


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """The checkpoint at ``path``: ModelNotFoundError when there is none, ModelMismatchError for a model file
    or another tool's file, ModelFileError for a damaged one."""
    if not Path(path).is_file():
        raise ModelNotFoundError(f"no checkpoint {os.fspath(path)} to resume from (train without resume first)")
    config, arrays = read_model_file(path)
    meta = config.get("metadata")
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise ModelMismatchError(f"{os.fspath(path)}: not a training checkpoint")
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{os.fspath(path)}: checkpoint format {meta.get('format')!r}; this version reads {FORMAT}")
    if not isinstance(meta.get("setup"), dict) or not isinstance(meta.get("state"), dict):
        raise ModelFileError(f"{os.fspath(path)}: damaged checkpoint (no setup or state)")
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        group, _, name = key.rpartition("/")
        groups.setdefault(group, {})[name] = value
    return Checkpoint(meta["setup"], meta["state"], groups)


#: Training options that may differ between a run and its resumption: they say how long to train,
#: what to watch and where to save, not what is learnt.
MAY_CHANGE = frozenset({"name", "epochs", "patience", "ema", "max_minutes", "checkpoint", "checkpoint_minutes",
                        "resume"})


def resumable_checkpoint(path: str | os.PathLike, options: dict[str, Any], seed: int,
                         may_change: tuple[str, ...] = ()) -> Checkpoint:
    """The checkpoint at ``path``, refused (ModelMismatchError) unless its run was started with ``seed`` and
    the same ``options`` (saved as its setup's "options" and "seed"), but for those in ``MAY_CHANGE`` or
    ``may_change``."""
    saved = read_checkpoint(path)
    where = os.fspath(path)
    if saved.setup.get("seed") != seed:
        raise ModelMismatchError(f"{where} was started with seed {saved.setup.get('seed')}, not {seed}; resume with"
                                 " the same seed")
    before = saved.setup.get("options", {})
    free = MAY_CHANGE | set(may_change)
    # A repeatable option's tuple comes back from the checkpoint's JSON as a list.
    now = {key: list(value) if isinstance(value, tuple) else value for key, value in options.items()}
    changed = sorted(key for key in set(before) | set(now) if key not in free and before.get(key) != now.get(key))
    if changed:
        then = ", ".join(f"{key}={before.get(key)!r}" for key in changed)
        raise ModelMismatchError(f"{where} was started with other options ({then}); resume with those, or train"
                                 " without resume to start over")
    return saved
