"""Files: text decoded the same way for every reader, the one atomic write (:class:`AtomicFile`), and the
folder of caches.

Input files (the verbs' inputs, training and evaluation data) are decoded by
:func:`decode_text` (whole) or :func:`decoded` (as it arrives), so a bad byte is reported alike wherever
it is read.
Results (``--output``) and model files are written beside their destination
under a temporary name and renamed over it, so a reader never sees half a
file. A rename replaces whatever has the name: a symbolic link would become
a file of its own and a device or named pipe (``/dev/null``, a FIFO) a plain
file, so both are looked through first.
"""

from __future__ import annotations

import codecs
import io
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator


def decode_text(data: bytes, encoding: str) -> str:
    """``data`` decoded from ``encoding``, a UTF-8 byte-order mark skipped (Windows editors and Excel's
    "CSV UTF-8" write one). LookupError for an unknown encoding; ValueError naming the line, byte and
    offset of the first byte that does not decode."""
    return "".join(decoded(io.BytesIO(data), encoding))


# Bytes read at a time: a stream's text comes out as it arrives, in constant memory.
CHUNK_BYTES = 1 << 16


def decoded(stream: IO[bytes], encoding: str) -> Iterator[str]:
    """The text of ``stream`` as it arrives, decoded as :func:`decode_text` decodes; at a byte that does
    not decode, the text before it comes out first, then the ValueError."""
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    decoder = codecs.getincrementaldecoder(codec)()
    offset = newlines = 0  # over the bytes given to the decoder so far
    while True:
        # read1: what a pipe has now, without waiting for a whole chunk.
        chunk = stream.read1(CHUNK_BYTES) if hasattr(stream, "read1") else stream.read(CHUNK_BYTES)
        pending = decoder.getstate()[0]  # the start of a character cut in two by the last chunk
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as error:
            data = pending + chunk
            yield decoder.decode(chunk[:max(error.start - len(pending), 0)])
            line = newlines - pending.count(b"\n") + data.count(b"\n", 0, error.start) + 1
            raise ValueError(f"line {line}: not valid {encoding} (byte 0x{data[error.start]:02x} at offset"
                             f" {offset - len(pending) + error.start})") from None
        offset += len(chunk)
        newlines += chunk.count(b"\n")
        if text:
            yield text
        if not chunk:
            return


def cache_dir() -> Path:
    """Where work worth keeping between runs is cached: ``$NLP_TOOL_HOME/cache``, else the platform's user cache
    directory for nlp-tool (``~/.cache/nlp-tool`` on Linux). Anything in it may be deleted at any time."""
    from toolkit.plugins import ENV_HOME

    home = os.environ.get(ENV_HOME)
    if home:
        return Path(home) / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir("nlp-tool", appauthor=False))


def write_target(path: str | os.PathLike) -> tuple[str, bool]:
    """The path the bytes should reach (symbolic links followed) and whether it can be replaced by a rename.

    False for an existing file that is not a regular one (a device, a named
    pipe, a socket): such a file is written in place, never replaced.
    """
    target = os.path.realpath(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target, True
    return target, stat.S_ISREG(mode)


def new_file_mode(path: str | os.PathLike) -> int:
    """Permission bits for a file that replaces ``path``: those of the file it replaces, else what the umask allows.

    A temporary file is created private (0600); without this, every write
    would narrow an existing file's permissions.
    """
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # Linux shows the umask in /proc. Elsewhere it can only be read by setting
    # it, for an instant, for every thread of the process: to 0o077, so that a
    # file another thread creates meanwhile is private rather than open to all.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


class AtomicFile:
    """A binary file that appears at ``path`` complete or not at all: the one atomic write of the toolkit.

    The bytes go to a temporary file beside the destination; :meth:`commit`
    flushes them to disk (fsync), gives the file the mode of the one it
    replaces (or the umask's) and renames it over ``path``; :meth:`discard`
    removes it, leaving any earlier file as it was. As a context manager it
    commits on success and discards on any exception, Ctrl-C included.
    ``path`` must be replaceable (see :func:`write_target`), in a folder
    that exists (FileNotFoundError otherwise).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        directory = os.path.dirname(self.path) or "."
        fd, self._tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", suffix=".tmp", dir=directory)
        try:
            self.stream: IO[bytes] = os.fdopen(fd, "wb")
        except BaseException:  # Ctrl-C or SIGTERM this early must not leave the temporary file either
            os.close(fd)
            os.unlink(self._tmp)
            raise
        self._done = False

    def commit(self) -> None:
        if self._done:
            return
        try:
            self.stream.flush()
            os.fsync(self.stream.fileno())
            self.stream.close()
            os.chmod(self._tmp, new_file_mode(self.path))
            os.replace(self._tmp, self.path)
        except BaseException:
            self.discard()
            raise
        self._done = True

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self.stream.close()
        except OSError:
            # Closing flushes what is buffered, which fails again on a full disk; those bytes are being thrown
            # away, and the temporary file must go all the same.
            pass
        finally:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass

    def __enter__(self) -> IO[bytes]:
        return self.stream

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


class TooLarge(OSError):
    """A file over its size limit, refused before it reached its destination."""


def move_within(source: str | os.PathLike, destination: str | os.PathLike, max_bytes: int) -> int:
    """Rename ``source`` over ``destination`` if it is at most ``max_bytes``; its size. Otherwise TooLarge,
    ``source`` removed and ``destination`` untouched: the default-model scripts stage a model file beside
    its destination and ship it only within the size limit."""
    size = os.stat(source).st_size
    if size > max_bytes:
        os.unlink(source)
        raise TooLarge(f"{os.fspath(source)} is {size / 2**20:.2f} MB, over the {max_bytes / 2**20:.0f} MB limit:"
                       f" {os.fspath(destination)} was not written")
    os.replace(source, destination)
    return size
