"""Sharded, resumable output (``-o DIR/``): one part file per chunk of inputs, written atomically, and a manifest
that says which run the parts belong to and which are done.

A run into a directory writes ``part-00000.jsonl`` (``.txt``, ``.json``,
``.tsv`` for the other formats) for chunk 0 and so on, each through
:class:`toolkit.files.AtomicFile` (a temporary name, fsync, rename), then
records the part in ``manifest.json``, itself replaced atomically. The same
run again finds its parts and skips them; the manifest's ``run`` (what makes
the results: task, engine, options, the stamp, the inputs with their sizes
and modification times, the chunk size) must match, so that a directory
never mixes the results of two runs. A part on disk that the manifest does
not list (the run died between the two renames) is written again, whole:
nothing is written twice, nothing is lost.
"""

from __future__ import annotations

import json
import os
from typing import IO, Any

from toolkit.errors import UsageError
from toolkit.files import AtomicFile
from toolkit.remote import is_url, url_version

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
SUFFIXES = {"text": "txt", "jsonl": "jsonl", "json": "json", "tsv": "tsv"}


def is_directory_target(path: str | None) -> bool:
    """``--output`` names a directory (a path ending in a separator, or an existing directory): sharded output."""
    if path is None or path == "-":
        return False
    return path.endswith(("/", os.sep)) or os.path.isdir(path)


def input_files(paths: list[str]) -> list[dict]:
    """Each input file as the manifest records it: path as given, size and modification time (ns); for a URL,
    the store's mark of its version."""
    found = []
    for path in paths:
        if is_url(path):
            found.append(url_version(path))
            continue
        status = os.stat(path)
        found.append({"path": path, "size": status.st_size, "mtime_ns": status.st_mtime_ns})
    return found


def _plain(value: Any) -> Any:
    # As JSON reads it back (tuples as lists, keys as strings), so that a run compares equal to its manifest.
    return json.loads(json.dumps(value, sort_keys=True, ensure_ascii=False))


def _differences(old: dict, new: dict) -> list[str]:
    said = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        if key == "inputs":
            before = {item["path"]: item for item in old.get(key) or []}
            after = {item["path"]: item for item in new.get(key) or []}
            changed = [path for path in after if path in before and before[path] != after[path]]
            if changed:
                said.append(f"input {changed[0]!r} changed (size or modification time)")
            if set(before) != set(after):
                said.append("other input files")
        else:
            said.append(f"{key.replace('_', ' ')}: {old.get(key)!r} then, {new.get(key)!r} now")
    return said


class ShardedOutput:
    """The part files and manifest of one run in ``directory``; :meth:`open` first, then :meth:`write_part` per
    finished chunk and :meth:`finish` at the end.

    ``run`` is what makes the results (compared with the manifest's: a
    different run is refused with UsageError, exit 2); ``fmt`` picks the
    parts' suffix. Only one process writes a directory at a time (a lock
    held while it runs, released when it ends, however it ends).
    """

    def __init__(self, directory: str, run: dict, fmt: str) -> None:
        self.directory = directory
        self.run = _plain(run)
        self.suffix = SUFFIXES[fmt]
        self.parts: dict[str, dict] = {}
        self._lock: IO[bytes] | None = None

    @property
    def manifest_path(self) -> str:
        return os.path.join(self.directory, MANIFEST)

    def part_name(self, index: int) -> str:
        return f"part-{index:05d}.{self.suffix}"

    def open(self) -> set[int]:
        """Create the directory or take up the run it holds; the numbers of the parts already written.
        UsageError for a directory of another run, of other files, or one another process is writing."""
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as error:
            raise UsageError(f"cannot create {self.directory}: {error.strerror or error}") from None
        if not os.path.exists(self.manifest_path) and any(not name.startswith(".")
                                                          for name in os.listdir(self.directory)):
            # Not a directory of ours: its files might be taken for parts, or ours mixed among them.
            raise UsageError(f"{self.directory} holds files and no {MANIFEST}; give an empty or new directory")
        self._take_lock()
        try:
            with open(self.manifest_path, encoding="utf-8") as file:
                manifest = json.load(file)
        except FileNotFoundError:
            self._write_manifest()
            return set()
        except (OSError, ValueError) as error:
            raise UsageError(f"{self.manifest_path} cannot be read ({error}); give another directory") from None
        if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
            raise UsageError(f"{self.manifest_path} is not a manifest this version of nlp-tool writes;"
                             " give another directory")
        if manifest.get("run") != self.run:
            differences = "; ".join(_differences(manifest.get("run") or {}, self.run))
            raise UsageError(f"{self.directory} holds the output of another command ({differences}); give another"
                             " directory, or delete it to start again")
        self._remove_leftovers()
        # A part listed but missing on disk (deleted by hand) is done again.
        self.parts = {number: part for number, part in (manifest.get("parts") or {}).items()
                      if os.path.isfile(os.path.join(self.directory, part["file"]))}
        return {int(number) for number in self.parts}

    def _take_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks in the standard library's reach
            return
        self._lock = open(os.path.join(self.directory, ".lock"), "ab")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            self._lock = None
            raise UsageError(f"another run is writing to {self.directory}; wait for it or give another"
                             " directory") from None

    def _remove_leftovers(self) -> None:
        # Temporary files of a run that was killed; under the lock, no other run is writing them.
        for name in os.listdir(self.directory):
            if name.startswith((".part-", f".{MANIFEST}.")) and name.endswith(".tmp"):
                try:
                    os.unlink(os.path.join(self.directory, name))
                except FileNotFoundError:
                    pass

    def write_part(self, index: int, text: str, records: int, failed: int) -> None:
        """Part ``index`` with ``text`` (``records`` inputs, ``failed`` of them failed), then the manifest."""
        name = self.part_name(index)
        with AtomicFile(os.path.join(self.directory, name)) as stream:
            stream.write(text.encode("utf-8"))
        self.parts[str(index)] = {"file": name, "records": records, "failed": failed}
        self._write_manifest()

    def failed_before(self, done: set[int]) -> int:
        """Inputs that failed in the parts ``done`` by an earlier run."""
        return sum(self.parts[str(index)]["failed"] for index in done)

    def finish(self, total: int) -> None:
        """Record that the run is complete, in ``total`` parts."""
        self._write_manifest(complete=True, total=total)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _write_manifest(self, complete: bool = False, total: int | None = None) -> None:
        parts = dict(sorted(self.parts.items(), key=lambda item: int(item[0])))
        manifest = {
            "format_version": FORMAT_VERSION,
            "run": self.run,
            "parts": parts,
            "complete": complete,
            "total_parts": total,
            "records": sum(part["records"] for part in parts.values()),
            "failed": sum(part["failed"] for part in parts.values()),
        }
        with AtomicFile(self.manifest_path) as stream:
            stream.write((json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
        _sync_directory(self.directory)


def _sync_directory(directory: str) -> None:
    """Make the renames in ``directory`` survive a power cut (the files' own bytes were synced before)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows cannot open a directory; its renames are durable through the file system
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
