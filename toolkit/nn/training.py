"""The training loop: shuffled mini-batches, validation, early stopping, best checkpoint."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from toolkit.nn.layers import Layer
from toolkit.nn.model_file import save_model
from toolkit.nn.optim import Optimizer, clip_grad_norm
from toolkit.progress import ProgressBar

LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]
Metric = Callable[[np.ndarray, np.ndarray], float]


@dataclass
class History:
    """What happened: one dict per finished epoch, the best epoch, and why training stopped."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    stopped: str = "completed"  # or "early stopping" or "interrupted"


def predict(model: Layer, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Model outputs for every row of x, in batches, inference mode."""
    outs = [model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return np.concatenate(outs) if outs else np.empty((0,), dtype=np.float32)


def fit(
    model: Layer,
    loss_fn: LossFn,
    optimizer: Optimizer,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 128,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    metrics: dict[str, Metric] | None = None,
    monitor: str | None = None,
    mode: str = "max",
    patience: int | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_metadata: Callable[[History], dict[str, Any]] | None = None,
    clip_norm: float | None = None,
    seed: int = 0,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> History:
    """Train ``model`` in place and return its History.

    Each epoch shuffles (x, y) with a generator seeded from ``seed``, steps the
    optimizer once per batch, then scores ``metrics`` on ``validation``
    (``metric(y_true, model_outputs)``; names get a ``val_`` prefix). The
    ``monitor`` value (default: the first validation metric, else the training
    loss with mode "min") picks the best epoch; with ``checkpoint`` the model is
    saved there, atomically, each time it improves, and ``patience`` epochs
    without improvement stop training. Ctrl-C stops after the current batch
    with the best checkpoint intact (``History.stopped == "interrupted"``).
    ``progress``: a bar on stderr (default: when stderr is a terminal).
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
    if len(x) == 0:
        raise ValueError("no training examples")
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    metrics = metrics or {}
    if monitor is None:
        monitor, mode = (f"val_{next(iter(metrics))}", mode) if validation and metrics else ("loss", "min")
    better = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)
    rng = np.random.default_rng(seed)
    history = History()
    stale = 0
    steps = math.ceil(len(x) / batch_size)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = rng.permutation(len(x))
        total_loss, seen = 0.0, 0
        bar = ProgressBar(len(x), f"epoch {epoch}/{epochs}", unit="ex", enabled=progress)
        try:
            for i in range(steps):
                idx = order[i * batch_size : (i + 1) * batch_size]
                out, backprop = model.forward(x[idx], train=True)
                loss, grad = loss_fn(out, y[idx])
                if not math.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss} at epoch {epoch}, batch {i + 1}")
                backprop(grad)
                if clip_norm is not None:
                    clip_grad_norm(model, clip_norm)
                optimizer.step()
                total_loss += loss * len(idx)
                seen += len(idx)
                bar.update(len(idx), loss=total_loss / seen)
        except KeyboardInterrupt:
            bar.close()
            history.stopped = "interrupted"
            break
        record = {"epoch": epoch, "loss": total_loss / seen, "seconds": time.perf_counter() - start}
        record["examples_per_s"] = seen / record["seconds"]
        if validation is not None:
            outputs = predict(model, validation[0], batch_size=max(batch_size, 256))
            for name, metric in metrics.items():
                record[f"val_{name}"] = float(metric(validation[1], outputs))
        # The bar's last line keeps the epoch's validation metrics.
        bar.update(0, **{k: v for k, v in record.items() if k.startswith("val_")})
        bar.close()
        history.epochs.append(record)
        if log:
            log("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        value = record.get(monitor)
        if value is None:
            raise ValueError(f"monitor {monitor!r} is not among the epoch results {sorted(record)}")
        if history.best_value is None or better(value, history.best_value):
            history.best_value, history.best_epoch, stale = value, epoch, 0
            if checkpoint is not None:
                save_model(checkpoint, model, checkpoint_metadata(history) if checkpoint_metadata else {})
        else:
            stale += 1
            if patience is not None and stale >= patience:
                history.stopped = "early stopping"
                break
    return history
