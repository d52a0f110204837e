"""Layer configs as model files hold them: the layer classes by name, the bounds on the sizes a config may
ask for, and rebuilding a layer tree from a config and its stored arrays, checked before anything is built."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from toolkit.nn.layers import Layer

    Array = np.ndarray

# Layer classes by name, for rebuilding a model from its JSON config.
LAYERS: dict[str, type[Layer]] = {}

# Upper bounds on the sizes a layer config read from a model file may ask for (docs/model-format.md,
# "Bounds"). A file's numbers are not trusted: they are checked against these, and the parameter shapes
# they imply against the file's stored arrays, before a layer is built, so that a few bytes of JSON
# cannot make the reader allocate gigabytes. They are far above the models trained here and above the
# pretrained checkpoints meant to be read (GPT-2: vocabulary 50,257, width 768, 12 layers, 1,024
# positions; BERT-base; Marian: ~60k pieces, 6 + 6 layers, width 512; XLM-R: 250,002 pieces).
MAX_VOCAB = 1 << 20  # rows of an embedding table (word, subword or hash-bucket ids)
MAX_DIM = 1 << 16  # any width: model, feed-forward, hidden, filters, channels, features
MAX_LEN = 1 << 17  # positions of a sequence
MAX_LAYERS = 256  # layers of a stack
MAX_HEADS = 1024  # attention heads
MAX_KERNEL = 1024  # convolution width
# A fixed (sinusoidal) position table is computed, not stored, so the file's arrays cannot bound it.
MAX_POSITION_TABLE = 1 << 22  # max_len * dim: 32 MB while it is computed in float64


def register_layer(cls: type[Layer]) -> type[Layer]:
    LAYERS[cls.__name__] = cls
    return cls


def check_size(owner: str, key: str, value: Any, low: int, high: int) -> int:
    """``value`` if it is an integer from ``low`` to ``high``; ValueError naming ``owner`` and ``key`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{owner} {key} must be an integer from {low} to {high}, not {value!r}")
    return value


def nested(*children: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """The parameter shapes of a layer whose children have ``children``, by path (as named_parameters)."""
    return {f"{i}.{name}": shape for i, shapes in enumerate(children) for name, shape in shapes.items()}


def _layer_class(config: Any) -> type[Layer]:
    if not isinstance(config, dict):
        raise ValueError(f"a layer config is a JSON object, not {type(config).__name__}")
    name = config.get("class")
    if not isinstance(name, str) or name not in LAYERS:
        raise ValueError(f"unknown layer class {name!r}")
    return LAYERS[name]


def layer_from_config(config: dict) -> Layer:
    """Rebuild a layer (and its children) from ``to_config()`` output; weights are set separately.

    ValueError, TypeError or KeyError for a config that is not one (sizes beyond the bounds above
    included), which readers of model files turn into ModelFileError."""
    return _layer_class(config).from_config(config["config"])


def layer_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """The parameter shapes, by path, of the layer tree ``config`` describes, without building it;
    ValueError, TypeError or KeyError as :func:`layer_from_config`."""
    cls = _layer_class(config)
    args = cls.checked_config(config["config"])
    return cls.param_shapes(args)


def layer_from_arrays(config: dict, arrays: dict[str, Array], prefix: str = "",
                      kind: type[Layer] | None = None) -> Layer:
    """The layer tree of ``config`` (a ``kind``) with its parameters from ``arrays`` (each under ``prefix``
    plus its path; floating arrays of any width, used as float32).

    The config's sizes and the shapes they imply are checked against the arrays before anything is
    built: a config whose numbers the arrays do not back costs nothing. ValueError, TypeError or
    KeyError saying what does not fit."""
    cls = _layer_class(config)
    if kind is not None and not issubclass(cls, kind):
        raise ValueError(f"the architecture is a {cls.__name__}, not a {kind.__name__}")
    for name, shape in layer_shapes(config).items():
        stored = arrays.get(prefix + name)
        if stored is None:
            raise ValueError(f"array {prefix + name!r} is missing")
        if stored.shape != shape or stored.dtype.kind != "f":
            raise ValueError(f"array {prefix + name!r} is {stored.dtype} {stored.shape}, the architecture needs"
                             f" floats {shape}")
    from toolkit.nn.layers import weights_to_come  # layers imports this module

    with weights_to_come():  # every parameter is set below: drawing them first cost 0.1-0.2 s of a load
        layer = layer_from_config(config)
    for name, value, _ in layer.named_parameters():
        value[...] = arrays[prefix + name]
    return layer
