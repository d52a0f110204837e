"""Container layers: a sequence of layers, and a residual connection around a layer."""

from __future__ import annotations

from typing import Any

from toolkit.nn.layer_configs import MAX_LAYERS, check_size, layer_from_config, layer_shapes, nested, register_layer
from toolkit.nn.layers import Array, Backprop, Conv1D, GlobalMaxPool1D, Layer, ReLU


@register_layer
class Sequential(Layer):
    """Layers applied in order. Conv1D(activation="relu") then GlobalMaxPool1D,
    or Conv1D then ReLU then GlobalMaxPool1D, run as the fused kernel."""

    def __init__(self, layers: list[Layer]):
        super().__init__()
        self.layers = list(layers)

    def children(self) -> list[Layer]:
        return self.layers

    def _fused_run(self, i: int) -> int:
        """How many layers from i on form conv -> ReLU -> global max-pool (0 if they don't)."""
        run = self.layers[i : i + 3]
        if not isinstance(run[0], Conv1D):
            return 0
        if run[0].activation == "relu" and len(run) > 1 and isinstance(run[1], GlobalMaxPool1D):
            return 2
        if (run[0].activation is None and len(run) > 2 and isinstance(run[1], ReLU)
                and isinstance(run[2], GlobalMaxPool1D)):
            return 3
        return 0

    def forward(self, x: Any, train: bool = False) -> tuple[Any, Backprop]:
        backprops: list[Backprop] = []
        i = 0
        while i < len(self.layers):
            fused = self._fused_run(i)
            if fused:
                x, back = self.layers[i].forward_relu_maxpool(x, train)
                i += fused
            else:
                x, back = self.layers[i].forward(x, train)
                i += 1
            backprops.append(back)

        def backprop(dy: Any) -> Any:
            for back in reversed(backprops):
                dy = back(dy)
            return dy

        return x, backprop

    def get_config(self) -> dict:
        return {"layers": [layer.to_config() for layer in self.layers]}

    @classmethod
    def checked_config(cls, config: Any) -> dict:
        args = super().checked_config(config)
        if not isinstance(args["layers"], list):
            raise ValueError("Sequential layers must be a list of layer configs")
        check_size(cls.__name__, "number of layers", len(args["layers"]), 0, MAX_LAYERS)
        return args

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        return nested(*(layer_shapes(c) for c in args["layers"]))

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        return cls([layer_from_config(c) for c in cls.checked_config(config)["layers"]])


@register_layer
class Residual(Layer):
    """y = x + layer(x)."""

    def __init__(self, layer: Layer):
        super().__init__()
        self.layer = layer

    def children(self) -> list[Layer]:
        return [self.layer]

    def forward(self, x: Array, train: bool = False) -> tuple[Array, Backprop]:
        y, back = self.layer.forward(x, train)
        return x + y, lambda dy: dy + back(dy)

    def get_config(self) -> dict:
        return {"layer": self.layer.to_config()}

    @classmethod
    def param_shapes(cls, args: dict) -> dict[str, tuple[int, ...]]:
        return nested(layer_shapes(args["layer"]))

    @classmethod
    def from_config(cls, config: dict) -> "Residual":
        return cls(layer_from_config(cls.checked_config(config)["layer"]))
