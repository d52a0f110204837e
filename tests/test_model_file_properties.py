"""Properties of the model reader (issue 18): a damaged file is read as it was written or refused with
ModelFileError, nothing else; any arrays and metadata a caller may save read back exactly."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import toolkit.nn as nn
from toolkit.errors import ModelFileError

# A few seconds in all: each example reads a file of a few kilobytes.
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@functools.lru_cache(maxsize=1)
def original() -> tuple[bytes, dict, dict[str, np.ndarray]]:
    """A small model file's bytes, config and arrays: a layer tree, its digests, metadata."""
    model = nn.Sequential([nn.Embedding(12, 4, padding_idx=0, seed=0), nn.Conv1D(4, 3, 2, seed=1),
                           nn.GlobalMaxPool1D(), nn.Dense(3, 2, seed=2)])
    with tempfile.TemporaryDirectory() as folder:
        data = nn.save_model(Path(folder) / "m.nlpt", model, {"task": "t", "vocab": ["a", "b"]}).read_bytes()
    config, arrays = read_bytes(data, "original.nlpt")
    return data, config, arrays


def read_bytes(data: bytes, name: str) -> tuple[dict, dict[str, np.ndarray]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            return nn.read_model_file(path)
        finally:
            meta_ok(path)


def meta_ok(path) -> None:
    """read_metadata gives a dict or ModelFileError, like the full reader."""
    try:
        assert isinstance(nn.read_metadata(path), dict)
    except ModelFileError:
        pass


def same_or_refused(data: bytes) -> None:
    _, config, arrays = original()
    try:
        got_config, got_arrays = read_bytes(data, "mutated.nlpt")
    except ModelFileError as error:
        assert "mutated.nlpt" in str(error) and "\n" not in str(error)
        return
    assert got_config == config
    assert got_arrays.keys() == arrays.keys()
    for name, value in arrays.items():
        assert got_arrays[name].dtype == value.dtype and np.array_equal(got_arrays[name], value)


@FUZZ
@given(st.data())
def test_flipped_bytes_read_the_original_or_raise_model_file_error(data):
    raw = bytearray(original()[0])
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    same_or_refused(bytes(raw))


@FUZZ
@given(st.data())
def test_cut_inserted_or_truncated_bytes_read_the_original_or_raise_model_file_error(data):
    raw = original()[0]
    at = data.draw(st.integers(0, len(raw)))
    kind = data.draw(st.sampled_from(["truncate", "cut", "insert"]))
    if kind == "truncate":
        raw = raw[:at]
    elif kind == "cut":
        raw = raw[:at] + raw[at + data.draw(st.integers(1, 64)):]
    else:
        raw = raw[:at] + data.draw(st.binary(min_size=1, max_size=64)) + raw[at:]
    same_or_refused(raw)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
DTYPES = st.sampled_from(["<f2", "<f4", "<f8", ">f4", "|i1", "<i2", "<i4", "<i8", "|u1", "<u4", "|b1", "<c8"])
ARRAYS = st.dictionaries(
    st.text(st.characters(codec="ascii", exclude_characters="/\\\x00"), min_size=1, max_size=8),
    DTYPES.flatmap(lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))),
    max_size=4,
)


@settings(max_examples=100, deadline=None)
@given(ARRAYS, st.dictionaries(st.text(max_size=6), JSON, max_size=4), st.booleans())
def test_any_arrays_and_metadata_read_back_exactly(tmp_path_factory, arrays, metadata, fortran):
    path = tmp_path_factory.mktemp("round") / "m.nlpt"
    if fortran:
        arrays = {name: np.asfortranarray(value) for name, value in arrays.items()}
    nn.save_arrays(path, arrays, metadata)
    config, got = nn.read_model_file(path)
    assert config["metadata"] == metadata and nn.read_metadata(path) == metadata
    assert got.keys() == arrays.keys()
    for name, value in arrays.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape
        assert got[name].tobytes() == np.ascontiguousarray(value).tobytes()
        assert got[name].flags.writeable
