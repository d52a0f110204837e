"""The one training loop of every trainable engine.

An engine says what one step is (forward and backward on a batch, returning
the loss), what the batches of an epoch are, and how to validate; the
:class:`Trainer` does the rest the same way for all of them: gradient
clipping, the optimizer step, a moving average of the weights (EMA), the
validation score after each epoch with patience, the best weights kept,
checkpoints (after each epoch, every few minutes, at the time limit and on
Ctrl-C or SIGTERM) in the one format of :mod:`toolkit.nn.checkpoint`, resuming
from them exactly where the run stopped, and one error when the loss stops
being a finite number.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolkit.errors import TrainingError
from toolkit.nn.checkpoint import Checkpoint
from toolkit.nn.layers import Layer
from toolkit.nn.optim import Optimizer, clip_grad_norm
from toolkit.progress import ProgressBar


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training; ``checkpoint`` is the file to resume from (None: no checkpoint kept)."""

    def __init__(self, checkpoint: str | None) -> None:
        super().__init__(f"training interrupted; resume from {checkpoint}" if checkpoint else "training interrupted")
        self.checkpoint = checkpoint


@dataclass
class History:
    """What happened: one record per validated epoch, the best one, why training stopped, where it can go on."""

    epochs: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    #: "completed", "early stopping" (patience ran out) or "time limit" (max_minutes)
    stopped: str = "completed"
    steps: int = 0
    seconds: float = 0.0
    #: The checkpoint kept for resuming (a run stopped by its time limit); None once training completed.
    checkpoint: str | None = None


def generators(model: Layer) -> dict[str, np.random.Generator]:
    """The random generators the layers of ``model`` draw from (dropout masks), by path in the layer tree."""
    found: dict[str, np.random.Generator] = {}

    def walk(layer: Layer, prefix: str) -> None:
        children = layer.children()
        for attr, value in vars(layer).items():
            if isinstance(value, np.random.Generator):
                found[prefix + attr] = value
            elif isinstance(value, Layer) and not any(value is child for child in children):
                walk(value, f"{prefix}{attr}.")
        for i, child in enumerate(children):
            walk(child, f"{prefix}{i}.")

    walk(model, "")
    return found


class Trainer:
    """Train ``model`` in place with ``optimizer``.

    ``step(batch)`` runs forward and backward on one batch (gradients
    accumulate in the model) and returns the loss; ``batches(epoch, rng)``
    gives the batches of epoch 1, 2, ... (drawing any shuffling from ``rng``,
    or from a generator seeded by the epoch, so that a resumed run sees the
    same ones). ``validate()`` scores the model as it stands (holding the
    moving average, when ``ema`` is on) and returns numbers by name; the
    ``monitor`` one (default: the first) picks the best weights, which the
    model holds when :meth:`run` returns, and ``patience`` checks without a
    better one stop training (0: never). Without ``validate`` the model ends
    with its last weights (their moving average with ``ema``).

    With ``checkpoint`` (a file name) the whole state is written there after
    each epoch, every ``checkpoint_minutes``, when ``max_minutes`` have
    passed and on Ctrl-C or SIGTERM; it is removed when training completes.
    ``setup`` (JSON) and ``setup_arrays`` are the caller's, saved with it to
    rebuild the model before :meth:`resume`. ``throughput`` (a unit and the
    count of it in a batch, e.g. ``("tokens", len)``) adds that rate to the
    progress bar beside the loss.
    """

    def __init__(
        self,
        model: Layer,
        optimizer: Optimizer,
        step: Callable[[Any], float],
        batches: Callable[[int, np.random.Generator], Sequence[Any]],
        *,
        epochs: int,
        validate: Callable[[], dict[str, float]] | None = None,
        monitor: str | None = None,
        mode: str = "max",
        patience: int = 0,
        ema: float = 0.0,
        clip_norm: float | None = None,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_minutes: float = 10.0,
        max_minutes: float = 0.0,
        setup: dict[str, Any] | None = None,
        setup_arrays: dict[str, np.ndarray] | None = None,
        seed: int = 0,
        progress: bool | None = None,
        log: Callable[[str], None] | None = None,
        throughput: tuple[str, Callable[[Any], int]] | None = None,
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, not {epochs}")
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"ema must be at least 0 and below 1, not {ema}")
        self.model, self.optimizer, self.step, self.batches = model, optimizer, step, batches
        self.epochs, self.validate, self.monitor, self.mode = epochs, validate, monitor, mode
        self.patience, self.ema, self.clip_norm = patience, ema, clip_norm
        self.checkpoint = os.fspath(checkpoint) if checkpoint else None
        self.checkpoint_minutes, self.max_minutes = checkpoint_minutes, max_minutes
        self.setup, self.setup_arrays = setup or {}, setup_arrays or {}
        self.progress, self.throughput = progress, throughput
        self.log = log if log is not None else (None if progress is False else _stderr_line)
        self.rng = np.random.default_rng(seed)
        # "epoch": epochs finished (trained and validated); "batch": batches trained of the next one.
        self.state: dict[str, Any] = {
            "epoch": 0, "batch": 0, "loss_sum": 0.0, "loss_batches": 0, "epoch_rng": None, "seconds": 0.0,
            "history": [], "best_epoch": None, "best_value": None, "stale": 0,
        }
        self.average: dict[str, np.ndarray] | None = None
        self.best: dict[str, np.ndarray] | None = None
        self._phase = "idle"
        self._pending_signal = False
        self._saved_at = 0.0
        # (seconds trained before this run, when it started) while :meth:`run` runs
        self._clock: tuple[float, float] | None = None

    # -- resuming and checkpoints ------------------------------------------

    def resume(self, saved: Checkpoint) -> None:
        """Continue from ``saved``: weights, optimizer moments and steps, moving average, best weights,
        position in the epoch and the random generators. The model must be built as the saved one was."""
        from toolkit.errors import ModelMismatchError

        params = {name: param for name, param, _ in self.model.named_parameters()}
        weights = saved.groups.get("model", {})
        if set(weights) != set(params) or any(weights[n].shape != p.shape for n, p in params.items()):
            raise ModelMismatchError("the checkpoint holds the weights of another network; resume with the"
                                     " options it was started with")
        for name, param in params.items():
            param[...] = weights[name]
        self.optimizer.state = {}
        for group, named in saved.groups.items():
            if group.startswith("optimizer/"):
                slot = group.partition("/")[2]
                for name, value in named.items():
                    self.optimizer.state.setdefault(name, {})[slot] = value.astype(np.float32, copy=True)
        state = dict(saved.state)
        self.optimizer.steps = int(state.pop("steps"))
        for path, generator in generators(self.model).items():
            if path in state.get("generators", {}):
                generator.bit_generator.state = state["generators"][path]
        state.pop("generators", None)
        self.state.update(state)
        self.best = {n: v.astype(np.float32, copy=True) for n, v in saved.groups["best"].items()} \
            if "best" in saved.groups else None
        # A run may switch the average on when resuming: it then starts from the weights at hand.
        if self.ema:
            kept = saved.groups.get("ema", {})
            self.average = {n: (kept[n] if n in kept else p).astype(np.float32, copy=True) for n, p in params.items()}

    def save_checkpoint(self) -> None:
        """Write the whole training state to ``checkpoint`` (atomically)."""
        if not self.checkpoint:
            return
        groups: dict[str, dict[str, np.ndarray]] = {
            "model": {name: param for name, param, _ in self.model.named_parameters()}}
        for name, slots in self.optimizer.state.items():
            for slot, value in slots.items():
                groups.setdefault(f"optimizer/{slot}", {})[name] = value
        for group, named in (("ema", self.average), ("best", self.best), ("setup", self.setup_arrays)):
            if named:
                groups[group] = named
        if self._clock is not None:
            # Mid-run: the seconds of this session so far count, or a run killed after a periodic
            # checkpoint would resume with its training time short by the session's.
            before, session = self._clock
            self.state["seconds"] = before + time.monotonic() - session
        state = {**self.state, "steps": self.optimizer.steps,
                 "generators": {path: g.bit_generator.state for path, g in generators(self.model).items()}}
        Checkpoint(self.setup, state, groups).write(self.checkpoint)
        self._saved_at = time.monotonic()

    # -- the loop ------------------------------------------------------------

    def run(self) -> History:
        """Train up to ``epochs`` (counting those of a resumed run); the History of the whole run."""
        session = time.monotonic()
        self._saved_at = session
        seconds_before = self.state["seconds"]
        self._clock = (seconds_before, session)
        if self.ema and self.average is None:
            self.average = {name: param.copy() for name, param, _ in self.model.named_parameters()}
        stopped = "completed"
        try:
            with self._signals_stop_after_the_update():
                while self.state["epoch"] < self.epochs:
                    epoch = self.state["epoch"] + 1
                    # The generator as the epoch began: a resumed run draws the same batches again.
                    if self.state["epoch_rng"] is None:
                        self.state["epoch_rng"] = self.rng.bit_generator.state
                    else:
                        self.rng.bit_generator.state = self.state["epoch_rng"]
                    batches = self.batches(epoch, self.rng)
                    if not len(batches):
                        raise ValueError(f"epoch {epoch} has no batches")
                    out_of_time = self._train(epoch, batches, session)
                    self.state["seconds"] = seconds_before + time.monotonic() - session
                    improved = self._check(epoch, len(batches))
                    if self.state["batch"] >= len(batches):
                        self.state.update(epoch=epoch, batch=0, loss_sum=0.0, loss_batches=0, epoch_rng=None)
                    self.save_checkpoint()
                    if out_of_time:
                        stopped = "time limit"
                        break
                    if not improved and self.patience and self.state["stale"] >= self.patience:
                        stopped = "early stopping"
                        break
        except KeyboardInterrupt:
            self._phase = "idle"
            self.state["seconds"] = seconds_before + time.monotonic() - session
            self.save_checkpoint()
            raise TrainingInterrupted(self.checkpoint) from None
        finally:
            self._phase = "idle"
            self._clock = None
        kept = self.checkpoint if stopped == "time limit" else None
        if self.checkpoint and kept is None:
            # Training is complete: the model is the result; the checkpoint only served to resume.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.checkpoint)
        self._set_weights(self.best if self.best is not None else self.average)
        return History(
            epochs=list(self.state["history"]), best_epoch=self.state["best_epoch"],
            best_value=self.state["best_value"], stopped=stopped, steps=self.optimizer.steps,
            seconds=round(self.state["seconds"], 2), checkpoint=kept,
        )

    def _train(self, epoch: int, batches: Sequence[Any], session: float) -> bool:
        """Train the epoch's remaining batches; True when ``max_minutes`` ran out before its end."""
        state = self.state
        limit = self.max_minutes * 60.0
        with ProgressBar(len(batches), desc=f"epoch {epoch}/{self.epochs}", unit="batch",
                         enabled=self.progress) as bar:
            bar.done = state["batch"]
            counted, started = 0, time.monotonic()
            while state["batch"] < len(batches):
                self._phase = "step"
                batch = batches[state["batch"]]
                loss = float(self.step(batch))
                if not math.isfinite(loss):
                    saved = f"; the checkpoint {self.checkpoint} holds the run before it" if self.checkpoint and \
                        os.path.exists(self.checkpoint) else ""
                    raise TrainingError(f"the training loss became {loss} at epoch {epoch}, batch"
                                        f" {state['batch'] + 1} (step {self.optimizer.steps + 1}): lower the"
                                        f" learning rate{saved}")
                self._phase = "update"
                if self.clip_norm is not None:
                    clip_grad_norm(self.model, self.clip_norm)
                self.optimizer.step()
                if self.average is not None:
                    for name, param, _ in self.model.named_parameters():
                        self.average[name] *= self.ema
                        self.average[name] += (1.0 - self.ema) * param
                state["batch"] += 1
                state["loss_sum"] += loss
                state["loss_batches"] += 1
                self._phase = "step"
                if self._pending_signal:
                    raise KeyboardInterrupt
                now = time.monotonic()
                stats: dict[str, float] = {"loss": state["loss_sum"] / state["loss_batches"]}
                if self.throughput is not None:
                    counted += self.throughput[1](batch)
                    stats[f"{self.throughput[0]}/s"] = round(counted / max(now - started, 1e-9))
                bar.update(1, **stats)
                if self.checkpoint and now - self._saved_at > self.checkpoint_minutes * 60.0:
                    self.save_checkpoint()
                if limit and now - session > limit and state["batch"] < len(batches):
                    return True
        return False

    def _check(self, epoch: int, n_batches: int) -> bool:
        """Record the epoch (validated when there is a ``validate``); True when its score is the best so far."""
        state = self.state
        record: dict[str, Any] = {"epoch": epoch}
        if state["batch"] < n_batches:
            record["batches"] = f"{state['batch']}/{n_batches}"
        record["loss"] = round(state["loss_sum"] / state["loss_batches"], 6) if state["loss_batches"] else None
        record["steps"] = self.optimizer.steps
        improved = False
        if self.validate is not None:
            self._phase = "validate"
            with self._judged_weights():
                scores = self.validate()
                monitor = self.monitor or next(iter(scores), None)
                if monitor not in scores:
                    raise ValueError(f"monitor {monitor!r} is not among the validation scores {sorted(scores)}")
                value = float(scores[monitor])
                best = state["best_value"]
                improved = best is None or (value > best if self.mode == "max" else value < best)
                if improved:
                    self.best = {name: param.copy() for name, param, _ in self.model.named_parameters()}
            self._phase = "idle"
            record.update({f"val_{key}": value for key, value in scores.items()})
            if improved:
                state.update(best_epoch=epoch, best_value=value, stale=0)
            else:
                state["stale"] += 1
        record["seconds"] = round(state["seconds"], 1)
        state["history"].append(record)
        if self.log is not None:
            self.log(f"epoch {epoch}/{self.epochs}: " + ", ".join(
                f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                for key, value in record.items() if key != "epoch"))
        return improved

    # -- helpers -------------------------------------------------------------

    def _set_weights(self, weights: dict[str, np.ndarray] | None) -> None:
        if weights is not None:
            for name, param, _ in self.model.named_parameters():
                param[...] = weights[name]

    @contextlib.contextmanager
    def _judged_weights(self) -> Iterator[None]:
        """Within the block the model holds the weights that are scored and kept: the moving average when there is one."""
        if self.average is None:
            yield
            return
        current = {name: param.copy() for name, param, _ in self.model.named_parameters()}
        self._set_weights(self.average)
        try:
            yield
        finally:
            self._set_weights(current)

    @contextlib.contextmanager
    def _signals_stop_after_the_update(self) -> Iterator[None]:
        """Ctrl-C and SIGTERM stop training at once, except during a weight update, which they let finish:
        the checkpoint then holds a consistent state. Only the main thread can catch signals."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(signum: int, frame: object) -> None:
            if self._phase == "update":
                self._pending_signal = True
            else:
                raise KeyboardInterrupt

        self._pending_signal = False
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                # None: a handler set outside Python, which cannot be put back; the default is the nearest.
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
