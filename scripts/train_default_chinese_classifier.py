"""Select, train and ship the Chinese sentiment model of the classify task (ChnSentiCorp).

    python scripts/train_default_chinese_classifier.py [--data DIR] [--output FILE] [--threads 2] [--seed 0]
        [--set NAME=VALUE ...]

``--set`` changes an option of the ensemble engine in every candidate's
recipe (e.g. ``--set c=0.5``); the candidates below are the recipes.

The protocol is the English model's (scripts/train_default_classifier.py,
whose pieces this script uses) on ChnSentiCorp's own split:

1. Validation is the dev file minus its reviews that near-duplicate a
   training review (338 of its 1,200 repeat one word for word: they would
   score memory, not skill), counted, and the sentences of those reviews,
   each labelled with its review's label (ChnSentiCorp has no ratings to
   keep only the clearest reviews' sentences, as the English script does).
2. Every candidate of CANDIDATES is trained by ``toolkit.train`` on the whole
   training file (and its sentences, if the candidate says so), the
   validation reviews and sentences passed as ``valid=`` (so they also
   choose a CNN's epoch and an ensemble's averaging weight).
3. The best mean of the validation review and sentence accuracies wins
   (ties: the earlier, cheaper candidate); a file over 10 MB cannot ship, so
   it cannot win.
4. Only then is the test file read, once: the chosen file is evaluated on it,
   nothing is refitted or changed after.
5. The languages (["zh"]), the selection table, the test metrics and the
   command are stamped into the file, which moves to ``--output`` only within
   the size limit; its card (``<model name>.md``) is written beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The default-model scripts' shared modules (recipe.py, the English classifier's script) are beside this one.
sys.path.insert(0, str(ROOT / "scripts"))

from recipe import classification_tables, set_up_process  # noqa: E402
from train_default_classifier import (  # noqa: E402
    SENTENCE_MIN_WORDS, Candidate, Split, choose, clean_split, evaluate_once, read, selection_table, train_candidates,
)

DATA = ROOT.parent / "shared" / "data" / "chnsenticorp"
MODEL_NAME = "chnsenticorp-sentiment"
OUTPUT = ROOT / "plugins" / "classification" / "models" / f"{MODEL_NAME}.nlpt"
LANGUAGES = ["zh"]
TARGET_ACCURACY = 0.93
MAX_BYTES = 10 * 2**20  # issue 24: at most 10 MB
# The n-gram models: character 1-3-grams, or jieba's words and word pairs.
CHARS = {"cjk": "char", "ngram": 3, "hash_bits": 22}
WORDS = {"cjk": "jieba", "ngram": 2, "hash_bits": 22}
# The CNNs, from PPMI + SVD vectors of the training texts' tokens, dropout 0.5 on the pooled features. Reviews
# are short (median 76 characters; 2 % over 400); all of their 4,600 characters fit the vocabulary.
CNN = {"max_len": 400, "vocab_size": 6000, "epochs": 8, "patience": 2, "dropout": 0.5, "word_vectors": True}
CNN_WORDS = {**CNN, "max_len": 300, "vocab_size": 20000}
# Seeds move a CNN, and so an ensemble, by about a point here: the mean of three CNNs of different seeds
# (cnn_members) is steadier. Three embeddings of 20,000 words would pass the 10 MB limit; of 8,000 (the words of
# at least four training reviews) three fit with the n-gram model.
MEMBERS = {"cnn_members": 3}
CNN_WORDS_SMALL = {**CNN_WORDS, "vocab_size": 8000}

# The configurations tried, in the order of the issue (and of cost), as recipes of the ensemble engine, the
# engine `nlp-tool classify -m FILE` reads a file with: a member alone is the average that gives it all the
# weight (the n-gram model's CNN then trains one epoch and is never used). Every run trains them all.
CANDIDATES = (
    Candidate("chars", "n-gram model alone: character 1-3-grams",
              {**CHARS, **CNN, "ngram_weight": 1.0, "epochs": 1, "word_vectors": False}),
    Candidate("words", "n-gram model alone: jieba word 1-2-grams",
              {**WORDS, **CNN_WORDS, "ngram_weight": 1.0, "epochs": 1, "word_vectors": False}),
    Candidate("cnn-chars", "CNN alone, on characters", {**CHARS, **CNN, "ngram_weight": 0.0}),
    Candidate("cnn-words", "CNN alone, on jieba words", {**WORDS, **CNN_WORDS, "ngram_weight": 0.0}),
    Candidate("ensemble-chars", "character 1-3-gram model + CNN on characters", {**CHARS, **CNN}),
    Candidate("ensemble-words", "jieba word 1-2-gram model + CNN on jieba words", {**WORDS, **CNN_WORDS}),
    Candidate("ensemble-chars-3cnn", "character 1-3-gram model + mean of 3 CNNs on characters (seeds s, s+5, s+10)",
              {**CHARS, **CNN, **MEMBERS}),
    Candidate("ensemble-words-3cnn", "jieba word 1-2-gram model + mean of 3 CNNs on jieba words (8,000 words;"
              " seeds s, s+5, s+10)", {**WORDS, **CNN_WORDS_SMALL, **MEMBERS}),
    # Reviews are what these models were fitted on, and a short text gets its few clues weighed as in a review:
    # the film review, 这部电影太好看了, came out `neg` 0.84, 太…了 mostly complaining in these reviews.
    # Fitted on the reviews' sentences too, as the English default is.
    Candidate("ensemble-chars+sentences", "as ensemble-chars, fitted on the reviews and their sentences",
              {**CHARS, **CNN}, sentences=True),
    Candidate("ensemble-words+sentences", "as ensemble-words, fitted on the reviews and their sentences",
              {**WORDS, **CNN_WORDS}, sentences=True),
)
CRITERION = ("the mean of the validation review accuracy and the validation sentence accuracy; ties go to the"
             " earlier candidate of the list (the cheaper one);"
             f" a file over {MAX_BYTES // 2**20} MB cannot ship and is not eligible")
# The selection before this one, whose test accuracy was read then: the history of the test file's readings.
FIRST_SELECTION = ("The first selection (2026-12-03) had the eight candidates before the `+sentences` ones and"
                   " chose by validation review accuracy alone: `ensemble-words`, test accuracy 0.9267, which"
                   " answered `neg` 0.84 to the issue's film review. This selection added the validation"
                   " sentences to the criterion and the `+sentences` candidates, for short texts, without a"
                   " look at the test file; the test file has now been read twice, once for each chosen model.")
# Measured while the candidates above were drawn up, by the same protocol (trained on the training file, scored
# on the same validation reviews; test never read) but outside this script: what was tried and left out.
EXPLORED = """\
| configuration | seed | validation accuracy |
|---|---|---|
| n-gram model, character 1-3-grams + jieba word 1-2-grams hashed together (not an engine option) | - | 0.9068 (ensembled with a CNN on words: 0.9114) |
| the same, 5-fold cross-validation on the training file (grouped by text), against character 1-3-grams alone | - | 0.8917 against 0.8904 (C = 1), 0.8928 against 0.8907 (C = 0.3) |
| n-gram model, character 1-4-grams or 1-5-grams (scikit-learn's hasher, every bucket) | - | 0.8928 / 0.8986 (1-3-grams the same way: 0.9044) |
| ensemble on characters, CNN from random vectors | 0 | 0.9114 |
| ensemble on characters, CNN from PPMI+SVD vectors | 0, 1 | 0.9103, 0.9009 |
| ensemble on jieba words, CNN from random vectors | 0 | 0.9103 |
| ensemble on jieba words, CNN from PPMI+SVD vectors | 0, 1 | 0.9207, 0.9091 |
| the same, word 1-3-grams | 0 | 0.9126 |
| the same, batches of 64 | 0, 1 | 0.9114, 0.9068 |
| the same, weights averaged (`ema` 0.99) | 0, 1 | 0.9044, 0.9114 |
| ensemble on character bigrams (`cjk=bigram`), CNN from PPMI+SVD vectors | 0, 1 | 0.9091, 0.9021 |
| CNN alone on jieba words, PPMI+SVD vectors, 20,000 or 8,000 words (before the `-3cnn` candidates) | 0 | 0.8811, 0.8811 |
"""
# The issue's example of a short text about something else than the training reviews' hotels, laptops and books.
FILM_REVIEW = "这部电影太好看了"
LICENCE = """ChnSentiCorp (Songbo Tan, Institute of Computing Technology, Chinese Academy of Sciences; the
9,600 / 1,200 / 1,200 split of Baidu's ERNIE). Its source archive states no licence; the same data as
PaddleNLP/LUGE distribute it comes with the LUGE participant agreement, which allows use **only for
non-commercial research or teaching** and forbids distributing the data outside that purpose. This model
was fitted on that data: treat it, and what it predicts, as for **non-commercial research and teaching
only**. The data itself is not shipped."""


def film_review(model: Path) -> dict:
    """The result of FILM_REVIEW (a short text about another domain, from the issue) by the model file."""
    from toolkit_plugins.classification.ensemble import EnsembleClassifier

    return EnsembleClassifier(model=str(model)).run([FILM_REVIEW])[0]


def model_card(args: argparse.Namespace, command: str, split: Split, rows: Sequence[dict], chosen: int,
               test: dict, meta: dict, size: int, film: dict) -> str:
    row = rows[chosen]
    options = meta["training"]["options"]  # every setting the engine used, defaults included
    verdict = "meets" if test["accuracy"] >= TARGET_ACCURACY else "**misses**"
    settings = ", ".join(f"`{key}={options[key]}`" for key in sorted({**row["options"]}) if key in options)
    seeds = [member["seed"] for member in meta["training"].get("cnn_members", [])]
    members = (f" The CNN side is the mean of {len(seeds)} CNNs of that recipe, trained with seeds"
               f" {', '.join(map(str, seeds))}." if seeds else "")
    records = meta["training"]["records"]
    fitted = (f"the {len(split.fit):,} reviews of `train.jsonl.gz` and their {records - len(split.fit):,}"
              f" sentences of at least {SENTENCE_MIN_WORDS} characters, each labelled with its review's label"
              f" ({records:,} records)" if row["sentences"] else f"the {len(split.fit):,} reviews of `train.jsonl.gz`")
    return f"""# Model card: {MODEL_NAME} (Chinese sentiment for `nlp-tool classify`)

Chinese sentiment (labels `neg`, `pos`) of reviews; engine `classify:{meta['engine']}`, candidate
`{row['name']}`; metadata `"languages": {json.dumps(LANGUAGES)}`. Use it with

    nlp-tool classify -m plugins/classification/models/{args.output.name} --text "这家酒店的服务很好，房间也干净"

## Licence of the training data: non-commercial

{LICENCE}

## How it was made

    {command}

- Data: {args.data}: `train.jsonl.gz` ({len(split.fit):,} reviews: the only ones fitted on),
  `dev.jsonl.gz` and `test.jsonl.gz`. Reviews of hotels, with some of laptops and books; mostly
  simplified characters.
- Fitted on: {fitted}.
- Validation: the dev file's {split.drawn:,} reviews less the {len(split.removed)} that near-duplicate a
  training review (word 8-gram Jaccard >= 0.9; for Chinese a "word" is a run of characters between
  punctuation, so these are repeats): {len(split.valid):,} reviews, and their {len(split.valid_sentences):,}
  sentences of at least {SENTENCE_MIN_WORDS} characters, each labelled with its review's label (some do not
  say what their review says: the sentence accuracy of a perfect model is below 1). They chose each
  candidate's CNN epoch and averaging weight and, by the criterion below, the candidate; they were not
  fitted on.
- Test: {test['records']:,} reviews, read once for this model, after the choice; nothing was changed after.
- Training time of the chosen candidate: {row['seconds']:.0f} s wall time on {args.threads} threads
  ({platform.machine()}, {os.cpu_count()} CPUs visible); all {len(rows)} candidates:
  {sum(r['seconds'] for r in rows):.0f} s.
- Model file: `{args.output.name}`, {size / 2**20:.1f} MB.

## Selection

The candidates are the configurations tried, cheapest first; each run of the script trains them all
on the training file. Criterion: {CRITERION}.

{selection_table(rows, chosen)}

The validation reviews and sentences also chose each ensemble's CNN epoch and averaging weight, so its
scores of the ensembles are slightly optimistic; the test number below is not. {FIRST_SELECTION}

Tried while the candidates were drawn up, by the same protocol (fitted on the training file, scored on
the same {len(split.valid):,} validation reviews, test never read) but outside this script, and left out:

{EXPLORED}
Seeds move an ensemble by about a point (8 reviews) here: the two seeds of each CNN recipe agree
only in that words beat characters and character bigrams in the ensemble, by about a point, which is
why the jieba recipe is among the candidates and jieba a dependency. It is also why the `-3cnn`
candidates average three CNNs of different seeds (the engine's `cnn_members`), so that the CNN side of the
average depends less on one seed. Three CNNs on jieba words keep 8,000 words each (the words of at least four
training reviews), since three embeddings of 20,000 would pass the size limit.

## The chosen model

Engine `{meta['engine']}` with {settings}.{members} Text is split by `toolkit.text.tokenize` with
`cjk="{options['cjk']}"` (kept in the file, so predictions split text the same way): NFKC-normalised,
lower-cased, punctuation dropped, Chinese {'characters one by one' if options['cjk'] == 'char' else 'words as jieba segments them'};
Latin words and numbers as words.

## Test metrics (ChnSentiCorp test, {test['records']:,} reviews, one evaluation)

- Accuracy: **{test['accuracy']:.4f}** ({verdict} the project's target of {TARGET_ACCURACY:.1%}; for scale,
  BERT-base is reported at 94.7 % and ERNIE 1.0 at 95.4 % on this split, both pre-trained on large
  Chinese corpora)
- Macro precision / recall / F1: {test['macro']['precision']:.4f} / {test['macro']['recall']:.4f} / {test['macro']['f1']:.4f}
- {test['near_duplicates_of_train']} test reviews near-duplicate a training review; on the other
  {test['records'] - test['near_duplicates_of_train']:,} the accuracy is {test['accuracy_without_them']:.4f}.
- Prediction speed, tokenization included: {test['reviews_per_s']:,} reviews/s ({args.threads} threads)

{classification_tables(test)}

## Limits

Trained on reviews of hotels, laptops and books: other domains are less sure, and neutral or mixed
text still gets one of the two labels. Short texts about other things can come out wrong with
confidence: in these reviews 太…了 mostly complains (太贵了, 太差了) and words of films weigh little; the
issue's film review {FILM_REVIEW} gets `{film['label']}` {film['score']:.2f} from this model (looked at after
the test evaluation, and left as it is; the first model shipped got `neg` 0.84). Chinese only;
traditional characters are read as they are (few training reviews use them). Some labels of the data
are debatable (its README gives one); no label was changed.
"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from recipe import script_parser

    return script_parser(__doc__, OUTPUT, "an option of the ensemble engine for every candidate",
                         (DATA, "train.jsonl.gz, dev.jsonl.gz and test.jsonl.gz"),
                         seed_help="seed of every candidate").parse_args(argv)


def run(args: argparse.Namespace, command: str, candidates: Sequence[Candidate] = CANDIDATES) -> int:
    """The whole protocol; 0 when the chosen model was shipped, 1 when it was refused for its size. A bad
    --set (2), a candidate stopped at its time limit (3) and an interrupt (130) end the script (``recipe``)."""
    from recipe import recipe_settings, ship
    from toolkit_plugins.classification.ensemble import EnsembleClassifier
    from toolkit.files import TooLarge
    from toolkit.nn import rewrite_metadata

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    settings = recipe_settings(EnsembleClassifier, args.set)
    train = read(args.data / "train.jsonl.gz")
    split = clean_split(train, read(args.data / "dev.jsonl.gz"), ratings=None)
    log(f"{len(train):,} training reviews; validation: {split.drawn:,} dev reviews, {len(split.removed)}"
        f" near-duplicates of training reviews dropped, {len(split.valid):,} kept, and their"
        f" {len(split.valid_sentences):,} sentences")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".select-", dir=args.output.parent) as folder:
        rows = train_candidates(candidates, split, Path(folder), args.seed, log, settings, model_name=MODEL_NAME)
        try:
            chosen = choose(rows, MAX_BYTES)
        except TooLarge as err:
            log(f"error: {err}; nothing written")
            return 1
        row = rows[chosen]
        log(f"chosen: {row['name']} (validation reviews {row['validation_accuracy']:.4f}, sentences"
            f" {row['sentence_accuracy']:.4f})")
        test = evaluate_once(row["file"], read(args.data / "test.jsonl.gz"), train)

        def stamp(meta: dict) -> None:
            meta["languages"] = LANGUAGES
            meta["training"].update({"command": command,
                                     "data": f"ChnSentiCorp train.jsonl.gz (ERNIE split), {len(train):,} reviews",
                                     "data_terms": "non-commercial research or teaching only"})
            meta["selection"] = {
                "validation": {"data": "ChnSentiCorp dev.jsonl.gz", "drawn": split.drawn,
                               "near_duplicates_removed": len(split.removed), "records": len(split.valid),
                               "sentences": len(split.valid_sentences),
                               "near_duplicate_rule": "word 8-gram Jaccard >= 0.9"},
                "criterion": CRITERION,
                "candidates": [{k: v for k, v in r.items() if k != "file"} for r in rows],
                "chosen": row["name"],
            }
            meta["test_metrics"] = {
                "data": f"ChnSentiCorp test.jsonl.gz, {test['records']:,} reviews, evaluated once after the choice",
                **{k: test[k] for k in ("records", "accuracy", "macro", "reviews_per_s", "near_duplicates_of_train",
                                        "accuracy_without_them")}}

        meta = rewrite_metadata(row["file"], stamp)
        film = film_review(row["file"])
        status = ship(row["file"], args.output, MAX_BYTES,
                      lambda size: model_card(args, command, split, rows, chosen, test, meta, size, film),
                      args.output.with_suffix(".md"))
    if status == 0:
        log(f"test accuracy {test['accuracy']:.4f}; {test['reviews_per_s']:,} reviews/s -> {args.output}")
        if test["accuracy"] < TARGET_ACCURACY:
            log(f"warning: test accuracy {test['accuracy']:.4f} is below the target of {TARGET_ACCURACY:.2f};"
                " reported in the card, not tuned further")
    return status


def main() -> int:
    args = parse_args()
    set_up_process(args.threads)
    return run(args, shlex.join(["python", "scripts/train_default_chinese_classifier.py", *sys.argv[1:]]))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
