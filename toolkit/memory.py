"""How a command-line run's C allocator treats the memory a batch frees: kept for the next batch.

A stream runs batch after batch, each allocating and freeing arrays of
about the same sizes. glibc hands such memory back to the system when it
is freed (arrays above its mmap threshold, 128 KB at first, are unmapped;
a free heap top above its trim threshold is trimmed) and faults it in
again for the next batch, so the resident size of `chat -i jsonl` swung
between 128 and 170 MB with its batches (issue 18, docs/reliability.md)
without growing. Kept, it stays at the high-water mark: 169.7-169.8 MB
over 11,136 conversations, and 5 % faster.

Only the command line does this: the process is its own. A library must
not change its host's allocator, so the Python API leaves it alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt's parameters (glibc's malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
# glibc's largest mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX): arrays below it come from the
# heap; larger ones (a GPT-2 weight matrix, say) are still mapped and unmapped on their own.
MMAP_THRESHOLD = 32 << 20
# Free memory at the heap's top kept before any is given back: a batch's arrays, a few tens of MB.
TRIM_THRESHOLD = 128 << 20
# The user's own allocator settings win.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_memory(trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Have glibc keep freed memory for reuse (see the module's docstring); whether it did. Nothing is changed
    off Linux, under another C library, or when the environment sets glibc's allocator options."""
    if not sys.platform.startswith("linux") or any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (AttributeError elsewhere): musl's mallopt ignores all
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
