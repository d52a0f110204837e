"""Soak: mixed use of the Python API from many threads for a long time, watching memory and threads.

    python benchmarks/soak_threads.py [--minutes 30] [--threads 8] [--warmup 3] [--json FILE]

Each thread loops over the built-in tasks with their default models
(classify, summarize, translate, qa, generate, and chat with both engines),
calling one shared ``toolkit.pipeline`` per task with a batch of 1 to 8
inputs drawn from the shared data (IMDb reviews, BBC articles, Multi30k
sentences, SQuAD questions, WikiText-2 lines as prompts, DailyDialog
conversations cut before a turn), so that pipelines are used from several
threads at once, as a web server would. Generated texts are cut at 16
tokens, so that every task gets its share of the calls. Every ten
seconds the process's resident memory (VmRSS) and its thread count are
sampled. After ``--warmup`` minutes (models loaded, caches warm) the
samples should stay flat: the report gives the growth of memory from the
first sample after warm-up to the mean of the last tenth of the run (target
within +/- 10 %) and over the second half of the run alone, the median
thread count of the last tenth against that of the first tenth after
warm-up (target: no more; the BLAS and the pipelines start and end helper
threads, so single samples vary by a few), how many thread ids were first
seen after warm-up and which of them live to the end (helpers that come
and go, or threads kept), the calls made per task and any exception
(target: none).
Exit 1 when a target is missed.

The data lives in ../shared/data (see its README); nothing is written but the
retrieval engine's cache of response vectors (docs/chat.md).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def status(field: str) -> int:
    """A number of /proc/self/status (VmRSS in kB, Threads)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def inputs() -> dict[str, list]:
    """A pool of real inputs per task."""
    def jsonl(path: Path, limit: int) -> list[dict]:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for _, line in zip(range(limit), f)]

    from toolkit_plugins.qa.squad import read_squad

    with gzip.open(DATA / "multi30k" / "val.en.gz", "rt", encoding="utf-8") as f:
        sentences = f.read().splitlines()[:500]
    with gzip.open(DATA / "wikitext2" / "valid.txt.gz", "rt", encoding="utf-8") as f:
        prompts = [line.strip()[:200] for line in f if len(line.strip()) > 40][:500]
    rng = random.Random(0)
    conversations = [{"turns": r["turns"][:rng.randint(1, len(r["turns"]) - 1)]}
                     for r in jsonl(DATA / "dailydialog" / "validation.jsonl.gz", 500)]
    squad = read_squad(str(DATA / "squad" / "dev-v1.1.json.gz"))[:500]
    return {
        "classify": [r["text"] for r in jsonl(DATA / "imdb" / "test.jsonl.gz", 500)],
        "summarize": [r["article"] for r in jsonl(DATA / "bbc_news_summary" / "test.jsonl.gz", 300)],
        "translate": sentences,
        "qa": [{"question": r["question"], "context": r["context"]} for r in squad],
        "generate": prompts,
        "chat": conversations,
        "chat-retrieval": conversations,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--warmup", type=float, default=3.0, help="minutes before the samples count")
    p.add_argument("--json", type=Path, help="also write the report here")
    args = p.parse_args()

    import toolkit

    pool = inputs()
    pipelines = {
        "classify": toolkit.pipeline("classify"),
        "summarize": toolkit.pipeline("summarize", sentences=3),
        "translate": toolkit.pipeline("translate", source="en", target="de"),
        "qa": toolkit.pipeline("qa"),
        "generate": toolkit.pipeline("generate", max_tokens=16),
        "chat": toolkit.pipeline("chat", max_tokens=16),
        "chat-retrieval": toolkit.pipeline("chat", "retrieval"),
    }
    calls = {task: 0 for task in pipelines}
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def work(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            task = rng.choice(list(pipelines))
            batch = rng.sample(pool[task], rng.randint(1, 8))
            try:
                results = pipelines[task](batch)
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for {len(batch)} inputs")
            except Exception as error:  # the soak reports every failure rather than stopping at the first
                with lock:
                    failures.append(f"{task}: {type(error).__name__}: {error}")
            with lock:
                calls[task] += 1

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(args.threads)]
    for worker in workers:
        worker.start()
    start = time.monotonic()
    samples: list[tuple[float, int, int]] = []  # (minutes, VmRSS kB, threads)
    # When each thread id was first seen (minutes): a thread that appears after the warm-up and lives to the end
    # is a helper started late (a worker's first call of a parallel kernel, say), one that keeps appearing is not.
    first_seen: dict[int, float] = {}
    while (elapsed := (time.monotonic() - start) / 60.0) < args.minutes:
        samples.append((elapsed, status("VmRSS"), status("Threads")))
        alive = {int(tid) for tid in os.listdir("/proc/self/task")}
        for tid in alive:
            first_seen.setdefault(tid, elapsed)
        minute, rss, threads = samples[-1]
        print(f"{minute:6.1f} min  rss {rss / 1024:7.1f} MB  threads {threads:3d}  calls {sum(calls.values()):7d}"
              f"  failures {len(failures)}", flush=True)
        time.sleep(10.0)
    stop.set()
    for worker in workers:
        worker.join()

    settled = [s for s in samples if s[0] >= args.warmup]
    if len(settled) < 2:
        print("error: the run is too short for its warm-up", file=sys.stderr)
        return 1
    tenth = max(1, len(settled) // 10)
    head, tail = settled[:tenth], settled[-tenth:]
    first_rss, last_rss = settled[0][1], sum(s[1] for s in tail) / len(tail)
    report = {
        "minutes": args.minutes, "threads": args.threads, "warmup_minutes": args.warmup, "cpus": os.cpu_count(),
        "calls": calls, "failures": len(failures), "first_failures": failures[:5],
        "rss_mb_after_warmup": round(first_rss / 1024, 1), "rss_mb_at_end": round(last_rss / 1024, 1),
        "rss_growth": round(last_rss / first_rss - 1.0, 4),
        "rss_growth_second_half": round(last_rss / samples[len(samples) // 2][1] - 1.0, 4),
        "threads_after_warmup": statistics.median(s[2] for s in head),
        "threads_at_end": statistics.median(s[2] for s in tail),
        "threads_max": max(s[2] for s in settled),
        # Thread ids first seen after the warm-up: all of them (churn), and those alive at the end, with the
        # minute each appeared.
        "threads_started_after_warmup": sum(1 for seen in first_seen.values() if seen >= args.warmup),
        "late_threads_alive_at_end": sorted(round(first_seen[tid], 1) for tid in alive if first_seen[tid] >= args.warmup),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps({**report, "samples": samples}, indent=1))
    ok = (not failures and abs(report["rss_growth"]) <= 0.10
          and report["threads_at_end"] <= report["threads_after_warmup"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
