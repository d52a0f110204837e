"""Checkpoints made by other tools, read without PyTorch and without unpickling anything.

A checkpoint is a Hugging Face model folder: ``config.json``, the weights
in ``model.safetensors`` (or shards listed in ``model.safetensors.index.json``)
and the tokenizer's files. It is named by its path, or by a model id
already in the local Hugging Face cache (``~/.cache/huggingface/hub``, or
where ``HF_HUB_CACHE`` / ``HF_HOME`` say): nothing is downloaded.
``pytorch_model.bin`` is a pickle and is refused, with the command that
converts it. Tensor names and shapes are read from the safetensors header
and checked against what the architecture needs before any weight is read.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.errors import CheckpointError, ModelNotFoundError

if TYPE_CHECKING:
    import numpy as np

    from toolkit.nn.attention import MultiHeadAttention
    from toolkit.nn.layers import Dense, LayerNorm

MODEL_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
WEIGHTS, SHARDS = "model.safetensors", "model.safetensors.index.json"
PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5")
CONVERT = ("convert it to safetensors where transformers is installed: python -c \"from transformers import"
           " AutoModel as M; M.from_pretrained('{folder}').save_pretrained('{folder}', safe_serialization=True)\"")
# safetensors dtypes numpy reads; bfloat16 has no numpy type.
FLOAT_DTYPES = {"F32", "F16", "F64"}


def hub_cache() -> Path:
    """The local Hugging Face hub cache, as huggingface_hub finds it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


def cached_model(model_id: str) -> Path | None:
    """The snapshot folder of ``model_id`` in the hub cache (the one ``refs/main`` names, else the newest), or
    None when it is not there."""
    if not MODEL_ID.fullmatch(model_id):
        return None
    root = hub_cache() / ("models--" + model_id.replace("/", "--"))
    ref = root / "refs" / "main"
    if ref.is_file():
        snapshot = root / "snapshots" / ref.read_text().strip()
        if snapshot.is_dir():
            return snapshot
    snapshots = sorted((root / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    return snapshots[-1] if snapshots else None


def checkpoint_folder(model: str) -> Path | None:
    """The folder of a pretrained checkpoint named by ``model`` (a folder with config.json, or a cached model
    id), or None when ``model`` names neither (an nlp-tool model file, say)."""
    path = Path(model)
    if path.is_dir():
        return path if (path / "config.json").is_file() else None
    if path.exists():
        return None
    return cached_model(model)


def checkpoint_type(folder: Path) -> str | None:
    """The ``model_type`` that ``folder``'s config.json names, read before anything else (None when the config
    cannot be read: the loader says why, with the file)."""
    try:
        kind = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


@dataclass
class Checkpoint:
    """A checkpoint folder opened: its config, and each tensor's (shape, dtype) by name, from the headers."""

    folder: Path
    config: dict
    tensors: dict[str, tuple[tuple[int, ...], str]]
    files: dict[str, Path]

    def check(self, expected: dict[str, tuple[int, ...]]) -> None:
        """CheckpointError naming the first tensor ``expected`` (name -> shape) that is missing, has another
        shape or is not a float type numpy reads."""
        for name, shape in expected.items():
            if name not in self.tensors:
                raise CheckpointError(f"{self.folder}: tensor {name!r} is missing (the config needs it)")
            have, dtype = self.tensors[name]
            if have != tuple(shape):
                raise CheckpointError(f"{self.folder}: tensor {name!r} has shape {list(have)}, the config needs"
                                      f" {list(shape)}")
            if dtype not in FLOAT_DTYPES:
                raise CheckpointError(f"{self.folder}: tensor {name!r} is {dtype}; nlp-tool reads float32, float16"
                                      " and float64 weights (save the model with torch_dtype=float32)")

    def load(self, names: list[str]) -> "Tensors":
        """The tensors ``names`` (checked by :meth:`check` first), read as float32 arrays when asked for."""
        return Tensors({name: self.files[name] for name in names})


class Tensors:
    """A checkpoint's tensors, each read from its file as a float32 array when asked for: a loader copies one
    into its layer and drops it, so that a model's weights are not held twice while it loads. Each read maps
    the file only for itself: the file's pages a mapping has read count in the process's resident memory until
    it is closed (one mapping held open for a 66M-parameter DistilBERT's load added 250 MB to its peak)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def __getitem__(self, name: str) -> np.ndarray:
        import numpy as np
        from safetensors import SafetensorError, safe_open

        path = self.files[name]
        try:
            with safe_open(str(path), framework="np") as handle:
                # The array is a copy of the file's bytes (safetensors reads them out), valid once it is closed.
                return np.ascontiguousarray(handle.get_tensor(name), dtype=np.float32)
        except (OSError, ValueError, RuntimeError, SafetensorError) as error:
            raise CheckpointError(f"{path}: cannot read tensor {name!r} ({str(error).splitlines()[0][:120]})") from None


def copy_layer_norm(layer: LayerNorm, tensors: Tensors, name: str) -> None:
    """Copy the checkpoint's layer norm ``name`` (its ``.weight`` and ``.bias``) into ``layer``."""
    layer.params["gamma"][...] = tensors[name + ".weight"]
    layer.params["beta"][...] = tensors[name + ".bias"]


def copy_linear(layer: Dense, tensors: Tensors, name: str) -> None:
    """Copy the checkpoint's torch ``Linear`` ``name`` into ``layer``: its (out, in) weight transposed to ours."""
    layer.params["w"][...] = tensors[name + ".weight"].T
    layer.params["b"][...] = tensors[name + ".bias"]


def copy_attention(attention: MultiHeadAttention, tensors: Tensors, names: dict[str, str]) -> None:
    """Copy the checkpoint's four attention projections, ``names``: "q", "k", "v", "o" -> its ``Linear`` names."""
    for part, name in names.items():
        attention.params["w" + part][...] = tensors[name + ".weight"].T
        attention.params["b" + part][...] = tensors[name + ".bias"]


def open_checkpoint(folder: Path) -> Checkpoint:
    """Read ``folder``'s config.json and its weights' headers; ModelNotFoundError for a folder without them,
    CheckpointError for damaged files or weights stored only as pickles."""
    from safetensors import SafetensorError, safe_open

    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelNotFoundError(f"{folder}: no config.json, not a model folder")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{config_path}: not a readable JSON config ({error})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: the config is not a JSON object")
    if (folder / SHARDS).is_file():
        try:
            index = json.loads((folder / SHARDS).read_text(encoding="utf-8"))["weight_map"]
            shards = sorted({folder / name for name in index.values()})
        except (OSError, KeyError, TypeError, AttributeError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{folder / SHARDS}: not a safetensors index ({error})") from None
    elif (folder / WEIGHTS).is_file():
        shards = [folder / WEIGHTS]
    else:
        pickled = [name for name in PICKLES if (folder / name).is_file()]
        if pickled:
            raise CheckpointError(f"{folder}: the weights are in {pickled[0]}, which nlp-tool does not read (a"
                                  f" pickle can run code); {CONVERT.format(folder=folder)}")
        raise ModelNotFoundError(f"{folder}: no {WEIGHTS}")
    tensors: dict[str, tuple[tuple[int, ...], str]] = {}
    files: dict[str, Path] = {}
    for shard in shards:
        try:
            with safe_open(str(shard), framework="np") as handle:
                for name in handle.keys():
                    part = handle.get_slice(name)
                    tensors[name] = (tuple(part.get_shape()), part.get_dtype())
                    files[name] = shard
        except (OSError, ValueError, RuntimeError, SafetensorError) as error:
            raise CheckpointError(f"{shard}: not a safetensors file ({str(error).splitlines()[0][:120]})") from None
    return Checkpoint(folder, config, tensors, files)
