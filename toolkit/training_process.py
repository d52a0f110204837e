"""How a process that trains sets itself up: `nlp-tool train`, the scripts that train the default models, and
the benchmarks that time our training as that command runs it. Not the Python API: a library leaves its
host's threads and allocator alone.

Neither this module nor what it imports loads numpy: the setup must come first.
"""

from __future__ import annotations

from toolkit.memory import keep_freed_memory
from toolkit.threads import short_blas_spin

# A training step frees its activations and allocates them again in the next step: some 200 MB for the default
# language model, above the 128 MB a stream keeps. glibc gave the excess back and faulted it in again, 23,000
# page faults a step, and the step ran 10-15 % slower (3,540-3,730 against 3,990-4,280 tokens/s). A training
# process keeps all it frees: its resident size is its peak either way.
TRAINING_TRIM_THRESHOLD = 2**31 - 1


def set_up_training_process() -> None:
    """OpenBLAS's threads sleep after a product (:func:`toolkit.threads.short_blas_spin`), and the C allocator
    keeps freed memory for the next step. Call it before numpy is imported."""
    short_blas_spin()
    keep_freed_memory(TRAINING_TRIM_THRESHOLD)
