"""Extractive question answering on SQuAD v1.1 dev: the neural reader next to two baselines, in one run.

    python benchmarks/qa.py [--model FILE] [--threads 2] [--limit N] [--json]

Contenders, each run through the same qa pipeline (tokenization, passages,
BM25 choice of passages, decoding) on the same questions, one after the
other in this process:

- reader: the ``qa:reader`` engine with --model (default: the shipped
  model); its row says why it is missing when there is no model file;
- window: the rule-based span baseline (short spans of content words near
  the question's words in the best BM25 sentences, typed by the question
  word);
- sentence: the retriever alone — the best BM25 sentence is the answer.

Reported per contender: exact match and F1 (percent; official SQuAD v1.1
normalisation, best over the reference answers) and questions per second
(wall time of ``evaluate``, which runs the engine on batches of 32
questions). Data: ../shared/data/squad/dev-v1.1.json.gz, the official dev
file (10,570 questions). Timings depend on the machine's load; the thread
count is set with --threads before numpy loads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "squad" / "dev-v1.1.json.gz"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="SQuAD v1.1 dev JSON (optionally .gz)")
    p.add_argument("--model", help="reader model file (default: the engine's default model)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=0, help="first N questions only (0: all)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    from toolkit.threads import use_threads
    use_threads(args.threads)
    from toolkit_plugins.qa.baselines import SentenceRetriever, WindowBaseline
    from toolkit_plugins.qa.neural import ReaderEngine
    from toolkit_plugins.qa.squad import read_squad
    from toolkit.engine import OptionError

    if not args.data.is_file():
        sys.exit(f"error: {args.data} not found (pass --data FILE)")
    records = read_squad(str(args.data))
    if args.limit:
        records = records[: args.limit]
    rows = []
    for name, make in (("reader", lambda: ReaderEngine(model=args.model)), ("window", WindowBaseline),
                       ("sentence", SentenceRetriever)):
        try:
            engine = make()
        except OptionError as error:
            rows.append({"engine": name, "skipped": str(error)})
            continue
        metrics = engine.evaluate(records)
        rows.append({"engine": name, "model": metrics["model"], "exact_match": metrics["exact_match"],
                     "f1": metrics["f1"], "questions_per_second": metrics["questions_per_second"]})
        print(f"done: {name}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"data": str(args.data), "questions": len(records), "threads": args.threads,
                          "rows": rows}, indent=2))
        return 0
    print(f"SQuAD v1.1 dev, {len(records):,} questions, {args.threads} threads\n")
    print("| engine | EM | F1 | questions/s |\n|---|---:|---:|---:|")
    for row in rows:
        if "skipped" in row:
            print(f"| {row['engine']} | - | - | - |  ({row['skipped']})")
        else:
            print(f"| {row['engine']} | {row['exact_match']:.2f} | {row['f1']:.2f} | {row['questions_per_second']:,.1f} |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
