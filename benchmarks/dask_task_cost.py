"""What a Dask task costs on a `--cluster local:N` cluster, apart from our code (issue 22, docs/scale.md).

    python benchmarks/dask_task_cost.py [--tasks 80] [--workers 2] [--spin 0.05] [--repeat 2]

Starts the cluster as ``--cluster local:N`` does (``toolkit.distributed.local_cluster``)
and submits ``--tasks`` tasks of a function that keeps a core busy for ``--spin``
seconds and returns a classify chunk's worth of results (256 small dicts),
all at once, with three kinds of argument: a chunk of 256 IMDb reviews, 256
one-letter strings, and the 256 reviews pickled as one bytes object. Each
thread's CPU time is read from /proc before and after (no sampler slowing
anything): the command's threads (Dask's event loop holds the client, the
scheduler and the nannies) and each worker's, less the spinning itself.
Printed: milliseconds of CPU per task in the command's process and in the
workers, and the wall time against the spinning's own (tasks x spin / workers).
Linux only (/proc).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import pickle
import sys
import time
from pathlib import Path

REVIEWS = Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb" / "test.jsonl.gz"
CHUNK = 256
RESULT = {"label": "neg", "score": 0.99, "labels": [{"label": "neg", "score": 0.99}],
          "probabilities": {"neg": 0.99, "pos": 0.01}, "language": "en"}


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process, by thread id."""
    tick = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except FileNotFoundError:  # the thread ended while the list was read
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        seconds[tid] = (int(fields[11]) + int(fields[12])) / tick
    return seconds


def spin(values: list | bytes, seconds: float) -> list[dict]:
    if isinstance(values, bytes):
        values = pickle.loads(values)
    start = time.thread_time()  # this thread's CPU alone, not the worker's event loop's beside it
    while time.thread_time() - start < seconds:
        pass
    return [dict(RESULT) for _ in values]


def spent(before: dict[str, float], after: dict[str, float]) -> float:
    return sum(after[tid] - before.get(tid, 0.0) for tid in after)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=80)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--spin", type=float, default=0.05, help="seconds of CPU each task spends")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if not REVIEWS.exists():
        sys.exit(f"error: {REVIEWS} not found")
    import distributed

    from toolkit.distributed import local_cluster

    with gzip.open(REVIEWS, "rt", encoding="utf-8") as rows:
        texts = [json.loads(line)["text"] for line in itertools.islice(rows, CHUNK * args.tasks)]
    chunks = [texts[i:i + CHUNK] for i in range(0, len(texts), CHUNK)]
    kinds = {"256 reviews": chunks, "256 one-letter strings": [["x"] * CHUNK for _ in chunks],
             "256 reviews, one bytes object": [pickle.dumps(chunk, protocol=5) for chunk in chunks]}
    spinning = args.tasks * args.spin
    print(f"{args.tasks} tasks of {args.spin * 1000:.0f} ms on local:{args.workers}; CPU per task beyond the"
          " spinning, ms")
    print(f"{'argument':<32}{'command':>10}{'workers':>10}{'wall s':>9}{'spinning s':>12}")
    with local_cluster(args.workers) as cluster, distributed.Client(cluster, set_as_default=False) as client:
        client.run(lambda: None)  # every worker up
        for _, (kind, arguments) in itertools.product(range(args.repeat), kinds.items()):
            here, there = thread_cpu(), client.run(thread_cpu)
            start = time.perf_counter()
            futures = [client.submit(spin, values, args.spin, pure=False) for values in arguments]
            assert sum(len(f.result()) for f in futures) == CHUNK * len(arguments)
            wall = time.perf_counter() - start
            command = spent(here, thread_cpu())
            workers = sum(spent(there[w], after) for w, after in client.run(thread_cpu).items()) - spinning
            print(f"{kind:<32}{1000 * command / len(arguments):>10.1f}{1000 * workers / len(arguments):>10.1f}"
                  f"{wall:>9.2f}{spinning / args.workers:>12.2f}")
            del futures
            time.sleep(0.5)  # the results released before the next kind
    return 0


if __name__ == "__main__":
    sys.exit(main())
