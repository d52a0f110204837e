"""Model files' config.json read without numpy: the checks of the container and of the config, and a model
file's metadata (``read_metadata``), which the command line's --explain and the choice of a model by language
read at start-up. ``toolkit.nn.model_file`` reads the arrays on top of these."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from toolkit.errors import ModelFileError, ModelNotFoundError

FORMAT = "nlp-tool-model"
FORMAT_VERSION = 1

# Bounds on what a reader takes from a file (docs/model-format.md, "Bounds"). JSON costs up to about
# 25 times its size in Python objects (an empty object is 64 bytes), so config.json is kept small and its
# objects and arrays few: bulky data (a subword model, say) belongs in an array.
MAX_CONFIG_BYTES = 4 << 20
MAX_JSON_CONTAINERS = 200_000  # "{" and "[" characters in config.json
MAX_JSON_DEPTH = 64
MAX_MEMBERS = 10_000
# zipfile makes an object of about 500 bytes of each entry of the central directory (50 bytes and up) as it
# opens the file: the directory's size is checked first.
MAX_DIRECTORY_BYTES = 2 << 20
MAX_MEMBER_BYTES = 1 << 34  # 16 GiB: one array of a far larger model than the toolkit reads


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _config_digest(config: dict) -> str:
    """SHA-256 of the canonical JSON of ``config`` without its own digest: the same for the writer's
    dict and the reader's parsed copy, whatever the spacing or key order of the file."""
    body = {key: value for key, value in config.items() if key != "config_sha256"}
    return _sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode())


def _first_line(err: BaseException) -> str:
    lines = str(err).splitlines()
    return lines[0][:200] if lines else ""


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Any failure inside as a ModelFileError naming ``path``."""
    try:
        yield
    except ModelFileError:
        raise
    except Exception as err:  # zipfile, json and numpy fail on damaged input in many ways; the caller gets one
        raise ModelFileError(f"{path}: not a readable nlp-tool model file ({type(err).__name__}:"
                             f" {_first_line(err)})") from err


def _open(path: Path) -> zipfile.ZipFile:
    """The zip archive at ``path``, once every member is found stored (not compressed: nothing to inflate
    beyond the file's size), unencrypted and inside the file, the members together no larger than it."""
    size = path.stat().st_size
    with path.open("rb") as raw:
        end = zipfile._EndRecData(raw)  # the end record zipfile itself reads, zip64 included
    if end is not None and end[zipfile._ECD_SIZE] > MAX_DIRECTORY_BYTES:
        raise ModelFileError(f"{path}: a central directory of {end[zipfile._ECD_SIZE]} bytes; a model file's has"
                             f" at most {MAX_DIRECTORY_BYTES}")
    # The end record's count too, before zipfile builds an entry for each member (0.1 s for 10,001 of them, over
    # 1 s on a slow machine with tracemalloc on); the count zipfile finds is checked again below.
    if end is not None and end[zipfile._ECD_ENTRIES_TOTAL] > MAX_MEMBERS:
        raise ModelFileError(f"{path}: {end[zipfile._ECD_ENTRIES_TOTAL]} members; a model file has at most"
                             f" {MAX_MEMBERS}")
    zf = zipfile.ZipFile(path)
    try:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ModelFileError(f"{path}: {len(infos)} members; a model file has at most {MAX_MEMBERS}")
        total = 0
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED:
                raise ModelFileError(f"{path}: member {info.filename!r} is compressed (method {info.compress_type});"
                                     " model files store their members uncompressed")
            if info.flag_bits & 0x1:
                raise ModelFileError(f"{path}: member {info.filename!r} is encrypted")
            if (info.file_size != info.compress_size or info.file_size > MAX_MEMBER_BYTES
                    or info.header_offset + info.compress_size > size):
                raise ModelFileError(f"{path}: member {info.filename!r} declares {info.file_size} bytes, more than"
                                     " the file holds")
            total += info.compress_size
        if total > size:
            raise ModelFileError(f"{path}: members declare {total} bytes in a file of {size}")
    except BaseException:
        zf.close()
        raise
    return zf


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number in JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _depth_within(value: Any, limit: int) -> bool:
    """Whether ``value`` nests no deeper than ``limit`` objects and arrays (walked level by level, no recursion)."""
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(limit):
        level = [child for node in level for child in (node.values() if isinstance(node, dict) else node)
                 if isinstance(child, (dict, list))]
        if not level:
            return True
    return False


def _oversized(raw: bytes) -> str | None:
    """Why config.json bytes ``raw`` are more than a reader takes, or None."""
    if len(raw) > MAX_CONFIG_BYTES:
        return f"config.json has {len(raw)} bytes; at most {MAX_CONFIG_BYTES} are read"
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_CONTAINERS:
        return f"config.json holds more than {MAX_JSON_CONTAINERS} objects and arrays"
    return None


def _read_config(zf: zipfile.ZipFile, path: Path, verify: bool) -> dict:
    """config.json, checked: bounded, strict JSON, an nlp-tool config of a version read here, and (with
    ``verify``) matching its digest when it has one, as every file written since the digest has."""
    try:
        info = zf.getinfo("config.json")
    except KeyError:
        raise ModelFileError(f"{path}: not an nlp-tool model file (no config.json)") from None
    if info.file_size > MAX_CONFIG_BYTES:  # before reading it
        raise ModelFileError(f"{path}: config.json has {info.file_size} bytes; at most {MAX_CONFIG_BYTES} are read")
    raw = zf.read(info)
    problem = _oversized(raw)
    if problem:
        raise ModelFileError(f"{path}: {problem}")
    try:
        config = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        config = None
    if config is None or not _depth_within(config, MAX_JSON_DEPTH):
        raise ModelFileError(f"{path}: config.json nests deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an nlp-tool model file (format {config.get('format')!r})"
                             if isinstance(config, dict) else f"{path}: not an nlp-tool model file")
    version = config.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: model format version {version!r} is not one (1 to {FORMAT_VERSION})")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {version!r} is newer than this nlp-tool reads "
            f"({FORMAT_VERSION}); upgrade nlp-tool"
        )
    arrays = config.get("arrays", {})
    if not isinstance(arrays, dict) or not all(isinstance(digest, str) for digest in arrays.values()):
        raise ModelFileError(f"{path}: config.json 'arrays' is not an object of SHA-256 digests")
    if not isinstance(config.get("metadata", {}), dict):
        raise ModelFileError(f"{path}: config.json 'metadata' is not an object")
    if not isinstance(config.get("architecture"), (dict, type(None))):
        raise ModelFileError(f"{path}: config.json 'architecture' is not an object")
    digest = config.get("config_sha256")
    if verify and digest is not None and digest != _config_digest(config):
        raise ModelFileError(f"{path}: config.json does not match its checksum (file altered?)")
    return config


def read_metadata(path: str | os.PathLike) -> dict:
    """A model file's metadata from its config.json alone (cheap: no array is read); ModelFileError if unreadable.

    The config is checked as :func:`read_model_file` checks it but for its digest, which is verified when
    the model is read: this is the look an engine takes to see whose model a file is."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: no such model file")
    with _reading(path), _open(path) as zf:
        return _read_config(zf, path, verify=False).get("metadata", {})
