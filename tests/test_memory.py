"""The command line keeps the memory a batch frees for the next one (toolkit.memory)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import sys
import numpy as np
from toolkit.memory import keep_freed_memory

def resident():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) // 1024

kept = keep_freed_memory() if sys.argv[1] == "keep" else False
before = resident()
for megabytes in (10, 20, 30):  # batches that grow, as a stream's do
    block = np.ones(megabytes << 18, dtype=np.float32)
    del block
print(kept, resident() - before)
"""


def probe(mode: str, **env: str) -> tuple[str, int]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60,
                          env={**environment, **env}, check=True)
    kept, grown = done.stdout.split()
    return kept, int(grown)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator, on Linux")
def test_freed_arrays_stay_resident_for_the_next_batch_only_when_asked():
    # Without the setting, glibc maps each array larger than any freed before on its own and unmaps it when it is
    # freed; with it, the arrays come from the heap, which keeps what they freed.
    assert probe("leave") == ("False", pytest.approx(0, abs=5))
    kept, grown = probe("keep")
    assert kept == "True" and grown >= 25


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator, on Linux")
def test_the_users_own_allocator_settings_win():
    assert probe("keep", MALLOC_TRIM_THRESHOLD_="1000000") == ("False", pytest.approx(0, abs=5))


TRAINING_PROBE = """
import resource, sys
from toolkit.memory import keep_freed_memory
from toolkit.training_process import set_up_training_process
if sys.argv[1] == "set up":
    set_up_training_process()
elif sys.argv[1] == "stream":
    keep_freed_memory()
import numpy as np

def step():  # a training step's activations: many arrays of a few MB, all freed at its end
    arrays = [np.ones(2 << 20, dtype=np.float32) for _ in range(40)]
    del arrays

step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator, on Linux")
def test_a_training_process_keeps_a_steps_memory_for_the_next_step():
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    faults = {mode: int(subprocess.run([sys.executable, "-c", TRAINING_PROBE, mode], capture_output=True, text=True,
                                       timeout=60, env=environment, check=True).stdout)
              for mode in ("set up", "stream", "as is")}
    # 320 MB freed and allocated again: faulted in again page by page unless all of it was kept, which the 128 MB
    # a stream keeps is not.
    assert faults["set up"] < 1000 < 10_000 < min(faults["stream"], faults["as is"]), faults
