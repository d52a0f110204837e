"""Model files: the arrays of a layer tree plus a JSON config, in one zip file.

Layout: ``config.json`` (format name and version, the architecture as layer
configs, and whatever metadata the caller adds: vocabulary, hyper-parameters,
metrics, how it was trained), then one ``arrays/<path>.npy`` per parameter.
Arrays are read with ``allow_pickle=False`` and the config with ``json``: a
model file is data, never code. Each array's SHA-256 is in the config, and
the config's own (``config_sha256``) covers the rest of it, architecture and
metadata included, so an altered file is caught as well as a truncated or
foreign one. Writes go through ``toolkit.files.AtomicFile``: a reader never
sees half a file, and an interrupted save leaves the old file intact.

A file is not trusted before it is checked (docs/model-format.md, "Reading
a file"): every member must be stored, not compressed, and lie within the
file; the config is bounded in size and nesting and strict JSON; each
array's ``.npy`` header must declare numbers whose count fills its member
exactly before its data is read. A damaged or hostile file therefore costs
memory in proportion to what it really holds, and whatever fails raises
``ModelFileError`` naming the file, never another exception.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# ModelFileError lived here before toolkit.errors; read_metadata and the checks of the config are numpy-free.
from toolkit.errors import ModelFileError, ModelNotFoundError
from toolkit.files import AtomicFile, write_target
from toolkit.model_config import (  # noqa: F401 (the bounds and read_metadata re-exported: they were here)
    FORMAT,
    FORMAT_VERSION,
    MAX_CONFIG_BYTES,
    MAX_DIRECTORY_BYTES,
    MAX_JSON_CONTAINERS,
    MAX_JSON_DEPTH,
    MAX_MEMBER_BYTES,
    MAX_MEMBERS,
    _config_digest,
    _depth_within,
    _first_line,
    _open,
    _oversized,
    _read_config,
    _reading,
    _sha256,
    read_metadata,
)
from toolkit.nn.layer_configs import layer_from_arrays
from toolkit.nn.layers import Layer

NPY_HEADER_BYTES = 10 + 10_000  # magic, version, length and numpy's own header limit
NUMERIC_KINDS = "biufc"  # bool, integers, floats, complex: never objects, strings or records
_CHUNK = 1 << 20


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
        value = np.asarray(value, order="C")  # ascontiguousarray would make a 0-d array 1-d
        if value.dtype.kind not in NUMERIC_KINDS:
            raise ValueError(f"array {name!r} holds {value.dtype} values; model files hold numbers only"
                             " (never Python objects)")
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
        # The digest is of the config as a reader parses it (keys as strings, tuples as lists).
        config = json.loads(json.dumps(config, sort_keys=True, allow_nan=False))
        config["config_sha256"] = _config_digest(config)
        config_bytes = json.dumps(config, indent=1, sort_keys=True).encode()
    except (TypeError, ValueError) as err:
        raise ValueError(f"model metadata is not JSON-serialisable: {err}") from err
    # A file the reader would refuse is not written: the bounds are the format's, not the reader's.
    names = ["config.json", *(f"arrays/{name}.npy" for name in blobs)]
    problem = _oversized(config_bytes) or (None if _depth_within(config, MAX_JSON_DEPTH) else
                                           f"config.json nests deeper than {MAX_JSON_DEPTH} levels")
    if problem:
        raise ValueError(f"model metadata is too large for a model file: {problem}; keep bulky data in an array")
    if len(names) > MAX_MEMBERS or sum(46 + len(name.encode()) for name in names) > MAX_DIRECTORY_BYTES:
        raise ValueError(f"{len(arrays)} arrays are more than a model file holds ({MAX_MEMBERS - 1}, their names"
                         f" {MAX_DIRECTORY_BYTES} bytes in all)")
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


def _npy_header(head: bytes) -> tuple[tuple, bool, np.dtype, int]:
    """(shape, fortran order, dtype, data offset) of the .npy member that starts with ``head``."""
    stream = io.BytesIO(head)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f".npy format version {version} is not read")
    return shape, fortran, dtype, stream.tell()


def _read_array(zf: zipfile.ZipFile, path: Path, name: str, digest: str) -> np.ndarray:
    """The array ``name``: its header checked against its member's size before the data is read, then
    the data read into place and checked against ``digest``."""
    try:
        info = zf.getinfo(f"arrays/{name}.npy")
    except KeyError:
        raise ModelFileError(f"{path}: array {name!r} is missing") from None
    with zf.open(info) as member:
        head = member.read(min(info.file_size, NPY_HEADER_BYTES))
        try:
            shape, fortran, dtype, offset = _npy_header(head)
        except ValueError as err:
            raise ModelFileError(f"{path}: array {name!r} has no readable .npy header ({_first_line(err)})") from err
        if dtype.kind not in NUMERIC_KINDS or dtype.hasobject:
            raise ModelFileError(f"{path}: array {name!r} holds {dtype} values; model files hold numbers only"
                                 " (Python objects are never unpickled)")
        if any(n < 0 for n in shape) or math.prod(shape) * dtype.itemsize != info.file_size - offset:
            raise ModelFileError(f"{path}: array {name!r} declares shape {shape} of {dtype} in a member of"
                                 f" {info.file_size} bytes")
        out = np.empty(math.prod(shape), dtype)
        flat = out.view(np.uint8)
        sha = hashlib.sha256(head)
        body = head[offset:]
        flat[: len(body)] = np.frombuffer(body, np.uint8)
        done = len(body)
        while done < flat.size:
            chunk = member.read(min(_CHUNK, flat.size - done))
            if not chunk:
                raise ModelFileError(f"{path}: array {name!r} is truncated")
            flat[done : done + len(chunk)] = np.frombuffer(chunk, np.uint8)
            sha.update(chunk)
            done += len(chunk)
    if sha.hexdigest() != digest:
        raise ModelFileError(f"{path}: array {name!r} does not match its checksum (file altered?)")
    return out.reshape(shape[::-1]).transpose() if fortran else out.reshape(shape)


def read_model_file(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """The config and arrays of a model file, verified; ModelFileError naming the file otherwise, whatever the
    damage, having allocated no more than the file holds."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: no such model file")
    with _reading(path), _open(path) as zf:
        config = _read_config(zf, path, verify=True)
        arrays = {name: _read_array(zf, path, name, digest) for name, digest in config.get("arrays", {}).items()}
    return config, arrays


def load_model(path: str | os.PathLike) -> tuple[Layer, dict[str, Any]]:
    """Rebuild the layer tree of a model file with its weights; return (model, metadata)."""
    config, arrays = read_model_file(path)
    if config.get("architecture") is None:
        raise ModelFileError(f"{path}: holds arrays but no layer architecture; read it with read_model_file()")
    try:
        model = layer_from_arrays(config["architecture"], arrays)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path}: bad architecture in config.json ({type(err).__name__}: {err})") from err
    extra = set(arrays) - {name for name, _, _ in model.named_parameters()}
    if extra:
        raise ModelFileError(f"{path}: arrays {sorted(extra)} are not in the architecture")
    return model, config.get("metadata", {})


def rewrite_metadata(source: str | os.PathLike, change: Callable[[dict], Any],
                     target: str | os.PathLike | None = None) -> dict:
    """The model file ``source`` written again (at ``target``, by default in its place) with its metadata
    edited by ``change(metadata)``; the edited metadata. The arrays and architecture are copied as they are."""
    config, arrays = read_model_file(source)
    change(config["metadata"])
    save_arrays(source if target is None else target, arrays, config["metadata"], architecture=config["architecture"])
    return config["metadata"]


def text_arrays(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``texts`` as arrays a model file holds (it holds numbers only, and its JSON is kept small): their UTF-8
    bytes end to end (uint8) and the offset where each ends (int64)."""
    encoded = [text.encode("utf-8") for text in texts]
    ends = np.cumsum([len(data) for data in encoded], dtype=np.int64)
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), ends


def texts_from_arrays(data: np.ndarray, ends: np.ndarray) -> list[str]:
    """The texts :func:`text_arrays` stored; ValueError for arrays that do not hold such texts."""
    if data.dtype != np.uint8 or data.ndim != 1 or ends.dtype.kind not in "iu" or ends.ndim != 1:
        raise ValueError(f"texts are stored as bytes (uint8) and their ends (integers), not {data.dtype}"
                         f" {data.shape} and {ends.dtype} {ends.shape}")
    if len(ends) and (ends[0] < 0 or (np.diff(ends) < 0).any() or ends[-1] != len(data)):
        raise ValueError("the ends of the stored texts do not cut their bytes in order")
    raw = data.tobytes()
    starts = [0, *ends[:-1].tolist()]
    try:
        return [raw[start:end].decode("utf-8") for start, end in zip(starts, ends.tolist())]
    except UnicodeDecodeError as error:
        raise ValueError(f"a stored text is not UTF-8 ({error})") from None
