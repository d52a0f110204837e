"""Model files: the arrays of a layer tree plus a JSON config, in one zip file.

Layout: ``config.json`` (format name and version, the architecture as layer
configs, and whatever metadata the caller adds: vocabulary, hyper-parameters,
metrics, how it was trained), then one ``arrays/<path>.npy`` per parameter.
Arrays are read with ``allow_pickle=False`` and the config with ``json``: a
model file is data, never code. Each array's SHA-256 is in the config, so an
altered file is caught as well as a truncated or foreign one. Writes go
through ``toolkit.files.AtomicFile``: a reader never sees half a file, and
an interrupted save leaves the old file intact.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# ModelFileError lived here before toolkit.errors.
from toolkit.errors import ModelFileError, ModelNotFoundError
from toolkit.files import AtomicFile, write_target
from toolkit.nn.layers import Layer, layer_from_config

FORMAT = "nlp-tool-model"
FORMAT_VERSION = 1


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray], metadata: dict[str, Any] | None = None,
                architecture: dict | None = None) -> Path:
    """Write named arrays, metadata and (optionally) a layer architecture to ``path`` atomically.

    For models that are not a layer tree (a linear model's coefficients, say);
    ``save_model`` is this with the arrays and architecture of a Layer. A
    symbolic link's target is replaced; a path that is a device or named pipe
    is refused (ValueError), since a model file must be one that can be read back.
    """
    target, replaceable = write_target(path)
    if not replaceable:
        raise ValueError(f"{path} is not a regular file; a model must be written to a file")
    path = Path(target)
    blobs: dict[str, bytes] = {}
    for name, value in arrays.items():
        value = np.ascontiguousarray(value)
        if value.dtype == object:
            raise ValueError(f"array {name!r} holds Python objects; model files hold numbers only")
        buf = io.BytesIO()
        np.lib.format.write_array(buf, value, allow_pickle=False)
        blobs[name] = buf.getvalue()
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "arrays": {name: _sha256(data) for name, data in blobs.items()},
        "metadata": metadata or {},
    }
    try:
        config_bytes = json.dumps(config, indent=1, sort_keys=True, allow_nan=False).encode()
    except (TypeError, ValueError) as err:
        raise ValueError(f"model metadata is not JSON-serialisable: {err}") from err
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFile(path) as raw:
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("config.json", config_bytes)
            for name, data in blobs.items():
                zf.writestr(f"arrays/{name}.npy", data)
    return path


def save_model(path: str | os.PathLike, model: Layer, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` and ``metadata`` (JSON-serialisable) to ``path`` atomically; return the path."""
    arrays = {name: value for name, value, _ in model.named_parameters()}
    return save_arrays(path, arrays, metadata, architecture=model.to_config())


def read_model_file(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """The config and arrays of a model file, verified; ModelFileError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: no such model file")
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                config = json.loads(zf.read("config.json"))
            except KeyError:
                raise ModelFileError(f"{path}: not an nlp-tool model file (no config.json)") from None
            if not isinstance(config, dict) or config.get("format") != FORMAT:
                raise ModelFileError(f"{path}: not an nlp-tool model file (format {config.get('format')!r})"
                                     if isinstance(config, dict) else f"{path}: not an nlp-tool model file")
            version = config.get("format_version")
            if not isinstance(version, int) or version > FORMAT_VERSION:
                raise ModelFileError(
                    f"{path}: model format version {version!r} is newer than this nlp-tool reads "
                    f"({FORMAT_VERSION}); upgrade nlp-tool"
                )
            arrays = {}
            for name, digest in config.get("arrays", {}).items():
                try:
                    data = zf.read(f"arrays/{name}.npy")
                except KeyError:
                    raise ModelFileError(f"{path}: array {name!r} is missing") from None
                if _sha256(data) != digest:
                    raise ModelFileError(f"{path}: array {name!r} does not match its checksum (file altered?)")
                arrays[name] = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, json.JSONDecodeError, UnicodeDecodeError,
            EOFError, OSError, ValueError) as err:
        raise ModelFileError(f"{path}: not a readable nlp-tool model file ({type(err).__name__}: {err})") from err
    return config, arrays


def load_model(path: str | os.PathLike) -> tuple[Layer, dict[str, Any]]:
    """Rebuild the layer tree of a model file with its weights; return (model, metadata)."""
    config, arrays = read_model_file(path)
    if config.get("architecture") is None:
        raise ModelFileError(f"{path}: holds arrays but no layer architecture; read it with read_model_file()")
    try:
        model = layer_from_config(config["architecture"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path}: bad architecture in config.json ({err})") from err
    expected = {name: value for name, value, _ in model.named_parameters()}
    if set(expected) != set(arrays):
        raise ModelFileError(
            f"{path}: arrays {sorted(set(arrays) ^ set(expected))} do not match the architecture"
        )
    for name, value in expected.items():
        if arrays[name].shape != value.shape or arrays[name].dtype != value.dtype:
            raise ModelFileError(
                f"{path}: array {name!r} has shape {arrays[name].shape} {arrays[name].dtype}, "
                f"the architecture needs {value.shape} {value.dtype}"
            )
        value[...] = arrays[name]
    return model, config.get("metadata", {})


def rewrite_metadata(source: str | os.PathLike, change: Callable[[dict], Any],
                     target: str | os.PathLike | None = None) -> dict:
    """The model file ``source`` written again (at ``target``, by default in its place) with its metadata
    edited by ``change(metadata)``; the edited metadata. The arrays and architecture are copied as they are."""
    config, arrays = read_model_file(source)
    change(config["metadata"])
    save_arrays(source if target is None else target, arrays, config["metadata"], architecture=config["architecture"])
    return config["metadata"]


def read_metadata(path: str | Path) -> dict:
    """A model file's metadata from its config.json alone (cheap: no array is read); ModelFileError if unreadable."""
    try:
        with zipfile.ZipFile(path) as zf:
            metadata = json.loads(zf.read("config.json")).get("metadata", {})
        if not isinstance(metadata, dict):
            raise TypeError("metadata is not an object")
        return metadata
    except (OSError, KeyError, AttributeError, TypeError, ValueError, zipfile.BadZipFile):
        read_model_file(path)  # the full reader says precisely what is wrong with the file
        raise
