"""Where an atomically written file goes, and with which permissions.

Results (``--output``) and model files are written beside their destination
under a temporary name and renamed over it, so a reader never sees half a
file. A rename replaces whatever has the name: a symbolic link would become
a file of its own and a device or named pipe (``/dev/null``, a FIFO) a plain
file, so both are looked through first.
"""

from __future__ import annotations

import os
import stat


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
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask
