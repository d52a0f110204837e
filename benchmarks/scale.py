"""Records per second of `nlp-tool summarize` and `classify` with 1 and 2 local worker processes and on a
2-worker Dask LocalCluster (issue 22).

    python benchmarks/scale.py [--docs 4000] [--workers 1 2] [--cluster local:2] [--repeat 2] [--chunk-size 256]

Each task reads ``--docs`` documents of ../shared/data as JSONL (summarize:
CNN/DailyMail test articles, repeated past their 4,490; classify: IMDb test reviews) and writes JSONL
to a file, as a user runs it: a new `nlp-tool` process per run, its wall
clock timed from start to exit, start-up and model loading included. The
runs (each worker count, then each ``--cluster``: ``local:N`` starts its
cluster inside the run, as a user's command does) take turns within each
repetition, so a change in the machine's load hits them alike, and their
outputs must be the same bytes. A cluster's row also gives its ratio to
the local pool of as many workers. A run on the first 8 documents shows the fixed cost of
a run (start-up, workers starting, models loading) beside it. The machine
must be idle: each run says how many cores other processes kept busy while
it ran ("others, cores", from /proc/stat less the run's own CPU time).

Then the start of two workers by "spawn" (what --workers uses) and by
"forkserver", each until both have run a chunk of one input.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = {"summarize": (DATA / "cnn_dailymail" / "test.jsonl.gz", "article"),
           "classify": (DATA / "imdb" / "test.jsonl.gz", "text")}


def write_inputs(task: str, count: int, path: Path) -> int:
    """The first ``count`` documents of the task's data set as JSONL ``{"id", "text"}``, the set read again from
    its start when it holds fewer (CNN/DailyMail's test part has 4,490); how many were written."""
    source, field = SOURCES[task]
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        while written < count:
            with gzip.open(source, "rt", encoding="utf-8") as rows:
                for line in itertools.islice(rows, count - written):
                    out.write(json.dumps({"id": str(written), "text": json.loads(line)[field]}) + "\n")
                    written += 1
    return written


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (every process, every core), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(exe: str, task: str, inputs: Path, output: Path, where: list[str], chunk_size: int
          ) -> tuple[float, float]:
    """Wall seconds of the run (``where``: its --workers or --cluster flag), and the cores that other processes
    kept busy meanwhile (the machine's busy time less the run's own CPU time, over the wall time): a run beside
    other work is not a measurement."""
    command = [exe, task, "-i", "jsonl", str(inputs), "-f", "jsonl", "-o", str(output), "-q", *where,
               "--chunk-size", str(chunk_size)]
    busy, own = busy_seconds(), children_seconds()
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - start
    others = (busy_seconds() - busy) - (children_seconds() - own)
    return wall, max(others, 0.0) / wall


def start_time(method: str) -> float:
    """Seconds for two workers started by ``method`` to each run a chunk of one input, in this process's first
    pool (a forkserver starts with the first pool, as in a command's run)."""
    import toolkit
    from toolkit import workers

    workers.START_METHOD = method
    pipe = toolkit.pipeline("summarize", "lead")
    start = time.perf_counter()
    list(workers.map(pipe, ["One. Two."] * 2, workers=2, chunk_size=1))
    return time.perf_counter() - start


def best_start_time(method: str, repeat: int) -> float:
    """The best of ``repeat`` :func:`start_time`, each in a new process."""
    runs = [subprocess.run([sys.executable, __file__, "--start-method", method], check=True, capture_output=True,
                           text=True).stdout for _ in range(repeat)]
    return min(float(run) for run in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=4000, help="documents per task")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    parser.add_argument("--cluster", nargs="*", default=["local:2"], help="--cluster values to compare")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each worker count and cluster")
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--tasks", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--start-method", help=argparse.SUPPRESS)  # one start_time measurement, printed
    args = parser.parse_args()
    if args.start_method:
        print(start_time(args.start_method))
        return 0
    exe = shutil.which("nlp-tool") or sys.exit("nlp-tool is not installed here: pip install -e . first")
    runs = {**{str(n): ["--workers", str(n)] for n in args.workers},
            **{cluster: ["--cluster", cluster] for cluster in args.cluster}}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        print(f"{'task':<10} {'docs':>5} {'workers':>8} {'seconds':>13} {'records/s':>15} {'x 1st row':>11}"
              f" {'x pool':>11} {'others, cores':>13} {'8 docs, s':>9}")
        for task in args.tasks:
            inputs = folder / f"{task}.jsonl"
            count = write_inputs(task, args.docs, inputs)
            few = folder / f"{task}-8.jsonl"
            write_inputs(task, 8, few)
            seconds: dict[str, list[float]] = {name: [] for name in runs}
            others: dict[str, list[float]] = {name: [] for name in runs}
            outputs: dict[str, bytes] = {}
            for _ in range(args.repeat):
                for name, where in runs.items():
                    output = folder / f"{task}-{name.replace(':', '-')}.out"
                    wall, busy = timed(exe, task, inputs, output, where, args.chunk_size)
                    seconds[name].append(wall)
                    others[name].append(busy)
                    outputs[name] = output.read_bytes()
            if len(set(outputs.values())) != 1:
                print(f"{task}: the outputs of {', '.join(runs)} differ", file=sys.stderr)
                return 1
            base = [count / s for s in seconds[next(iter(runs))]]
            for name, where in runs.items():
                rates = [count / s for s in seconds[name]]
                pool = seconds.get(name.removeprefix("local:")) if name.startswith("local:") else None
                versus = " / ".join(f"{p / s:.2f}" for p, s in zip(pool, seconds[name])) if pool else "-"
                fixed, _ = timed(exe, task, few, folder / "few.out", where, args.chunk_size)
                print(f"{task:<10} {count:>5} {name:>8} {' / '.join(f'{s:.2f}' for s in seconds[name]):>13}"
                      f" {' / '.join(f'{r:.0f}' for r in rates):>15}"
                      f" {' / '.join(f'{r / b:.2f}' for r, b in zip(rates, base)):>11} {versus:>11}"
                      f" {' / '.join(f'{o:.2f}' for o in others[name]):>13} {fixed:>9.2f}")
    for method in ("spawn", "forkserver"):
        print(f"2 workers started by {method}: {best_start_time(method, 3):.3f} s (best of 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
