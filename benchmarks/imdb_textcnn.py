"""The design's teaching example end to end: the Keras IMDb text CNN, ours vs PyTorch.

    python benchmarks/imdb_textcnn.py [--epochs 3] [--threads 2] [--no-torch]

Data: ../shared/data/imdb (train/test JSONL, 25,000 reviews each). Both
models get the same tokenized data (the 10,000 most frequent words, sequences
padded/truncated to 500, Keras-style "pre"), the same architecture
Embedding(128) -> Conv1D(128, 5, ReLU) -> global max-pool -> Dense(128, ReLU)
-> Dense(1), the same initial weights, the same batches in the same order
(batch 128), Adam 1e-3 and binary cross-entropy on the logits.

Per epoch: train loss, test accuracy / precision / recall (scikit-learn) and
wall time; then prediction throughput, and the epoch-time ratio PyTorch /
ours. Ours trains first, in a process that has not yet imported torch, so the
peak memory reported for it is its own; resident memory after each epoch shows
whether it grows. PyTorch is a benchmark-only dependency
(`pip install torch==2.13.0`); without it, --no-torch is implied.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import sys
import time
from pathlib import Path

from toolkit.threads import use_threads

ROOT = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "imdb")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use only this many train and test reviews (smoke runs)")
    p.add_argument("--no-torch", action="store_true", help="train only our model")
    return p.parse_args()


args = parse_args()
use_threads(args.threads)

import numpy as np  # noqa: E402
from sklearn.metrics import accuracy_score, precision_score, recall_score  # noqa: E402

import toolkit.nn as nn  # noqa: E402
from toolkit.text import WordTokenizer, pad_sequences  # noqa: E402

VOCAB_WORDS, MAXLEN, DIM, FILTERS, WIDTH, HIDDEN, BATCH, LR = 10_000, 500, 128, 128, 5, 128, 128, 1e-3


def read_split(name: str) -> tuple[list[str], np.ndarray]:
    path = args.data / f"{name}.jsonl.gz"
    if not path.exists():
        sys.exit(f"error: {path} not found (pass --data DIR with train.jsonl.gz and test.jsonl.gz)")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rng = np.random.default_rng(args.seed)
    rows = [rows[i] for i in rng.permutation(len(rows))]  # the files are sorted by label
    if args.limit:
        rows = rows[: args.limit]
    return [r["text"] for r in rows], np.array([r["label"] == "pos" for r in rows], dtype=np.float32)


def rss_mb() -> float:
    """Current resident set size."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scores(y_true: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    pred = logits.reshape(-1) > 0
    return {
        "accuracy": accuracy_score(y_true, pred),
        "precision": precision_score(y_true, pred, zero_division=0),
        "recall": recall_score(y_true, pred, zero_division=0),
    }


def build_ours(vocab_size: int) -> nn.Sequential:
    return nn.Sequential([
        nn.Embedding(vocab_size, DIM, padding_idx=0, seed=args.seed),
        nn.Conv1D(DIM, FILTERS, WIDTH, activation="relu", seed=args.seed + 1),
        nn.GlobalMaxPool1D(),
        nn.Dense(FILTERS, HIDDEN, activation="relu", seed=args.seed + 2),
        nn.Dense(HIDDEN, 1, seed=args.seed + 3),
    ])


def train_ours(model, x_train, y_train, x_test, y_test) -> list[dict]:
    opt = nn.Adam(model, LR)
    rows = []
    rng = np.random.default_rng(args.seed)
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        start = time.perf_counter()
        hist = nn.fit(model, nn.binary_cross_entropy_with_logits, opt, x_train[order], y_train[order],
                      epochs=1, batch_size=BATCH, seed=epoch)
        seconds = time.perf_counter() - start
        rows.append({"epoch": epoch, "loss": hist.epochs[0]["loss"], "seconds": seconds,
                     **scores(y_test, nn.predict(model, x_test, 512)), "rss_mb": rss_mb()})
        print_row("ours", rows[-1])
    return rows


def print_row(who: str, r: dict) -> None:
    extra = f"  rss {r['rss_mb']:.0f} MB" if "rss_mb" in r else ""
    print(f"{who:<6} epoch {r['epoch']}  loss {r['loss']:.4f}  test acc {r['accuracy']:.4f}  "
          f"precision {r['precision']:.4f}  recall {r['recall']:.4f}  time {r['seconds']:.1f} s{extra}", flush=True)


def main() -> int:
    t0 = time.perf_counter()
    train_texts, y_train = read_split("train")
    test_texts, y_test = read_split("test")
    tok = WordTokenizer(num_words=VOCAB_WORDS).fit(train_texts)
    x_train = pad_sequences(tok.texts_to_sequences(train_texts), MAXLEN)
    x_test = pad_sequences(tok.texts_to_sequences(test_texts), MAXLEN)
    print(f"data: {len(x_train)} train / {len(x_test)} test reviews, vocabulary {tok.vocab_size} ids, "
          f"maxlen {MAXLEN}; tokenized in {time.perf_counter() - t0:.1f} s; threads={args.threads}")

    model = build_ours(tok.vocab_size)
    initial = {name: value.copy() for name, value, _ in model.named_parameters()}
    # fit() reshuffles with its own seed; feeding it a pre-permuted copy per
    # epoch (and seed=epoch) keeps the batch order reproducible for torch too.
    ours = train_ours(model, x_train, y_train, x_test, y_test)
    start = time.perf_counter()
    nn.predict(model, x_test, 512)
    ours_pred = len(x_test) / (time.perf_counter() - start)
    print(f"ours   peak memory {peak_rss_mb():.0f} MB; prediction {ours_pred:,.0f} reviews/s")

    if args.no_torch:
        return 0
    try:
        import torch
    except ImportError:
        print("torch is not installed: no comparison (pip install torch==2.13.0, benchmark-only)")
        return 0
    theirs, torch_pred = train_torch(torch, initial, tok.vocab_size, x_train, y_train, x_test, y_test)
    ours_t = np.mean([r["seconds"] for r in ours])
    theirs_t = np.mean([r["seconds"] for r in theirs])
    print()
    print(f"{'':<8}{'epoch s':>9}{'final acc':>11}{'predict rev/s':>15}")
    print(f"{'ours':<8}{ours_t:9.1f}{ours[-1]['accuracy']:11.4f}{ours_pred:15,.0f}")
    print(f"{'torch':<8}{theirs_t:9.1f}{theirs[-1]['accuracy']:11.4f}{torch_pred:15,.0f}")
    print(f"epoch-time ratio torch/ours: {theirs_t / ours_t:.2f}   prediction ratio ours/torch: {ours_pred / torch_pred:.2f}")
    return 0


def train_torch(torch, initial, vocab_size, x_train, y_train, x_test, y_test):
    torch.set_num_threads(args.threads)
    F = torch.nn.functional

    class TextCNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(vocab_size, DIM, padding_idx=0)
            self.conv = torch.nn.Conv1d(DIM, FILTERS, WIDTH)
            self.fc1 = torch.nn.Linear(FILTERS, HIDDEN)
            self.fc2 = torch.nn.Linear(HIDDEN, 1)

        def forward(self, ids):
            h = self.emb(ids).transpose(1, 2)  # (B, C, T), torch's conv layout
            h = F.relu(self.conv(h)).amax(dim=2)
            return self.fc2(F.relu(self.fc1(h)))

    model = TextCNN()
    with torch.no_grad():  # the same starting point as ours
        model.emb.weight.copy_(torch.from_numpy(initial["0.table"]))
        model.conv.weight.copy_(torch.from_numpy(initial["1.w"].transpose(2, 1, 0).copy()))
        model.conv.bias.copy_(torch.from_numpy(initial["1.b"]))
        model.fc1.weight.copy_(torch.from_numpy(initial["3.w"].T.copy()))
        model.fc1.bias.copy_(torch.from_numpy(initial["3.b"]))
        model.fc2.weight.copy_(torch.from_numpy(initial["4.w"].T.copy()))
        model.fc2.bias.copy_(torch.from_numpy(initial["4.b"]))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x_train.astype(np.int64)), torch.from_numpy(y_train)

    def predict(x):
        model.eval()
        with torch.no_grad():
            out = [model(torch.from_numpy(x[i : i + 512].astype(np.int64))) for i in range(0, len(x), 512)]
        model.train()
        return torch.cat(out).numpy()

    rows = []
    rng = np.random.default_rng(args.seed)
    for epoch in range(1, args.epochs + 1):
        outer = rng.permutation(len(x_train))
        inner = np.random.default_rng(epoch).permutation(len(x_train))  # what our fit() does
        order = torch.from_numpy(outer[inner])
        start = time.perf_counter()
        total = 0.0
        for i in range(0, len(order), BATCH):
            idx = order[i : i + BATCH]
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(model(xt[idx]).reshape(-1), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        seconds = time.perf_counter() - start
        rows.append({"epoch": epoch, "loss": total / len(order), "seconds": seconds, **scores(y_test, predict(x_test))})
        print_row("torch", rows[-1])
    start = time.perf_counter()
    predict(x_test)
    return rows, len(x_test) / (time.perf_counter() - start)


if __name__ == "__main__":
    sys.exit(main())
