"""Dialogue: the chat task's engines on DailyDialog's test split, and the transformer engine's reply latency.

    python benchmarks/chat.py [--model FILE] [--retrieval-model FILE] [--data DIR] [--split test] [--threads 2]
                              [--latency-turns 20] [--skip-transformer] [--skip-retrieval] [--skip-latency]

(a) transformer engine (``--model``, default the shipped dailydialog.nlpt):
    ``nlp-tool evaluate chat``'s numbers, every response turn given the turns
    before it: perplexity of the true responses per token and per word, and
    BLEU-1/2 and distinct-1/2 of the replies written with the default
    sampling options (temperature 0.8, top-p 0.95, seed 0).
(b) retrieval engine: Recall@1 among 10 (the true response and 9 of other
    dialogues, seed 0) and MRR, by the dual encoder (``--retrieval-model``,
    default the shipped dailydialog-retrieval.nlpt) and by BM25, on the same
    candidates (targets: Recall@1 at least 0.50 and above BM25's).
(c) latency of the transformer engine on 2 threads, as a user meets it in
    ``nlp-tool chat``: for the first --latency-turns conversations of the
    split cut before their last turn, the time from the call to the first
    streamed piece of the reply (targets: within 0.3 s), and the reply's
    tokens per second after it (target: at least 30).

Numbers are read from the split given (--split test only once every choice
was made on validation). PUBLISHED, printed beside (a), is the from-scratch
baselines of a paper that prints a DailyDialog test perplexity: read its
caveats before comparing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from toolkit.threads import use_threads

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dailydialog"
DEFAULT_MODEL = ROOT / "plugins" / "chat" / "models" / "dailydialog.nlpt"
DEFAULT_RETRIEVAL_MODEL = ROOT / "plugins" / "chat" / "models" / "dailydialog-retrieval.nlpt"
FIRST_PIECE_SECONDS, TOKENS_PER_SECOND = 0.3, 30.0
RECALL_AT_1 = 0.50
# Liu, Feng, Wang, Zhang, Schuetze: "PVGRU: Generating Diverse and Relevant Dialogue Responses via
# Pseudo-Variational Mechanism", ACL 2023 (arXiv 2212.09086), Tables 1 and 2, DailyDialog test, models trained
# from scratch on DailyDialog only; the paper prints every value multiplied by 100: (PPL, BLEU-1, BLEU-2,
# Dist-1, Dist-2).
PUBLISHED = {"seq2seq (GRU, attention)": (132.55, 27.78, 22.59, 12.18, 47.69),
             "HRED (GRU)": (127.66, 28.90, 23.52, 13.00, 45.55),
             "HRAN (GRU)": (121.63, 30.36, 20.01, 12.66, 43.77),
             "CSG (GRU)": (122.75, 28.89, 24.55, 11.11, 40.39),
             "SVT (variational Transformer)": (114.54, 27.89, 21.26, 11.94, 44.03),
             "GVT (variational Transformer)": (115.05, 25.54, 18.46, 12.43, 45.43)}
CAVEATS = ("not the same measurements: the paper does not define its PPL's unit (word or token, vocabulary, UNK)"
           " and appears to score one response per test dialogue (1,000) with at most 10 turns and 50 words per"
           " turn of context; its BLEU is smoothed sentence-level (plain NLTK BLEU is about 20 points higher, per"
           " its authors' README), ours corpus-level sacreBLEU; its Dist-n looks averaged per response, ours is"
           " over all replies; it decodes with beam 5, ours samples. Compare orders of magnitude, not digits.")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the transformer engine's model file")
    p.add_argument("--retrieval-model", type=Path, default=DEFAULT_RETRIEVAL_MODEL,
                   help="the retrieval engine's dual-encoder model file")
    p.add_argument("--data", type=Path, default=DATA, help="folder with {train,validation,test}.jsonl.gz")
    p.add_argument("--split", default="test", choices=("validation", "test"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--latency-turns", type=int, default=20, help="conversations timed in (c) (default 20)")
    for part in ("transformer", "retrieval", "latency"):
        p.add_argument(f"--skip-{part}", action="store_true")
    return p.parse_args()


def read_split(folder: Path, split: str) -> list[dict]:
    from toolkit.datasets import read_records

    return read_records(str(folder / f"{split}.jsonl.gz"), {"turns": "turns"})


def transformer(model: Path, records: list[dict]) -> None:
    from toolkit_plugins.chat.transformer import TransformerChat

    report = TransformerChat(model=str(model)).evaluate(records)
    print(f"(a) transformer ({model.name}): {report['responses']:,} responses, {report['seconds']} s")
    print()
    print("| perplexity / token | perplexity / word | BLEU-1 | BLEU-2 | distinct-1 | distinct-2 |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {report['token_perplexity']:.2f} | {report['word_perplexity']:.2f} | {report['bleu1']:.2f} |"
          f" {report['bleu2']:.2f} | {report['distinct1']:.4f} | {report['distinct2']:.4f} |")
    print()
    print("Published, from scratch (PVGRU, ACL 2023, Tables 1-2, DailyDialog test; values x100 as printed):")
    print()
    print("| model | PPL | BLEU-1 | BLEU-2 | Dist-1 | Dist-2 |\n|---|---:|---:|---:|---:|---:|")
    for model, values in PUBLISHED.items():
        print(f"| {model} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    best = min(values[0] for values in PUBLISHED.values())
    print(f"best published PPL {best:.2f}; ours per word {report['word_perplexity']:.2f} ({CAVEATS})")
    print()


def retrieval(model: Path, records: list[dict]) -> None:
    from toolkit_plugins.chat.retrieval import RetrievalEngine

    reports = [RetrievalEngine(scorer="bm25").evaluate(records)]
    if model.exists():
        reports.insert(0, RetrievalEngine(str(model)).evaluate(records))
    first = reports[0]
    print(f"(b) retrieval: {first['responses']:,} responses, the true one among {first['candidates']} (seed"
          f" {first['seed']}), the same candidates for each scorer")
    print()
    print("| scorer | Recall@1 | MRR |\n|---|---:|---:|")
    for report in reports:
        name = f"dual encoder ({model.name})" if report["scorer"] == "encoder" else "BM25"
        print(f"| {name} | {report['recall_at_1']:.4f} | {report['mrr']:.4f} |")
    if len(reports) == 2:
        encoder, bm25 = (report["recall_at_1"] for report in reports)
        met = encoder >= RECALL_AT_1 and encoder > bm25
        print(f"targets: Recall@1 at least {RECALL_AT_1:.2f} and above BM25's: {'met' if met else 'missed'}"
              f" ({encoder / bm25:.2f}x BM25's)")
    else:
        print(f"no dual encoder: {model} does not exist (train it with scripts/train_default_chat_retrieval.py)")
    print()


def latency(model: Path, records: list[dict], count: int) -> None:
    from toolkit_plugins.chat.transformer import TransformerChat

    engine = TransformerChat(model=str(model))
    conversations = [{"turns": r["turns"][:-1]} for r in records if len(r["turns"]) > 1][:count]
    engine.run(conversations[:1])  # loads the model: a conversation starts with it loaded
    firsts, rates = [], []
    for conversation in conversations:
        start = time.perf_counter()
        pieces = engine.stream(conversation)
        next(pieces, None)
        first = time.perf_counter() - start
        for _ in pieces:
            pass
        total = time.perf_counter() - start
        # The same seed writes the same reply: its token count, from the batch form.
        tokens = engine.run([conversation])[0]["tokens"]
        firsts.append(first)
        if tokens > 1 and total > first:
            rates.append((tokens - 1) / (total - first))
    print(f"(c) latency on {len(conversations)} conversations of the split (the model loaded):")
    print()
    print("| first piece, median | first piece, worst | tokens/s after it, median | tokens/s, worst |")
    print("|---:|---:|---:|---:|")
    print(f"| {statistics.median(firsts):.3f} s | {max(firsts):.3f} s | {statistics.median(rates):.1f} |"
          f" {min(rates):.1f} |")
    print(f"targets: first piece within {FIRST_PIECE_SECONDS} s, at least {TOKENS_PER_SECOND:g} tokens/s:"
          f" {'met' if max(firsts) <= FIRST_PIECE_SECONDS and min(rates) >= TOKENS_PER_SECOND else 'missed'}"
          " (worst cases)")
    print()


def main() -> int:
    args = parse_args()
    use_threads(args.threads)
    print(f"threads={args.threads}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores;"
          f" DailyDialog {args.split}")
    print()
    records = read_split(args.data, args.split)
    if not args.model.exists() and not (args.skip_transformer and args.skip_latency):
        print(f"skipped (a) and (c): {args.model} does not exist (train it with scripts/train_default_chat.py)")
        args.skip_transformer = args.skip_latency = True
    if not args.skip_transformer:
        transformer(args.model, records)
    if not args.skip_retrieval:
        retrieval(args.retrieval_model, records)
    if not args.skip_latency:
        latency(args.model, records, args.latency_turns)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
