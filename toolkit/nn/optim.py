"""Optimizers, gradient clipping and learning-rate schedules.

An optimizer updates the parameters of a layer tree in place from the
gradients the backward pass accumulated in ``layer.grads``, and zeroes them.
Updates are elementwise and deterministic (Adam's in one compiled pass,
``kernels.adam_step``; SGD's in numpy), so the same seed and data give the
same weights bit for bit on the same machine, whatever the thread count.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from toolkit import kernels
from toolkit.nn.layers import Layer

Schedule = Callable[[int], float]


def constant(lr: float) -> Schedule:
    return lambda step: lr


def warmup_linear(peak: float, warmup_steps: int, total_steps: int) -> Schedule:
    """Linear rise to ``peak`` over ``warmup_steps``, then linear decay to 0 at ``total_steps``."""

    def lr(step: int) -> float:
        if step < warmup_steps:
            return peak * (step + 1) / warmup_steps
        return peak * max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return lr


def warmup_inverse_sqrt(peak: float, warmup_steps: int) -> Schedule:
    """Linear rise to ``peak``, then decay as 1/sqrt(step) (the Transformer schedule)."""

    def lr(step: int) -> float:
        s = step + 1
        return peak * min(s / warmup_steps, math.sqrt(warmup_steps / s))

    return lr


def clip_grad_norm(model: Layer, max_norm: float) -> float:
    """Scale all gradients so their global L2 norm is at most ``max_norm``; return the norm before."""
    grads = [g for _, _, g in model.named_parameters()]
    norm = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads))
    if norm > max_norm:
        scale = np.float32(max_norm / (norm + 1e-12))
        for g in grads:
            g *= scale
    return norm


class Optimizer:
    """Base: holds the layer tree, the schedule and the step count."""

    def __init__(self, model: Layer, lr: float | Schedule):
        self.model = model
        self.schedule = lr if callable(lr) else constant(float(lr))
        self.steps = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    @property
    def lr(self) -> float:
        return self.schedule(self.steps)

    def step(self) -> None:
        """Apply one update from the current gradients, then zero them."""
        lr = self.schedule(self.steps)
        self.steps += 1
        for name, param, grad in self.model.named_parameters():
            self.update(name, param, grad, lr)

    def update(self, name: str, param: np.ndarray, grad: np.ndarray, lr: float) -> None:
        """Update ``param`` in place from ``grad``, and leave ``grad`` zeroed."""
        raise NotImplementedError

    def slot(self, name: str, key: str, like: np.ndarray) -> np.ndarray:
        per_param = self.state.setdefault(name, {})
        if key not in per_param:
            per_param[key] = np.zeros_like(like)
        return per_param[key]


class SGD(Optimizer):
    """SGD with (optionally Nesterov) momentum and L2 weight decay."""

    def __init__(self, model: Layer, lr: float | Schedule = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(model, lr)
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay

    def update(self, name: str, param: np.ndarray, grad: np.ndarray, lr: float) -> None:
        g = grad + self.weight_decay * param if self.weight_decay else grad
        if self.momentum:
            buf = self.slot(name, "momentum", param)
            buf *= self.momentum
            buf += g
            g = g + self.momentum * buf if self.nesterov else buf
        param -= np.float32(lr) * g
        grad.fill(0.0)


class Adam(Optimizer):
    """Adam (Kingma & Ba), bias-corrected, PyTorch's formula; ``weight_decay`` adds L2 to the gradient."""

    decoupled = False

    def __init__(self, model: Layer, lr: float | Schedule = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(model, lr)
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay

    def update(self, name: str, param: np.ndarray, grad: np.ndarray, lr: float) -> None:
        # AdamW decays matrices only (see AdamW); Adam's L2 acts on every gradient.
        decay = self.weight_decay if not self.decoupled or param.ndim > 1 else 0.0
        kernels.adam_step(param, grad, self.slot(name, "m", param), self.slot(name, "v", param), lr, self.beta1,
                          self.beta2, self.eps, self.steps, decay, self.decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): decay acts on the weights, not the gradient.

    Only matrices (weights, embedding tables) decay; vectors (biases, layer
    norms' gains and shifts) do not, as in GPT-2's training: a gain pulled
    towards zero would shrink what its layer passes on.
    """

    decoupled = True

    def __init__(self, model: Layer, lr: float | Schedule = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(model, lr, beta1, beta2, eps, weight_decay)
