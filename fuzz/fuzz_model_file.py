"""Coverage-guided fuzzer (atheris) for the model file reader.

Contract under test (docs/model-format.md, issue 18): ``read_model_file`` and
``read_metadata`` (and ``load_model`` with FUZZ_LOAD_MODEL=1) either return or
raise ``toolkit.errors.ModelFileError``, for any bytes at all. Any other
exception is a crash.

Random bytes rarely get past the zip CRCs and the SHA-256 checks, so most of
the reader would go untested. The first byte of each input therefore picks a
mode:

- bit 0 clear: the rest is the file, as is (damaged containers, bad CRCs);
- bit 0 set ("repair"): the rest is read as a zip, ignoring its CRCs; if
  config.json parses as a JSON object, its array digests and config_sha256 are
  recomputed to match the (mutated) members, and the zip is written again with
  correct CRCs. The mutations then reach the npy headers, the shapes, the
  bounds and the config checks behind the checksums. Bit 1 then stores the
  members DEFLATE-compressed, which the reader must refuse.

Run through ``scripts/fuzz.sh model_file MINUTES``; it passes the seed corpus
fuzz/corpus/model_file/ and sets FUZZ_KEEP_GOING=1 (crashes are saved under
fuzz/crashes/model_file/ and the run goes on).
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import instrument_module, record_crash  # noqa: E402

import numpy as np  # noqa: E402

with atheris.instrument_imports(include=["toolkit"]):
    from toolkit.errors import ModelFileError
    from toolkit.nn import model_file

# The zip and npy parsers the reader drives were loaded with numpy, before
# any import hook: instrument them in place, so that their branches guide the
# mutations as well as the reader's own.
for _module in (zipfile, np.lib.format, sys.modules.get("numpy.lib._format_impl")):
    if _module is not None:
        instrument_module(_module)

TARGET = "model_file"
# FUZZ_LOAD_MODEL=1 also rebuilds the layers (load_model): the architecture
# numbers then drive allocations, so run it with a memory limit in mind.
READERS = [model_file.read_metadata, model_file.read_model_file]
if os.environ.get("FUZZ_LOAD_MODEL") == "1":
    READERS.append(model_file.load_model)
# A file per process on tmpfs where there is one: read_model_file takes a path.
_DIR = Path(tempfile.mkdtemp(prefix="fuzz-model-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
_PATH = _DIR / "model.nlpt"


def _members(blob: bytes) -> list[tuple[str, bytes]] | None:
    """The members of a zip, read without checking CRCs; None if it is no zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            out = []
            for info in zf.infolist()[:64]:
                with zf.open(info) as member:
                    member._expected_crc = None  # the mutation broke it; repair it below
                    out.append((info.filename, member.read(1 << 20)))
            return out
    except Exception:  # noqa: BLE001 - any unreadable zip just goes in raw
        return None


def repair(blob: bytes, deflate: bool) -> bytes:
    """``blob`` with its CRCs, array digests and config digest made consistent again."""
    members = _members(blob)
    if members is None:
        return blob
    contents = dict(members)
    try:
        config = json.loads(contents.get("config.json", b""))
    except (ValueError, RecursionError):
        config = None
    if isinstance(config, dict):
        arrays = config.get("arrays")
        if isinstance(arrays, dict):
            for name in list(arrays):
                data = contents.get(f"arrays/{name}.npy")
                if data is not None:
                    arrays[name] = model_file._sha256(data)
        digest = getattr(model_file, "_config_digest", None)
        if "config_sha256" in config and digest is not None:
            try:
                config["config_sha256"] = digest(config)
            except (TypeError, ValueError):
                pass
        try:
            contents["config.json"] = json.dumps(config).encode()
        except (TypeError, ValueError, RecursionError):
            pass
    out = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", compression=method) as zf:
        for name, _ in members:
            zf.writestr(name, contents[name])
    return out.getvalue()


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0], data[1:]
    blob = repair(body, deflate=bool(mode & 2)) if mode & 1 else body
    _PATH.write_bytes(blob)
    for read in READERS:
        try:
            read(_PATH)
        except ModelFileError:
            pass
        except Exception as err:  # noqa: BLE001 - anything else breaks the contract
            record_crash(TARGET, data, err)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
