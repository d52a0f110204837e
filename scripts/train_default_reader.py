"""Train the default reader of the qa task on SQuAD v1.1 train; measure it on the official dev set.

    python scripts/train_default_reader.py [--threads 1] [--set NAME=VALUE ...]

Trains the "reader" engine with ``RECIPE`` (bidirectional GRU encoder, word
vectors started from PPMI + SVD vectors of the training text, 3 epochs)
through ``toolkit.train`` on ../shared/data/squad/train-v1.1.json.gz (the
rebuilt train file; see its README) minus the last --holdout-articles
articles, which select the best epoch; the dev set (dev-v1.1.json.gz,
official) is used only for the final numbers. ``--set NAME=VALUE``
(repeatable) changes an option of the recipe (any train option of
qa:reader). An epoch takes about 15 minutes on one core (the GRU's step
loop gains nothing from a second thread, and a second thread slowed
training down 5x when another job shared the cores). A checkpoint is
written every few minutes and on Ctrl-C or SIGTERM (exit 130), and
``--set resume=true`` continues from it (same options);
``--set max_minutes=M`` stops after M minutes with exit code 3. Both print
the command to continue. When training is complete, the dev EM/F1, speed,
the command and the time are stamped into the model file and MODEL_CARD.md
is written beside it. Training writes OUTPUT.new (and its checkpoint
OUTPUT.new.ckpt), which replaces OUTPUT only when the file is within 25 MB:
an oversized model is refused (exit 1) before it replaces anything. A dev
F1 below the target of issue 7 (60) is reported on stderr and in the card,
not hidden.

    python scripts/train_default_reader.py --card-only

writes MODEL_CARD.md again from what the shipped model's metadata records
(its command, options, training report and dev scores), without training.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The default-model scripts' shared module, recipe.py, is beside them: importable however a script is loaded.
sys.path.insert(0, str(ROOT / "scripts"))
DATA = ROOT.parent / "shared" / "data" / "squad"
TARGET_F1 = 60.0
MAX_BYTES = 25 * 2**20
# Unlabeled text in ../shared/data that --vector-texts takes by name (the SQuAD dev set is not among
# them: it is the final measure). The news sets are summarization test splits; using their articles
# as unlabeled text for question answering leaks nothing into either task's scores.
VECTOR_TEXTS = {"imdb": "imdb/train.jsonl.gz", "cnn_dailymail": "cnn_dailymail/test.jsonl.gz",
                "bbc": "bbc_news_summary/test.jsonl.gz"}
# The train options of the shipped reader. A reader with dropout 0.1 and 30,000 words reached 64 F1 on
# train questions but 50 on dev after 3 epochs, and no better on held-out questions after: dropout 0.3
# and 15,000 words are meant against that memorising (in the first five epochs they delayed the
# plateau; docs/qa.md).
RECIPE = {"epochs": 3, "batch": 32, "learning_rate": 1e-3, "dim": 128, "encoder": "gru", "dropout": 0.3,
          "vocab_size": 15000, "word_vectors": True, "valid_limit": 2000}
# The recipe's dropout and vocabulary size, which were set with dev scores in view (the card says so).
DEV_INFLUENCED = (0.3, 15000)


def parser() -> argparse.ArgumentParser:
    from recipe import script_parser
    from toolkit_plugins.qa.neural import DEFAULT_MODEL_FILE

    p = script_parser(__doc__, DEFAULT_MODEL_FILE, "a train option of qa:reader over RECIPE, e.g. resume=true or"
                      " max_minutes=100", (DATA, "train-v1.1.json.gz and dev-v1.1.json.gz"), threads=1)
    p.add_argument("--holdout-articles", type=int, default=20, help="last train articles used for selection")
    p.add_argument("--limit", type=int, default=0, help="train on the first N questions only (experiments)")
    p.add_argument("--dev-limit", type=int, default=0, help="score the first N dev questions only (experiments)")
    p.add_argument("--vector-texts", nargs="+", default=[], metavar="TEXT",
                   help="more unlabeled text for the word vectors: a file (.jsonl/.txt, maybe .gz) or one of "
                        + ", ".join(VECTOR_TEXTS) + f" (their files in {DATA.parent})")
    p.add_argument("--card-only", action="store_true",
                   help="write MODEL_CARD.md from the metadata of the model at --output; train nothing")
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return parser().parse_args(argv)


def model_card(args: argparse.Namespace, meta: dict, size: int) -> str:
    """The card of the model whose metadata is ``meta``; ``args`` are those of the command that trained it."""
    training, dev = meta["training"], meta["dev_metrics"]
    options, selection = training["options"], meta.get("metrics") or {}
    # Models trained before the shared trainer record the questions scored with the scores.
    held_out, limit = training.get("validation_records") or 0, options["valid_limit"]
    scored = selection.get("records", min(held_out, limit) if limit else held_out)
    # Models trained before the shared trainer record epochs_done; the trainer's history has a record per epoch.
    epochs = training.get("epochs_done") or training["epochs"][-1]["epoch"]
    if options["word_vectors"]:
        sources = ", ".join(["the " + name if n == 0 else f"`{name}`"
                             for n, name in enumerate(training["word_vectors"]["documents"])])
        vectors = (f"The word vectors started from PPMI + SVD vectors of {sources} (plugins/qa/wordvectors.py),"
                   " then were fine-tuned.")
    else:
        vectors = "No pre-trained vectors."
    if options["encoder"] == "gru":
        encoder, blocks = "bidirectional GRU", "bidirectional GRUs"
    else:
        encoder, blocks = "convolution + self-attention", "self-attention + feed-forward blocks"
    influenced = (options["dropout"], options["vocab_size"]) == DEV_INFLUENCED
    if influenced:
        settings = (
            f"Dropout {options['dropout']} and the {options['vocab_size']:,}-word vocabulary were NOT chosen that way. They\n"
            "  were set during the self-attention encoder's experiments after a run with dropout 0.1 and 30,000\n"
            "  words scored 64.5 F1 on 1,500 train questions against 50.5 on 1,500 dev questions, and an epoch-1\n"
            "  model was scored on the first 500 dev questions during development. So the dev set informed\n"
            "  these settings, and the dev numbers below are **dev-influenced, not a clean held-out measure**\n"
            "  (the project's protocol, docs/benchmarks.md, makes every choice on validation data; these two\n"
            "  have not been re-selected on held-out train articles yet).")
    else:
        settings = (f"Dropout {options['dropout']} and the {options['vocab_size']:,}-word vocabulary were given on the"
                    " command\n  line; no score chose them.")
    return f"""# Model card: squad-reader (default model of `nlp-tool qa`)

Extractive question answering in English for `nlp-tool qa` and
`toolkit.pipeline("qa")`; engine `qa:reader`.

## How it was made

    {training['command']}

- Data: SQuAD v1.1 train, `{args.data}/train-v1.1.json.gz` (rebuilt from the official explorer
  pages: synthetic ids, about 2.6% of answer offsets pointing at another copy of the same text; see
  its README): {training['records']:,} questions, of which {training['instances']:,} became training
  passages ({training['left_out']} left out: the answer could not be placed in one window). The last
  {args.holdout_articles} train articles chose the best epoch ({scored} questions:
  EM {selection.get('exact_match')}, F1 {selection.get('f1')}).
- Training: {epochs} epochs, {training['steps']:,} steps of {options['batch']} questions,
  {training['seconds'] / 3600:.1f} h of training on {args.threads} threads ({platform.machine()},
  {os.cpu_count()} CPUs visible), resumed from checkpoints where it was interrupted.
- Model file: `{args.output.name}`, {size / 2**20:.1f} MB.

## Architecture (plugins/qa/reader.py)

Width {options['dim']}, dropout {options['dropout']}, weight average decay {options['ema'] or 'none'}. Word vectors (the
{options['vocab_size']:,} most frequent lower-cased train words) + hashed
character-trigram vectors + lexical-match features (exact / lower-cased / stem match with a question
word, frequency, capitals, digits, nearness to a question word) → projection and positions → a
shared {encoder} encoder for passage and question → passage-to-question attention
→ two {blocks} → start and end pointers. {vectors}
Passages of 200 tokens overlapping by 50; BM25 chooses which a long document's question reads.

## How the settings were chosen, and what the dev set saw

- The epoch, the encoder (`gru` against convolution + self-attention blocks) and `word_vectors`
  were chosen by F1 on the held-out train articles above, never on dev.
- {settings}

## SQuAD v1.1 dev (official file, {dev['records']:,} questions{'; dev-influenced, see above' if influenced else ''})

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


def write_card(args: argparse.Namespace, meta: dict) -> None:
    from toolkit.files import AtomicFile

    with AtomicFile(args.output.parent / "MODEL_CARD.md") as card:
        card.write(model_card(args, meta, args.output.stat().st_size).encode("utf-8"))


def card_from_metadata(output: Path) -> int:
    """MODEL_CARD.md again, from the command, options, training report and dev scores the model file records."""
    from toolkit.nn import read_metadata

    meta = read_metadata(output)
    # Flags of older versions of the script (--epochs, --dropout, ...) are now options, which the card reads
    # from the metadata: only the script's own flags matter here.
    args, _ = parser().parse_known_args(shlex.split(meta["training"]["command"])[2:])
    args.output = output
    write_card(args, meta)
    print(f"-> {output.parent / 'MODEL_CARD.md'}")
    return 0


def main() -> int:
    args = parse_args()
    if args.card_only:
        return card_from_metadata(args.output)
    from recipe import USAGE, recipe_settings, set_up_process, train
    set_up_process(args.threads)
    from toolkit_plugins.qa.neural import ReaderEngine
    from toolkit_plugins.qa.squad import read_squad
    from toolkit.files import TooLarge, move_within
    from toolkit.nn import rewrite_metadata

    command = "python scripts/train_default_reader.py " + shlex.join(sys.argv[1:])
    settings = recipe_settings(ReaderEngine, args.set)
    if args.vector_texts and "vector_texts" in settings:
        print("error: give --vector-texts or --set vector_texts=..., not both", file=sys.stderr)
        return USAGE
    options = {"name": "squad-reader", **RECIPE, **settings}
    if args.vector_texts:
        options["vector_texts"] = ",".join(str(DATA.parent / VECTOR_TEXTS[t]) if t in VECTOR_TEXTS else t
                                           for t in args.vector_texts)
    again = command if settings.get("resume") else f"{command} --set resume=true"
    for name in ("train-v1.1.json.gz", "dev-v1.1.json.gz"):
        if not (args.data / name).is_file():
            sys.exit(f"error: {args.data / name} not found (pass --data DIR)")
    records = read_squad(str(args.data / "train-v1.1.json.gz"))
    titles = list(dict.fromkeys(r["title"] for r in records))
    held_titles = set(titles[-args.holdout_articles :]) if args.holdout_articles else set()
    fitting = [r for r in records if r["title"] not in held_titles]
    valid = without_repeated_contexts([r for r in records if r["title"] in held_titles], fitting) or None
    if args.limit:
        fitting = fitting[: args.limit]
    staged = args.output.with_name(args.output.name + ".new")
    # valid_split=0: without held-out articles nothing else is held out.
    report = train("qa", fitting, engine="reader", output=staged, valid=valid, valid_split=0, seed=args.seed,
                   again=again, **options)
    print(f"{report['epochs'][-1]['epoch']} epochs, {report['steps']} steps, {report['train_seconds']:.0f} s; selection:"
          f" {report['metrics']}", flush=True)
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

    meta = rewrite_metadata(staged, stamp)
    print(f"dev EM {metrics['exact_match']:.2f} F1 {metrics['f1']:.2f}; {metrics['questions_per_second']:.1f}"
          f" questions/s; {staged.stat().st_size / 2**20:.1f} MB")
    try:
        move_within(staged, args.output, MAX_BYTES)
    except TooLarge as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    write_card(args, meta)
    print(f"-> {args.output}")
    if metrics["f1"] < TARGET_F1:
        print(f"warning: dev F1 below the target of {TARGET_F1} (reported in the card)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
