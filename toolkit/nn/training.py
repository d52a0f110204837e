"""Training on arrays: ``fit`` (shuffled mini-batches of rows through the Trainer) and ``predict``."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from toolkit.nn.checkpoint import Checkpoint
from toolkit.nn.layers import Layer
from toolkit.nn.optim import Optimizer
from toolkit.nn.trainer import History, Trainer

LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]
Metric = Callable[[np.ndarray, np.ndarray], float]


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
    resume: Checkpoint | None = None,
    **trainer_options: Any,
) -> History:
    """Train ``model`` in place on the rows of (x, y) with :class:`~toolkit.nn.trainer.Trainer`; its History.

    Each epoch shuffles the rows with the trainer's seeded generator and
    steps the optimizer once per ``batch_size`` of them. ``metrics``
    (``metric(y_true, model_outputs)``) are scored on ``validation`` after
    each epoch; ``monitor`` (default: the first metric) picks the best
    epoch, whose weights the model holds at the end. Other keywords
    (``mode``, ``patience``, ``ema``, ``checkpoint``, ``max_minutes``,
    ``seed``, ``progress``...) are the Trainer's; ``resume`` a checkpoint
    to continue from.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
    if len(x) == 0:
        raise ValueError("no training examples")
    metrics = metrics or {}

    def batches(epoch: int, rng: np.random.Generator) -> list[np.ndarray]:
        order = rng.permutation(len(x))
        return [order[i : i + batch_size] for i in range(0, len(x), batch_size)]

    def step(rows: np.ndarray) -> float:
        out, backprop = model.forward(x[rows], train=True)
        loss, grad = loss_fn(out, y[rows])
        backprop(grad)
        return loss

    def validate() -> dict[str, float]:
        outputs = predict(model, validation[0], batch_size=max(batch_size, 256))
        return {name: float(metric(validation[1], outputs)) for name, metric in metrics.items()}

    trainer = Trainer(model, optimizer, step, batches, epochs=epochs,
                      validate=validate if validation is not None and metrics else None,
                      monitor=monitor, **trainer_options)
    if resume is not None:
        trainer.resume(resume)
    return trainer.run()
