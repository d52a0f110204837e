"""Train the default reader of the qa task on SQuAD v1.1 train; measure it on the official dev set.

    python scripts/train_default_reader.py [--max-minutes M] [--resume] [--threads 1]

Trains the "reader" engine (bidirectional GRU encoder, word vectors started
from PPMI + SVD vectors of the training text, 3 epochs) on
../shared/data/squad/train-v1.1.json.gz (the rebuilt train file; see its
README) minus the last --holdout-articles articles, which select the best
epoch; the dev set (dev-v1.1.json.gz, official) is used only for the final
numbers. An epoch takes about 15 minutes on one core (the GRU's step loop
gains nothing from a second thread, and a second thread slowed training
down 5x when another job shared the cores). A checkpoint is written every
few minutes and on Ctrl-C, and --resume continues from it (same options). A run cut by --max-minutes ends
with exit code 3 and the command to continue. When training is complete,
the dev EM/F1, speed, the command and the time are stamped into the model
file and MODEL_CARD.md is written beside it. Training writes OUTPUT.new
(and its checkpoint OUTPUT.new.ckpt), which replaces OUTPUT only when the
file is within 25 MB: an oversized model is refused (exit 1) before it
replaces anything. A dev F1 below the target of issue 7 (60) is reported on
stderr and in the card, not hidden.

    python scripts/train_default_reader.py --card-only

writes MODEL_CARD.md again from what the shipped model's metadata records
(its command, training report and dev scores), without training.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "squad"
TARGET_F1 = 60.0
MAX_BYTES = 25 * 2**20
# Unlabeled text in ../shared/data that --vector-texts takes by name (the SQuAD dev set is not among
# them: it is the final measure). The news sets are summarization test splits; using their articles
# as unlabeled text for question answering leaks nothing into either task's scores.
VECTOR_TEXTS = {"imdb": "imdb/train.jsonl.gz", "cnn_dailymail": "cnn_dailymail/test.jsonl.gz",
                "bbc": "bbc_news_summary/test.jsonl.gz"}
UNFINISHED = 3
INTERRUPTED = 130  # the shell's code for a process stopped by SIGINT
# The defaults of --dropout and --vocab-size, which were set with dev scores in view (the card says so).
DEV_INFLUENCED = (0.3, 15000)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from toolkit_plugins.qa.neural import DEFAULT_MODEL_FILE

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="folder with train-v1.1.json.gz and dev-v1.1.json.gz")
    p.add_argument("--output", type=Path, default=DEFAULT_MODEL_FILE, help="model file (MODEL_CARD.md goes beside it)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop after this long (0: no limit); --resume continues")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint (OUTPUT.ckpt)")
    p.add_argument("--checkpoint-minutes", type=float, default=10.0)
    p.add_argument("--holdout-articles", type=int, default=20, help="last train articles used for selection")
    p.add_argument("--valid-limit", type=int, default=2000, help="selection questions scored per epoch")
    p.add_argument("--limit", type=int, default=0, help="train on the first N questions only (experiments)")
    p.add_argument("--dev-limit", type=int, default=0, help="score the first N dev questions only (experiments)")
    # A reader with dropout 0.1 and 30,000 words reached 64 F1 on train questions but 50 on dev
    # after 3 epochs, and no better on held-out questions after: these two are meant against that
    # memorising (in the first five epochs they delayed the plateau; docs/qa.md).
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--encoder", choices=["attention", "gru"], default="gru",
                   help="bidirectional GRUs, or convolution + self-attention blocks")
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--vocab-size", type=int, default=15000, help="words with vectors of their own")
    p.add_argument("--ema", type=float, default=0.0,
                   help="decay of a moving average of the weights, which is scored and saved (0: off)")
    p.add_argument("--word-vectors", action=argparse.BooleanOptionalAction, default=True,
                   help="start the word vectors from PPMI + SVD vectors of the training text (then fine-tuned)")
    p.add_argument("--vector-texts", nargs="+", default=[], metavar="TEXT",
                   help="more unlabeled text for --word-vectors: a file (.jsonl/.txt, maybe .gz) or one of "
                        + ", ".join(VECTOR_TEXTS) + f" (their files in {DATA.parent})")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--card-only", action="store_true",
                   help="write MODEL_CARD.md from the metadata of the model at --output; train nothing")
    return p.parse_args(argv)


def model_card(args: argparse.Namespace, command: str, report: dict, dev: dict, size: int) -> str:
    selection = report.get("metrics") or {}
    if args.word_vectors:
        sources = ", ".join(["the training contexts and questions", *args.vector_texts])
        vectors = (f"The word vectors started from PPMI + SVD vectors of {sources} (plugins/qa/wordvectors.py),"
                   " then were fine-tuned.")
    else:
        vectors = "No pre-trained vectors."
    if args.encoder == "gru":
        encoder, blocks = "bidirectional GRU", "bidirectional GRUs"
    else:
        encoder, blocks = "convolution + self-attention", "self-attention + feed-forward blocks"
    if (args.dropout, args.vocab_size) == DEV_INFLUENCED:
        settings = (
            f"Dropout {args.dropout} and the {args.vocab_size:,}-word vocabulary were NOT chosen that way. They\n"
            "  were set during the self-attention encoder's experiments after a run with dropout 0.1 and 30,000\n"
            "  words scored 64.5 F1 on 1,500 train questions against 50.5 on 1,500 dev questions, and an epoch-1\n"
            "  model was scored on the first 500 dev questions during development. So the dev set informed\n"
            "  these settings, and the dev numbers below are **dev-influenced, not a clean held-out measure**\n"
            "  (the project's protocol, docs/benchmarks.md, makes every choice on validation data; these two\n"
            "  have not been re-selected on held-out train articles yet).")
    else:
        settings = (f"Dropout {args.dropout} and the {args.vocab_size:,}-word vocabulary were given on the command\n"
                    "  line; no score chose them.")
    return f"""# Model card: squad-reader (default model of `nlp-tool qa`)

Extractive question answering in English for `nlp-tool qa` and
`toolkit.pipeline("qa")`; engine `qa:reader`.

## How it was made

    {command}

- Data: SQuAD v1.1 train, `{args.data}/train-v1.1.json.gz` (rebuilt from the official explorer
  pages: synthetic ids, about 2.6% of answer offsets pointing at another copy of the same text; see
  its README): {report['records']:,} questions, of which {report['instances']:,} became training
  passages ({report['left_out']} left out: the answer could not be placed in one window). The last
  {args.holdout_articles} train articles chose the best epoch ({selection.get('records', 0)} questions:
  EM {selection.get('exact_match')}, F1 {selection.get('f1')}).
- Training: {report['epochs_done']} epochs, {report['steps']:,} steps of {args.batch} questions,
  {report['seconds'] / 3600:.1f} h of training on {args.threads} threads ({platform.machine()},
  {os.cpu_count()} CPUs visible), resumed from checkpoints where it was interrupted.
- Model file: `{args.output.name}`, {size / 2**20:.1f} MB.

## Architecture (plugins/qa/reader.py)

Width {args.dim}, dropout {args.dropout}, weight average decay {args.ema or 'none'}. Word vectors (the
{args.vocab_size:,} most frequent lower-cased train words) + hashed
character-trigram vectors + lexical-match features (exact / lower-cased / stem match with a question
word, frequency, capitals, digits, nearness to a question word) → projection and positions → a
shared {encoder} encoder for passage and question → passage-to-question attention
→ two {blocks} → start and end pointers. {vectors}
Passages of 200 tokens overlapping by 50; BM25 chooses which a long document's question reads.

## How the settings were chosen, and what the dev set saw

- The epoch, the encoder (`gru` against convolution + self-attention blocks) and `--word-vectors`
  were chosen by F1 on the held-out train articles above, never on dev.
- {settings}

## SQuAD v1.1 dev (official file, {dev['records']:,} questions{'; dev-influenced, see above' if (args.dropout, args.vocab_size) == DEV_INFLUENCED else ''})

- Exact match: **{dev['exact_match']:.2f}**
- F1: **{dev['f1']:.2f}**
- Speed, tokenization and decoding included: {dev['questions_per_second']:.1f} questions/s ({args.threads} threads)

## Limits

English Wikipedia-style paragraphs; every question gets the best span of the context, so a question
the text does not answer still gets one unless `--min-score` is set.
"""


def without_repeated_contexts(valid: list[dict], train: list[dict]) -> list[dict]:
    """The selection questions whose context does not nearly repeat a training context (docs/data-splits.md)."""
    from toolkit.text.duplicates import near_duplicates

    contexts = list(dict.fromkeys(r["context"] for r in valid))
    repeated = {contexts[i] for i, _, _ in near_duplicates(contexts, list(dict.fromkeys(r["context"] for r in train)))}
    if repeated:
        print(f"selection: {len(repeated)} held-out contexts nearly repeat a training context; their questions are left out")
    return [r for r in valid if r["context"] not in repeated]


def write_card(args: argparse.Namespace, command: str, report: dict, dev: dict) -> None:
    size = args.output.stat().st_size
    (args.output.parent / "MODEL_CARD.md").write_text(model_card(args, command, report, dev, size))


def card_from_metadata(output: Path) -> int:
    """MODEL_CARD.md again, from the command, training report and dev scores the model file records."""
    from toolkit.nn import read_model_file

    meta = read_model_file(output)[0]["metadata"]
    command = meta["training"]["command"]
    args = parse_args(shlex.split(command)[2:])
    args.output = output
    write_card(args, command, {**meta["training"], "metrics": meta["metrics"]}, meta["dev_metrics"])
    print(f"-> {output.parent / 'MODEL_CARD.md'}")
    return 0


def main() -> int:
    args = parse_args()
    if args.card_only:
        return card_from_metadata(args.output)
    from toolkit.threads import use_threads
    use_threads(args.threads)
    from toolkit_plugins.qa.neural import ReaderEngine
    from toolkit_plugins.qa.squad import read_squad
    from toolkit.nn import rewrite_metadata

    command = "python scripts/train_default_reader.py " + shlex.join(sys.argv[1:])
    if args.vector_texts and not args.word_vectors:
        sys.exit("error: --vector-texts is only read with --word-vectors")
    for name in ("train-v1.1.json.gz", "dev-v1.1.json.gz"):
        if not (args.data / name).is_file():
            sys.exit(f"error: {args.data / name} not found (pass --data DIR)")
    records = read_squad(str(args.data / "train-v1.1.json.gz"))
    titles = list(dict.fromkeys(r["title"] for r in records))
    held_titles = set(titles[-args.holdout_articles :]) if args.holdout_articles else set()
    train = [r for r in records if r["title"] not in held_titles]
    valid = without_repeated_contexts([r for r in records if r["title"] in held_titles], train) or None
    if args.limit:
        train = train[: args.limit]
    staged = args.output.with_name(args.output.name + ".new")
    # `kill` (SIGTERM) then stops the run as Ctrl-C does, writing the checkpoint first: a run
    # started in the background with `&` ignores SIGINT, so Ctrl-C cannot reach it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        report = ReaderEngine.train(
            train, str(staged), valid=valid, seed=args.seed, name="squad-reader", epochs=args.epochs,
            max_minutes=args.max_minutes, resume=args.resume, checkpoint_minutes=args.checkpoint_minutes,
            valid_limit=args.valid_limit, dim=args.dim, batch=args.batch, learning_rate=args.learning_rate,
            dropout=args.dropout, vocab_size=args.vocab_size, ema=args.ema, word_vectors=args.word_vectors,
            encoder=args.encoder,
            vector_texts=",".join(str(DATA.parent / VECTOR_TEXTS[t]) if t in VECTOR_TEXTS else t
                                  for t in args.vector_texts),
        )
    except KeyboardInterrupt:
        print(f"interrupted; the checkpoint is saved; continue with: {command}{'' if args.resume else ' --resume'}")
        return INTERRUPTED
    print(f"{report['epochs_done']} epochs, {report['steps']} steps, {report['seconds']:.0f} s; selection:"
          f" {report['metrics']}", flush=True)
    if report["stopped"] != "epochs":
        print(f"unfinished; continue with: {command}{'' if args.resume else ' --resume'}")
        return UNFINISHED
    dev = read_squad(str(args.data / "dev-v1.1.json.gz"))
    if args.dev_limit:
        dev = dev[: args.dev_limit]
    engine = ReaderEngine(model=str(staged))
    start = time.perf_counter()
    metrics = engine.evaluate(dev)
    seconds = time.perf_counter() - start

    def stamp(meta: dict) -> None:
        meta["training"].update({"command": command, "data": "SQuAD v1.1 train (rebuilt), minus the selection articles"})
        meta["dev_metrics"] = {"data": f"SQuAD v1.1 dev-v1.1.json.gz, {len(dev)} questions", **metrics,
                               "seconds": round(seconds, 1)}

    rewrite_metadata(staged, stamp)
    size = staged.stat().st_size
    print(f"dev EM {metrics['exact_match']:.2f} F1 {metrics['f1']:.2f}; {metrics['questions_per_second']:.1f}"
          f" questions/s; {size / 2**20:.1f} MB")
    if size > MAX_BYTES:
        staged.unlink()
        print(f"error: the model file is over {MAX_BYTES // 2**20} MB: not written to {args.output}", file=sys.stderr)
        return 1
    os.replace(staged, args.output)
    write_card(args, command, report, metrics)
    print(f"-> {args.output}")
    if metrics["f1"] < TARGET_F1:
        print(f"warning: dev F1 below the target of {TARGET_F1} (reported in the card)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
