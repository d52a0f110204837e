"""Train the default English sentiment model shipped with the classify task.

    python scripts/train_default_classifier.py [--data DIR] [--output FILE] [--threads 2]

Trains the "ensemble" engine (n-gram NB-LR + text CNN, probabilities
averaged) on ../shared/data/imdb/train.jsonl.gz ONLY — the validation data
for the CNN's best epoch and the averaging weight is a seeded 10% of it —
then measures it on test.jsonl.gz, stamps the test metrics and the command
into the model file's metadata, and writes MODEL_CARD.md next to the model.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "imdb"
TARGET_ACCURACY = 0.92
MAX_BYTES = 10 * 2**20


def parse_args() -> argparse.Namespace:
    from plugins.classification.common import DEFAULT_MODEL_FILE

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="folder with train.jsonl.gz and test.jsonl.gz")
    p.add_argument("--output", type=Path, default=DEFAULT_MODEL_FILE, help="model file (MODEL_CARD.md goes beside it)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ngram", type=int, default=3, help="longest word n-gram of the n-gram model")
    p.add_argument("--hash-bits", type=int, default=24, help="the n-gram model hashes into 2**N buckets")
    p.add_argument("--min-df", type=int, default=3,
                   help="the n-gram model keeps the buckets at least N training reviews use")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--maxlen", type=int, default=400, help="words of a text the CNN reads (the last ones)")
    p.add_argument("--dropout", type=float, default=0.0, help="CNN dropout on the pooled features")
    p.add_argument("--word-vectors", action=argparse.BooleanOptionalAction, default=True,
                   help="start the CNN's embedding from PPMI + SVD vectors of the training texts")
    return p.parse_args()


def read(path: Path) -> list[dict]:
    if not path.exists():
        sys.exit(f"error: {path} not found (pass --data DIR)")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def model_card(args: argparse.Namespace, command: str, report: dict, test: dict, speed: float, size: int) -> str:
    cm = test["confusion_matrix"]
    wv = report.get("word_vectors")
    vectors = (f"The embedding started from word vectors learned from the CNN's training texts (PPMI +"
               f" SVD, `toolkit.text.vectors`, window {wv['window']}; {wv['words']:,} words over {wv['tokens']:,}"
               f" tokens, {wv['seconds']:.0f} s)." if wv else "The embedding started from random vectors.")
    per_class = "\n".join(
        f"| {label} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['support']} |"
        for label, m in test["per_class"].items()
    )
    matrix = "\n".join(f"| true {label} | " + " | ".join(map(str, row)) + " |" for label, row in zip(cm["labels"], cm["matrix"]))
    return f"""# Model card: imdb-sentiment (default model of `nlp-tool classify`)

English sentiment (labels `neg`, `pos`) for `nlp-tool classify` and
`toolkit.pipeline("classify")`; engine `classify:ensemble`.

## How it was made

    {command}

- Data: IMDb Large Movie Review Dataset (Maas et al., 2011), `{args.data}/train.jsonl.gz`
  only: {report['records']:,} reviews. The validation data (the CNN's best epoch and the
  averaging weight) is a seeded 10% of the training file; the test split was used only for
  the numbers below, after training.
- Training time: {report['seconds']:.0f} s wall time on {args.threads} threads ({platform.machine()}, {os.cpu_count()} CPUs visible).
- Model file: `{args.output.name}`, {size / 2**20:.1f} MB.

## Choices

- Engine `ensemble`: the average of two models' probabilities.
  - `ngram`: NB-weighted logistic regression on hashed binary word 1..{args.ngram}-grams
    (2**{args.hash_bits} buckets, Wang & Manning 2012), C = 1; only the buckets that at least
    {args.min_df} training reviews use are features ({report['ngram_buckets']:,}); weights stored as float16.
  - `cnn`: Embedding(128) → Conv1D(128, 5, ReLU) → global max-pool → dropout {args.dropout} (training
    only) → Dense(128, ReLU) → Dense(2), softmax; vocabulary of the 20,000 most frequent training
    words, last {args.maxlen} words of a text, {args.epochs} epochs at most, best validation epoch
    kept; stored as float16. {vectors}
  - The n-gram weight in the average, chosen by validation log-loss: {report.get('ngram_weight')}.
- Tokenization is `toolkit.text.tokenize`: HTML tags are removed before anything else, so the
  model does not lean on IMDb's `<br />` line breaks; texts are lower-cased.

## Test metrics (IMDb test split, 25,000 reviews)

- Accuracy: **{test['accuracy']:.4f}** ({'meets' if test['accuracy'] >= TARGET_ACCURACY else 'below'} the project's target of {TARGET_ACCURACY:.1%})
- Macro precision / recall / F1: {test['macro']['precision']:.4f} / {test['macro']['recall']:.4f} / {test['macro']['f1']:.4f}
- Prediction speed, tokenization included: {speed:,.0f} reviews/s ({args.threads} threads)

| label | precision | recall | F1 | support |
|---|---|---|---|---|
{per_class}

| | {' | '.join('pred ' + l for l in cm['labels'])} |
|---|{'---|' * len(cm['labels'])}
{matrix}

## Limits

Trained on long, polar movie reviews. Short sentences and other domains
work but are less sure; neutral or mixed text still gets one of the two
labels. English only.
"""


def main() -> int:
    args = parse_args()
    from toolkit.threads import use_threads
    use_threads(args.threads)
    from plugins.classification.ensemble import EnsembleClassifier
    from toolkit.nn import read_model_file, save_arrays

    command = "python scripts/train_default_classifier.py " + shlex.join(sys.argv[1:])
    train = read(args.data / "train.jsonl.gz")
    report = EnsembleClassifier.train(train, str(args.output), seed=args.seed, name="imdb-sentiment",
                                      ngram=args.ngram, hash_bits=args.hash_bits, min_df=args.min_df,
                                      epochs=args.epochs,
                                      maxlen=args.maxlen, dropout=args.dropout, word_vectors=args.word_vectors)
    print(f"trained in {report['seconds']:.1f} s", flush=True)
    test = read(args.data / "test.jsonl.gz")
    engine = EnsembleClassifier(model=str(args.output))
    start = time.perf_counter()
    metrics = engine.evaluate(test)
    speed = len(test) / (time.perf_counter() - start)
    config, arrays = read_model_file(args.output)
    meta = config["metadata"]
    report["ngram_weight"] = meta["ngram_weight"]
    report["ngram_buckets"] = len(arrays["ngram.buckets"])
    report["word_vectors"] = meta["cnn"].get("word_vectors")
    meta["training"].update({"command": command, "data": "IMDb train.jsonl.gz (aclImdb v1), 25,000 reviews"})
    meta["test_metrics"] = {"data": "IMDb test.jsonl.gz, 25,000 reviews", "accuracy": metrics["accuracy"],
                            "macro": metrics["macro"], "reviews_per_s": round(speed)}
    save_arrays(args.output, arrays, meta, architecture=config["architecture"])
    size = args.output.stat().st_size
    (args.output.parent / "MODEL_CARD.md").write_text(model_card(args, command, report, metrics, speed, size))
    print(f"test accuracy {metrics['accuracy']:.4f}; {speed:,.0f} reviews/s; {size / 2**20:.1f} MB -> {args.output}")
    # A file over the size limit must not ship; an accuracy below the target is
    # reported (here and in the card), since a default model beats none.
    if metrics["accuracy"] < TARGET_ACCURACY:
        print(f"warning: accuracy below the target of {TARGET_ACCURACY}", file=sys.stderr)
    if size > MAX_BYTES:
        print(f"the file is over {MAX_BYTES // 2**20} MB: do not ship it", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
