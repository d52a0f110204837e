"""Input files behind URLs (s3://, gs://, hdfs://, https://, file://, ...), opened through ``fsspec``.

An argument with ``scheme://`` is a URL; everything else is a local path.
fsspec comes with the ``dask`` extra; a filesystem's own package (s3fs,
gcsfs, ...) is the user's to install, and without it the URL is refused
naming what fsspec asked for.
"""

from __future__ import annotations

import glob
import re
from typing import IO, Any

from toolkit.errors import InputError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(source: str) -> bool:
    """Whether ``source`` names a file by URL rather than by local path."""
    return bool(_URL.match(source))


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise InputError(f"cannot open {url}: reading URLs needs fsspec: pip install \"nlp-tool[dask]\"") from None
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as error:  # an unknown protocol, or its filesystem package is missing
        raise InputError(f"cannot open {url}: {error}") from None


def expand_url(url: str) -> list[str]:
    """The files ``url`` names: itself, or with a glob the files it matches, sorted; InputError for a missing
    file, a directory or an unreachable store."""
    fs, path = _filesystem(url)
    try:
        if glob.has_magic(path):
            files = [fs.unstrip_protocol(found) for found in sorted(fs.glob(path)) if fs.isfile(found)]
            if not files:
                raise InputError(f"no file matches {url}")
            return files
        if fs.isdir(path):
            raise InputError(f"{url} is a directory; give files or a glob such as '{url.rstrip('/')}/*.txt'")
        if not fs.exists(path):
            raise InputError(f"no such file: {url}")
    except OSError as error:
        raise InputError(f"cannot open {url}: {error}") from None
    return [url]


def open_url(url: str) -> IO[bytes]:
    """``url`` opened for reading bytes (a context manager, as ``open`` gives)."""
    fs, path = _filesystem(url)
    return fs.open(path, "rb")


def url_version(url: str) -> dict:
    """What the manifest of ``-o DIR/`` records of an input URL: its size and the store's mark of its version
    (modification time or ETag, whichever the store gives)."""
    fs, path = _filesystem(url)
    info = fs.info(path)
    mark = next((info[key] for key in ("mtime", "LastModified", "last_modified", "ETag", "etag", "created")
                 if info.get(key) is not None), None)
    return {"path": url, "size": info.get("size"), "version": None if mark is None else str(mark)}
