"""Write the seed corpora of the fuzzers: fuzz/corpus/model_file/ and fuzz/corpus/kernels/.

usage: python fuzz/make_corpus.py

The seeds are committed; this script is how they were made, so that they can
be made again after a change to the model format. Model seeds are small
valid files (save_arrays, save_model) and a few damaged ones, each once as is
and once in the harness's "repair" mode (first byte 1), which keeps the
checksums consistent so that the fuzzer works behind them.
"""

from __future__ import annotations

import io
import struct
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def model_files() -> dict[str, bytes]:
    import toolkit.nn as nn

    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.nlpt"
        nn.save_arrays(path, {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array([3, 1], np.int64)},
                       {"task": "fuzz", "labels": ["neg", "pos"]})
        out["arrays"] = path.read_bytes()
        nn.save_arrays(path, {}, {})
        out["empty"] = path.read_bytes()
        nn.save_arrays(path, {"f": np.asfortranarray(np.ones((2, 2), np.float64)), "b": np.array([True, False])})
        out["fortran_bool"] = path.read_bytes()
        model = nn.Sequential([nn.Embedding(5, 3, padding_idx=0, seed=0), nn.Dense(3, 2, seed=0)])
        nn.save_model(path, model, {"task": "fuzz"})
        out["embed_dense"] = path.read_bytes()
    valid = out["arrays"]
    # Damaged ones: cut short, one byte flipped, a member compressed, an npy
    # header that declares far more numbers than its member holds.
    out["truncated"] = valid[: len(valid) // 2]
    flipped = bytearray(valid)
    flipped[len(flipped) // 3] ^= 0x40
    out["flipped"] = bytes(flipped)
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(valid)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    out["deflated"] = buf.getvalue()
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 8
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(valid)) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, npy if info.filename == "arrays/w.npy" else src.read(info))
    out["huge_shape"] = buf.getvalue()
    return out


def kernel_seeds() -> dict[str, bytes]:
    # The kernels harness reads its input with atheris.FuzzedDataProvider: the
    # first byte picks the function. A few bytes per function get every one
    # explored from the start; the rest is found by the mutations.
    return {f"fn{i}": bytes([i]) + bytes(range(1, 64)) for i in range(9)}


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    target = HERE / "corpus" / "model_file"
    target.mkdir(parents=True, exist_ok=True)
    for name, blob in model_files().items():
        (target / f"{name}.raw").write_bytes(b"\x00" + blob)
        (target / f"{name}.repair").write_bytes(b"\x01" + blob)
    target = HERE / "corpus" / "kernels"
    target.mkdir(parents=True, exist_ok=True)
    for name, blob in kernel_seeds().items():
        (target / name).write_bytes(blob)


if __name__ == "__main__":
    main()
