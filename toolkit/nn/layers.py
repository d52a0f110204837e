"""Layers with explicit forward and backward, on the compiled kernels.

Every layer follows one protocol (thinc's): ``forward(x, train)`` returns the
output and a ``backprop`` callable; ``backprop(dy)`` adds the parameter
gradients into ``layer.grads`` and returns the gradient of the input. Nothing
is cached on the layer between the two calls, so a layer can serve several
forward passes at once (prediction from many threads, or a layer applied
twice in one model). Parameters and gradients are float32 arrays owned by the
layer, in ``params`` and ``grads`` under the same names.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import math
from typing import Any, Callable, ClassVar, Iterator

import numpy as np

from toolkit import kernels
from toolkit.nn.layer_configs import MAX_DIM, MAX_KERNEL, MAX_VOCAB, check_size, register_layer

Array = np.ndarray
Backprop = Callable[[Any], Any]

_WEIGHTS_TO_COME = contextvars.ContextVar("weights_to_come", default=False)


@contextlib.contextmanager
def weights_to_come() -> Iterator[None]:
    """Build layers whose every parameter is overwritten right after (by a checkpoint's tensors) without drawing
    their random initial values: the parameters start as zeros the system hands over only once written, so a
    loaded model is resident once. Drawn, a 66M-parameter DistilBERT's start held 500 MB before its weights
    were read, and GPT-2 small's 124M parameters were drawn twice (uniform, then GPT-2's normal)."""
    token = _WEIGHTS_TO_COME.set(True)
    try:
        yield
    finally:
        _WEIGHTS_TO_COME.reset(token)


def drawing_weights() -> bool:
    """Whether layers built now draw random initial weights (not inside :func:`weights_to_come`)."""
    return not _WEIGHTS_TO_COME.get()


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, shape: tuple) -> Array:
    """Keras' default kernel initialiser, so that models match their Keras originals."""
    if not drawing_weights():
        return np.zeros(shape, np.float32)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def f32(x: Array) -> Array:
    """C-contiguous float32, what the kernels take."""
    return np.ascontiguousarray(x, dtype=np.float32)


def matmul_last(x: Array, w: Array) -> Array:
    """``x @ w`` over the last axis of x, as ONE 2-D product: numpy runs a 3-D ``@`` as one small
    BLAS call per leading index, which is several times slower with a multi-threaded BLAS."""
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[1])


class Layer:
    """Base class: parameters, gradients, config and the forward protocol."""

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}

    def add_param(self, name: str, value: Array) -> None:
        self.params[name] = f32(value)
        # np.zeros takes its memory zeroed from the system (calloc), resident only once training writes into it:
        # a model that only infers holds its weights once, not twice (zeros_like writes every zero; a 66M-parameter
        # DistilBERT's gradients held 265 MB that nothing read).
        self.grads[name] = np.zeros(self.params[name].shape, self.params[name].dtype)

    def forward(self, x: Any, train: bool = False) -> tuple[Any, Backprop]:
        raise NotImplementedError

    def __call__(self, x: Any) -> Any:
        """Inference: the output alone."""
        return self.forward(x, train=False)[0]

    def children(self) -> list["Layer"]:
        return []

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Array, Array]]:
        """(path, parameter, gradient) for this layer and every layer inside it."""
        for name, value in self.params.items():
            yield prefix + name, value, self.grads[name]
        for i, child in enumerate(self.children()):
            yield from child.named_parameters(f"{prefix}{i}.")

    def zero_grad(self) -> None:
        for _, _, grad in self.named_parameters():
            grad.fill(0.0)

    def get_config(self) -> dict:
        """Constructor arguments, JSON-serialisable, without the weights."""
        return {}

    def to_config(self) -> dict:
        return {"class": type(self).__name__, "config": self.get_config()}

    # Integer constructor arguments and their (least, greatest) values, checked before a layer is built
    # from a config.
    bounds: ClassVar[dict[str, tuple[int, int]]] = {}

    @classmethod
    def checked_config(cls, config: Any) -> dict:
        """Every constructor argument (``config``'s, else the default) once ``config`` is found to name
        only arguments the constructor takes, and its sizes to be within :attr:`bounds`; ValueError or
        TypeError naming the key otherwise."""
        if not isinstance(config, dict):
            raise ValueError(f"a {cls.__name__} config is a JSON object, not {type(config).__name__}")
        try:
            bound = inspect.signature(cls).bind(**config)
        except TypeError as err:
            raise TypeError(f"{cls.__name__} config: {err}") from None
        bound.apply_defaults()
        args = dict(bound.arguments)
        for key, (low, high) in cls.bounds.items():
            check_size(cls.__name__, key, args[key], low, high)
        return args

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        """The shape of each parameter, by path, of the layer built from ``args`` (checked_config's):
        computed from the numbers alone, nothing allocated; ValueError for arguments that make no layer."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        return cls(**cls.checked_config(config))


@register_layer
class Embedding(Layer):
    """Lookup of rows of a (vocab_size, dim) table; the padding id's row is never trained."""

    bounds = {"vocab_size": (1, MAX_VOCAB), "dim": (1, MAX_DIM)}

    def __init__(self, vocab_size: int, dim: int, padding_idx: int | None = None, seed: Any = None):
        super().__init__()
        self.vocab_size, self.dim, self.padding_idx = vocab_size, dim, padding_idx
        # Keras' Embedding initialiser: uniform(-0.05, 0.05).
        table = (as_rng(seed).uniform(-0.05, 0.05, size=(vocab_size, dim)) if drawing_weights() else
                 np.zeros((vocab_size, dim), np.float32))
        if padding_idx is not None:
            table[padding_idx] = 0.0
        self.add_param("table", table)

    def forward(self, ids: Array, train: bool = False) -> tuple[Array, Backprop]:
        table = self.params["table"]
        out = kernels.embedding_forward(table, ids)

        def backprop(dy: Array) -> None:
            kernels.embedding_backward(f32(dy), ids, self.vocab_size, self.padding_idx, out=self.grads["table"])
            return None  # ids have no gradient

        return out, backprop

    def get_config(self) -> dict:
        return {"vocab_size": self.vocab_size, "dim": self.dim, "padding_idx": self.padding_idx}

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        if args["padding_idx"] is not None:
            check_size(cls.__name__, "padding_idx", args["padding_idx"], 0, args["vocab_size"] - 1)
        return {"table": (args["vocab_size"], args["dim"])}


@register_layer
class Conv1D(Layer):
    """1-D convolution over (B, T, C) sequences, stride 1, weights (width, C, filters).

    With ``activation="relu"`` and a GlobalMaxPool1D right after it in a
    Sequential, the pair runs as the fused conv -> ReLU -> max-pool kernel,
    which never builds the (B, T, filters) activation.
    """

    bounds = {"in_channels": (1, MAX_DIM), "filters": (1, MAX_DIM), "width": (1, MAX_KERNEL)}

    def __init__(self, in_channels: int, filters: int, width: int, padding: str = "valid",
                 activation: str | None = None, seed: Any = None):
        super().__init__()
        if activation not in (None, "relu"):
            raise ValueError(f"Conv1D activation must be None or 'relu', got {activation!r}")
        self.in_channels, self.filters, self.width = in_channels, filters, width
        self.padding, self.activation = padding, activation
        rng = as_rng(seed)
        self.add_param("w", glorot_uniform(rng, width * in_channels, width * filters, (width, in_channels, filters)))
        self.add_param("b", np.zeros(filters))

    def forward(self, x: Array, train: bool = False) -> tuple[Array, Backprop]:
        x = f32(x)
        w, b = self.params["w"], self.params["b"]
        y = kernels.conv1d_forward(x, w, b, self.padding)
        if self.activation == "relu":
            y = np.maximum(y, 0.0, out=y)

        def backprop(dy: Array) -> Array:
            dy = f32(dy)
            if self.activation == "relu":
                dy = np.where(y > 0, dy, np.float32(0.0))
            dx, dw, db = kernels.conv1d_backward(dy, x, w, self.padding)
            self.grads["w"] += dw
            self.grads["b"] += db
            return dx

        return y, backprop

    def forward_relu_maxpool(self, x: Array, train: bool = False) -> tuple[Array, Backprop]:
        """Conv -> ReLU -> global max over time as one kernel: (B, T, C) -> (B, filters)."""
        x = f32(x)
        w, b = self.params["w"], self.params["b"]
        pooled, argmax = kernels.conv1d_relu_maxpool_forward(x, w, b, self.padding)

        def backprop(dpooled: Array) -> Array:
            dx, dw, db = kernels.conv1d_relu_maxpool_backward(f32(dpooled), x, w, pooled, argmax, self.padding)
            self.grads["w"] += dw
            self.grads["b"] += db
            return dx

        return pooled, backprop

    def get_config(self) -> dict:
        return {"in_channels": self.in_channels, "filters": self.filters, "width": self.width,
                "padding": self.padding, "activation": self.activation}

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        if args["padding"] not in ("valid", "same"):
            raise ValueError(f"Conv1D padding must be 'valid' or 'same', not {args['padding']!r}")
        return {"w": (args["width"], args["in_channels"], args["filters"]), "b": (args["filters"],)}


@register_layer
class GlobalMaxPool1D(Layer):
    """Max over the time axis: (B, T, C) -> (B, C); the gradient goes to each channel's first maximum."""

    def forward(self, x: Array, train: bool = False) -> tuple[Array, Backprop]:
        idx = x.argmax(axis=1)
        out = np.take_along_axis(x, idx[:, None, :], axis=1)[:, 0, :]

        def backprop(dy: Array) -> Array:
            dx = np.zeros_like(x)
            np.put_along_axis(dx, idx[:, None, :], dy[:, None, :], axis=1)
            return dx

        return out, backprop


_ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu", "gelu_exact", "silu")


@register_layer
class Dense(Layer):
    """y = x @ W + b over the last axis, W (in, out); optional activation.

    ``exact_rows``: at inference, accumulate in float64 and round to float32,
    so that a row's output does not depend on the other rows of ``x``. BLAS
    kernels pick their accumulation order by matrix shape: with OpenBLAS's
    Haswell kernels (used on AMD Zen 5), float32 rows of ``x[:4] @ w`` and
    ``x @ w`` differ in the last bits, which let a classifier's rounded
    probabilities depend on the batch. A runtime switch for small heads, not
    part of the layer's config; training is unchanged.
    """

    exact_rows = False
    bounds = {"in_features": (1, MAX_DIM), "out_features": (1, MAX_DIM)}

    def __init__(self, in_features: int, out_features: int, activation: str | None = None, seed: Any = None):
        super().__init__()
        if activation is not None and activation not in _ACTIVATIONS:
            raise ValueError(f"Dense activation must be None or one of {_ACTIVATIONS}, got {activation!r}")
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        rng = as_rng(seed)
        self.add_param("w", glorot_uniform(rng, in_features, out_features, (in_features, out_features)))
        self.add_param("b", np.zeros(out_features))
        self._act = ACTIVATION_LAYERS[activation]() if activation else None

    def forward(self, x: Array, train: bool = False) -> tuple[Array, Backprop]:
        x = f32(x)
        w, b = self.params["w"], self.params["b"]
        if self.exact_rows and not train:
            y = f32(matmul_last(x.astype(np.float64), w.astype(np.float64)))
        else:
            y = matmul_last(x, w)
        y += b
        act_back = None
        if self._act is not None:
            y, act_back = self._act.forward(y, train)

        def backprop(dy: Array) -> Array:
            if act_back is not None:
                dy = act_back(dy)
            dy = f32(dy)
            x2 = x.reshape(-1, self.in_features)
            dy2 = dy.reshape(-1, self.out_features)
            self.grads["w"] += x2.T @ dy2
            self.grads["b"] += dy2.sum(axis=0)
            return matmul_last(dy, w.T)

        return y, backprop

    def get_config(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features, "activation": self.activation}

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        return {"w": (args["in_features"], args["out_features"]), "b": (args["out_features"],)}


@register_layer
class Dropout(Layer):
    """Inverted dropout: zeroes a fraction ``rate`` of values in training, identity in inference."""

    def __init__(self, rate: float, seed: Any = None):
        super().__init__()
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate!r}")
        self.rate = rate
        self.rng = as_rng(seed)

    def forward(self, x: Array, train: bool = False) -> tuple[Array, Backprop]:
        if not train or self.rate == 0.0:
            return x, lambda dy: dy
        scale = np.float32(1.0 / (1.0 - self.rate))
        mask = (self.rng.random(x.shape, dtype=np.float32) >= self.rate) * scale
        return x * mask, lambda dy: dy * mask

    def get_config(self) -> dict:
        return {"rate": self.rate}


@register_layer
class ReLU(Layer):
    def forward(self, x: Array, train: bool = False) -> tuple[Array, Backprop]:
        y = np.maximum(x, 0.0)
        return y, lambda dy: np.where(y > 0, dy, np.float32(0.0))


@register_layer
class Sigmoid(Layer):
    def forward(self, x: Array, train: bool = False) -> tuple[Array, Backprop]:
        y = sigmoid(x)
        return y, lambda dy: dy * y * (1.0 - y)


@register_layer
class Tanh(Layer):
    def forward(self, x: Array, train: bool = False) -> tuple[Array, Backprop]:
        y = np.tanh(x)
        return y, lambda dy: dy * (1.0 - y * y)


@register_layer
class GELU(Layer):
    """GELU, tanh approximation (as in GPT-2)."""

    approximate = "tanh"

    def forward(self, x: Array, train: bool = False) -> tuple[Array, Backprop]:
        x = f32(x)

        def backprop(dy: Array) -> Array:
            return kernels.gelu_backward(f32(dy), x, self.approximate)

        return kernels.gelu_forward(x, self.approximate), backprop


@register_layer
class ExactGELU(GELU):
    """GELU with erf (torch's default: BERT's and DistilBERT's checkpoints)."""

    approximate = "none"


@register_layer
class SiLU(Layer):
    """x * sigmoid(x), or swish: MarianMT's activation."""

    def forward(self, x: Array, train: bool = False) -> tuple[Array, Backprop]:
        x = f32(x)
        # sigmoid(x) = (1 + tanh(x / 2)) / 2: one pass, no overflow, no masks.
        s = np.tanh(x * np.float32(0.5))
        s *= np.float32(0.5)
        s += np.float32(0.5)
        return x * s, lambda dy: dy * s * (1.0 + x * (1.0 - s))


ACTIVATION_LAYERS: dict[str, type[Layer]] = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "gelu": GELU,
                                             "gelu_exact": ExactGELU, "silu": SiLU}


def log_softmax(logits: Array) -> Array:
    """Log-probabilities of each row of ``logits`` (B, V), computed in place (the decoders' next-token scores)."""
    logits -= logits.max(axis=1, keepdims=True)
    logits -= np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return logits


def sigmoid(x: Array) -> Array:
    """Logistic function without overflow warnings for large |x|."""
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


@register_layer
class LayerNorm(Layer):
    """Normalise over the last axis, then scale by gamma and shift by beta."""

    bounds = {"dim": (1, MAX_DIM)}

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.add_param("gamma", np.ones(dim))
        self.add_param("beta", np.zeros(dim))

    def forward(self, x: Array, train: bool = False) -> tuple[Array, Backprop]:
        """LN(x), and backprop(dy, ds=None): the gradient of x, plus ``ds`` when x also feeds a residual path
        (added in the kernel's pass instead of one of its own)."""
        x = f32(x)
        y, mean, rstd = kernels.layer_norm_forward(x, self.params["gamma"], self.params["beta"], self.eps)
        return y, self._backprop(x, mean, rstd)

    def add_forward(self, x: Array, residual: Array, train: bool = False) -> tuple[Array, Array, Backprop]:
        """LN(x + residual) and the sum itself, in one pass (a pre-norm block's residual add and its next
        norm); backprop as :meth:`forward`'s, for the sum."""
        y, s, mean, rstd = kernels.add_layer_norm_forward(f32(x), f32(residual), self.params["gamma"],
                                                          self.params["beta"], self.eps)
        return y, s, self._backprop(s, mean, rstd)

    def _backprop(self, x: Array, mean: Array, rstd: Array) -> Backprop:
        def backprop(dy: Array, ds: Array | None = None) -> Array:
            dx, dgamma, dbeta = kernels.layer_norm_backward(f32(dy), x, self.params["gamma"], mean, rstd,
                                                            None if ds is None else f32(ds))
            self.grads["gamma"] += dgamma
            self.grads["beta"] += dbeta
            return dx

        return backprop

    def get_config(self) -> dict:
        return {"dim": self.dim, "eps": self.eps}

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        eps = args.get("eps", 1e-5)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < math.inf:
            raise ValueError(f"LayerNorm eps must be a positive number, not {eps!r}")
        return {"gamma": (args["dim"],), "beta": (args["dim"],)}
