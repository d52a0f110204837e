"""Soak: stream a large input through `classify -i lines` and `summarize -i jsonl` (and on request
`qa -i jsonl`, `translate -i lines`, `generate -i lines` and `chat -i jsonl`) from stdin, sampling memory.

    python benchmarks/soak_stream.py                  # 1 GB through classify and summarize
    python benchmarks/soak_stream.py --gigabytes 0.05 --verb classify
    python benchmarks/soak_stream.py --gigabytes 0.0005 --verb translate --line-bytes 120

Each verb runs as the command line runs (a process reading stdin, writing
stdout); a thread feeds it generated text as fast as it reads, another
reads its output. Every second the verb's resident memory (VmRSS in
/proc/PID/status) is sampled. Printed per verb: the seconds from launch to
the first output line and from the first input byte to it, the throughput,
and the memory after warm-up (the first tenth of the input, counted in
results out: bytes fed are counted a block of up to a megabyte at a time,
as the pipe takes it, far ahead of a slow verb): its low, high
and spread, which the target (docs/cli.md, issue 18) wants within 10 %; with
``-- --workers N`` or ``-- --cluster local:N``, each worker process's too
(issue 22), sampled alike.
Exit 1 if a verb fails or its memory after warm-up spreads further.
"""

from __future__ import annotations

import argparse
import glob
import json
import random
import subprocess
import sys
import threading
import time

VERBS = {
    "classify": ["classify", "-i", "lines", "-q"],
    "summarize": ["summarize", "-i", "jsonl", "-f", "jsonl", "-q"],
    # Slower verbs, soaked on less input by default: a gigabyte through them takes days.
    "qa": ["qa", "-i", "jsonl", "-f", "jsonl", "-q"],
    "translate": ["translate", "-i", "lines", "-q"],
    "generate": ["generate", "-i", "lines", "--max-tokens", "16", "-q"],
    "chat": ["chat", "-i", "jsonl", "-f", "jsonl", "--max-tokens", "16"],
}
# The verbs soaked when none is named (--verb).
DEFAULT_VERBS = ("classify", "summarize")
WORDS = ("the film was great and the acting superb though the plot ran thin and long while the cast and the music"
         " carried a story that nobody expected to work").split()
BLOCK = 1 << 20


def _input_format(verb: str, swap: bool) -> str:
    """The ``-i`` format ``verb`` is soaked with: its own (VERBS), or with ``swap`` the other one of a verb whose
    inputs are texts (lines <-> jsonl; qa and chat take JSON records only)."""
    own = VERBS[verb][VERBS[verb].index("-i") + 1]
    if not swap or verb in ("qa", "chat"):
        return own
    return "jsonl" if own == "lines" else "lines"


def _line(verb: str, line_bytes: int, seed: int, fmt: str) -> bytes:
    """One input line of about ``line_bytes``: a review (classify), a sentence (translate: at most 120 bytes,
    its model's sentences; generate: a prompt of that length), an article (summarize), a JSON question about
    one (qa) or a JSON conversation of its sentences as turns (chat); a text is a line of its own for ``fmt``
    "lines", a JSON record {"text": ...} for "jsonl"."""
    rng = random.Random(seed)
    sentences = []
    while sum(map(len, sentences)) < line_bytes - 40:
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
        sentences.append(" ".join(words).capitalize() + ".")
    text = " ".join(sentences)
    if verb == "chat":
        return json.dumps({"turns": sentences[-8:]}).encode() + b"\n"
    if verb == "qa":
        return json.dumps({"question": "What carried the story?", "context": text}).encode() + b"\n"
    if verb in ("translate", "generate"):
        text = sentences[0][:120]
    return (json.dumps({"text": text}) if fmt == "jsonl" else text).encode() + b"\n"


def _status(pid: int, key: str) -> int | None:
    """A memory figure of /proc/PID/status in bytes (None once the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (its worker processes under --workers or --cluster local:N), from any of
    its threads: a local cluster's nannies start their workers from Dask's event-loop thread, and Linux lists
    a child under the thread that made it."""
    found: list[int] = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(task) as children:
                found += [int(child) for child in children.read().split()]
        except OSError:  # the thread ended
            continue
    return found


def _spread(values: list[int]) -> tuple[float, float, float | None]:
    """Low and high in MB, and (high - low) / low."""
    if not values:
        return 0.0, 0.0, None
    low, high = min(values), max(values)
    return low / 2**20, high / 2**20, (high - low) / low if low else None


def soak(verb: str, total_bytes: int, line_bytes: int, extra: list[str], trace: str | None = None,
         swap_format: bool = False) -> dict:
    """Stream ``total_bytes`` through ``verb``; its figures (see the module's docstring)."""
    fmt = _input_format(verb, swap_format)
    lines = [_line(verb, line_bytes, seed, fmt) for seed in range(64)]
    # Blocks of a megabyte at most, and not past the input asked for: a megabyte is 17,000 sentences to translate.
    block = b"".join(lines * max(1, min(BLOCK, total_bytes) // sum(map(len, lines))))
    command = [sys.executable, "-c", "from toolkit.cli import cli; cli()", *VERBS[verb], "-i", fmt, *extra]
    launched = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    fed = {"bytes": 0, "first": None}
    out = {"lines": 0, "first": None}

    def feed() -> None:
        try:
            # Whole blocks, hence whole lines: a JSON line cut at the end would be a failed input.
            while fed["bytes"] < total_bytes:
                if fed["first"] is None:
                    fed["first"] = time.perf_counter()
                proc.stdin.write(block)
                fed["bytes"] += len(block)
            proc.stdin.close()
        except BrokenPipeError:
            pass

    def drain() -> None:
        for _ in proc.stdout:
            if out["first"] is None:
                out["first"] = time.perf_counter()
            out["lines"] += 1

    threads = [threading.Thread(target=feed, daemon=True), threading.Thread(target=drain, daemon=True)]
    for thread in threads:
        thread.start()
    # One result line per input line (every verb soaked here writes a line per record).
    expected_lines = -(-total_bytes // len(block)) * block.count(b"\n")
    samples = []  # (seconds since launch, bytes fed, lines out, resident bytes)
    workers: dict[int, list[tuple[int, int]]] = {}  # each worker process's (lines out, resident bytes)
    while proc.poll() is None:
        rss = _status(proc.pid, "VmRSS")
        for child in _children(proc.pid):
            child_rss = _status(child, "VmRSS")
            if child_rss is not None:
                workers.setdefault(child, []).append((out["lines"], child_rss))
        if rss is not None:
            samples.append((time.perf_counter() - launched, fed["bytes"], out["lines"], rss))
            if len(samples) % 30 == 0:
                print(f"  {verb}: {samples[-1][0]:5.0f} s  {fed['bytes'] / 2**20:6.0f} MB in  {out['lines']:8d} lines"
                      f" out  RSS {rss / 2**20:6.1f} MB", file=sys.stderr)
        time.sleep(1)
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - launched
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.writelines(f"{verb}\t{at:.1f}\t{done}\t{rss / 2**20:.1f}\n" for at, _, done, rss in samples)
    warm = [rss for _, _, done, rss in samples if done >= expected_lines / 10]
    low, high = (min(warm), max(warm)) if warm else (0, 0)
    # Each worker process that lived past the warm-up, as the verb's own process is judged.
    warm_workers = {pid: [rss for done, rss in found if done >= expected_lines / 10] for pid, found in workers.items()}
    worker_spreads = {pid: _spread(found) for pid, found in warm_workers.items() if len(found) >= 10}
    return {
        "verb": verb,
        "exit_code": proc.returncode,
        "stderr": proc.stderr.read().decode(errors="replace")[-500:],
        "input_mb": fed["bytes"] / 2**20,
        "output_lines": out["lines"],
        "seconds": seconds,
        "mb_per_s": fed["bytes"] / 2**20 / seconds,
        "lines_per_s": out["lines"] / seconds,
        "first_output_from_launch_s": None if out["first"] is None else out["first"] - launched,
        "first_output_from_first_input_s": None if out["first"] is None else out["first"] - fed["first"],
        "rss_after_warmup_mb": (low / 2**20, high / 2**20),
        "rss_spread": (high - low) / low if low else None,
        "worker_rss_after_warmup_mb": {pid: (w_low, w_high) for pid, (w_low, w_high, _) in worker_spreads.items()},
        "worker_rss_spread": max((spread or 0.0 for _, _, spread in worker_spreads.values()), default=None),
        "samples": len(samples),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=1.0, help="Input streamed through each verb.")
    parser.add_argument("--line-bytes", type=int, default=8000,
                        help="Bytes per input line (long lines: the engines' cost is mostly per line).")
    parser.add_argument("--verb", choices=list(VERBS), action="append",
                        help="Verb to soak (default: classify and summarize).")
    parser.add_argument("--trace", metavar="FILE",
                        help="Append every memory sample to FILE: verb, seconds, lines out, RSS MB (tab-separated).")
    parser.add_argument("--swap-format", action="store_true",
                        help="Soak the text verbs with their other input format (-i jsonl for classify, translate"
                             " and generate, -i lines for summarize).")
    parser.add_argument("extra", nargs="*", help="More arguments for the verb (after --), e.g. -- -e lead.")
    args = parser.parse_args()
    failed = False
    for verb in args.verb or DEFAULT_VERBS:
        report = soak(verb, int(args.gigabytes * 2**30), args.line_bytes, args.extra, args.trace, args.swap_format)
        low, high = report["rss_after_warmup_mb"]
        flat = report["rss_spread"] is not None and report["rss_spread"] <= 0.10
        worker_spread = report["worker_rss_spread"]
        flat &= worker_spread is None or worker_spread <= 0.10
        print(f"{verb} -i {_input_format(verb, args.swap_format)}: exit {report['exit_code']},"
              f" {report['input_mb']:.0f} MB in {report['seconds']:.0f} s"
              f" ({report['mb_per_s']:.2f} MB/s), {report['output_lines']} lines out"
              f" ({report['lines_per_s']:.1f}/s);"
              f" first output {report['first_output_from_launch_s']:.2f} s after launch,"
              f" {report['first_output_from_first_input_s']:.2f} s after the first input;"
              f" RSS after warm-up {low:.1f}-{high:.1f} MB (spread {100 * (report['rss_spread'] or 0):.1f} %)"
              + "".join(f"; worker {pid} {w_low:.1f}-{w_high:.1f} MB"
                        for pid, (w_low, w_high) in report["worker_rss_after_warmup_mb"].items())
              + ("" if worker_spread is None else f" (largest worker spread {100 * worker_spread:.1f} %)")
              + f": {'flat' if flat else 'NOT flat'}")
        if report["exit_code"] != 0:
            print(f"{verb} failed: {report['stderr']}", file=sys.stderr)
        failed |= report["exit_code"] != 0 or not flat
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
