"""Select, train and test the default model of the "trained" summarization engine.

    python scripts/train_default_summarizer.py [--output FILE] [--threads 1] [--seed 0] [--set NAME=VALUE ...]

Every candidate is trained by ``toolkit.train`` with ``RECIPE``, its own
options of the grid, and the ``--set`` options (engine options of
summarize:trained, e.g. ``--set epochs=20``), in that order.

The protocol (docs/benchmarks.md), in the order the script follows it:

1. Data: the fixed train and test parts of plugins/summarization/corpora.py
   (near duplicates removed; docs/data-splits.md). A validation part is
   carved from each train part (``VALID_FRACTION``, seeded, stratified by
   source: BBC, CNN, Daily Mail; near copies of fitting records dropped);
   the rest of the train parts is the fitting part.
2. Every candidate of the grid (``MIXES`` x ``PARAGRAPH_SHARE`` x ``ENCODERS``
   x ``RULES``, fixed here before any score was seen) is fitted on the
   fitting part of its data mix; its epoch is chosen by the engine on the
   whole validation part (BBC + CNN/DM, the same records for every
   candidate). The length rule is applied at inference: each model is
   trained once and scored under each rule.
3. Each candidate is scored on the validation part, and the one with the
   best ``CRITERION`` is chosen (an exact tie goes to the first in grid order).
4. Then, once, the chosen model, ``centrality`` and ``lead`` are scored on the
   test parts (BBC; CNN/DM pooled and each source), k = 3 and k = the
   reference's sentence count. Nothing is chosen after that.
5. The model file gets its metadata (the selection table, the test metrics,
   the splits, the command, the chosen length rule) by
   ``toolkit.nn.rewrite_metadata`` in a temporary directory beside
   ``--output``; ``toolkit.files.move_within`` refuses a file over
   ``MAX_BYTES`` there, before it reaches ``--output``. Then MODEL_CARD.md is
   written beside it from the same records.

The trainings take seconds each: an interrupted run (exit 130) or one whose
candidate hit a ``max_minutes`` limit (exit 3) ships nothing and is run again.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toolkit_plugins.summarization.trained import TrainedSummarizer

ROOT = Path(__file__).resolve().parents[1]
# The default-model scripts' shared module, recipe.py, is beside them: importable however a script is loaded.
sys.path.insert(0, str(ROOT / "scripts"))
MAX_BYTES = 10 * 2**20
METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
VALID_FRACTION = 0.2
# The engine options every candidate shares (those of the shipped model), pinned here so that a new engine
# default does not change the default model unnoticed.
RECIPE = {"epochs": 15, "patience": 3, "batch": 64, "learning_rate": 2e-3, "max_len": 50, "vocab_size": 20000,
          "dim": 32, "hidden": 32, "length_rule": "short"}
# The candidates. Data mixes name corpora; encoders are train options of the engine.
MIXES = {"BBC": ("bbc",), "BBC+CNN/DM": ("bbc", "cnndm")}
PARAGRAPH_SHARE = (True, False)
ENCODERS = {"none": {"filters": 0, "dropout": 0.9}, "64 filters": {"filters": 64, "dropout": 0.9}}
RULES = ("always", "short", "never")  # features.LENGTH_RULES, in the order they are tried
# The validation cells of the criterion: corpus x summary length (None: the reference's sentence count).
CELLS = (("bbc", None), ("bbc", 3), ("cnndm", None), ("cnndm", 3))
CRITERION = ("the mean over the four validation cells (BBC, CNN/DM) x (k = reference sentences, k = 3)"
             " of ROUGE-1 F1 + ROUGE-2 F1 (x 100)")
# The first records of each test part (CNN/DM: of each source) are scored again, alone (k = 3, the
# engines' own ROUGE), so that tests/test_summarization_trained.py can recompute them from the
# shipped file in a few seconds.
SLICE = 15


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from recipe import script_parser
    from toolkit_plugins.summarization.trained import DEFAULT_MODEL_FILE

    return script_parser(__doc__, DEFAULT_MODEL_FILE, "an option of the trained engine for every candidate, over"
                         " RECIPE", threads=1).parse_args(argv)


def summarizer(model: Path, sentences: int, rule: str) -> TrainedSummarizer:
    """The trained engine on ``model``, ranking under the length ``rule``: one trained file serves every rule
    (the rule is read at inference only)."""
    from toolkit_plugins.summarization.trained import TrainedSummarizer

    engine = TrainedSummarizer(model=str(model), sentences=sentences)
    engine.length_rule = rule
    return engine


def evaluate(make, records: list[dict], k: int | None) -> dict:
    """Mean ROUGE F1 x 100 of the engine ``make(sentences)`` on ``records``; k None: each reference's length."""
    from toolkit_plugins.summarization.trained import reference_length

    if k is not None:
        groups = {k: records}
    else:
        groups = {}
        for record in records:
            groups.setdefault(reference_length(record["summary"]), []).append(record)
    totals = dict.fromkeys(METRICS, 0.0)
    seconds = 0.0
    for sentences, part in groups.items():
        start = time.perf_counter()
        scores = make(sentences).evaluate(part)
        seconds += time.perf_counter() - start
        for name in METRICS:
            totals[name] += scores[name] * len(part)
    return {**{name: 100 * total / len(records) for name, total in totals.items()},
            "records": len(records), "seconds": seconds}


def pool(parts: list[dict]) -> dict:
    """The ``evaluate`` result of the records of ``parts`` together (the means weighted by records)."""
    records = sum(p["records"] for p in parts)
    return {**{m: sum(p[m] * p["records"] for p in parts) / records for m in METRICS},
            "records": records, "seconds": sum(p["seconds"] for p in parts)}


def rounded(scores: dict) -> dict:
    return {**{m: round(scores[m], 2) for m in METRICS}, "records": scores["records"],
            "documents_per_second": round(scores["records"] / max(scores["seconds"], 1e-9), 1)}


def main() -> int:
    args = parse_args()
    from recipe import set_up_process
    set_up_process(args.threads)
    from toolkit_plugins.summarization.centrality import CentralitySummarizer
    from toolkit_plugins.summarization.corpora import SOURCE_NAMES, bbc_split, carve_validation, cnndm_split
    from toolkit_plugins.summarization.lead import LeadSummarizer
    from toolkit_plugins.summarization.trained import TrainedSummarizer
    from recipe import recipe_settings, train
    from toolkit.files import AtomicFile, TooLarge, move_within
    from toolkit.nn import rewrite_metadata

    command = "python scripts/train_default_summarizer.py " + shlex.join(sys.argv[1:])
    settings = recipe_settings(TrainedSummarizer, args.set)
    started = time.perf_counter()
    try:
        splits = {"bbc": bbc_split(), "cnndm": cnndm_split()}
    except FileNotFoundError as error:
        sys.exit(f"error: {error.filename} not found (the corpora live in ../shared/data)")
    fitting, valid, data = {}, {}, {}
    for corpus, split in splits.items():
        fitting[corpus], valid[corpus], removed = carve_validation(split.train, VALID_FRACTION, args.seed)
        data[corpus] = {"train": len(split.train), "test": len(split.test), "removed": split.removed,
                        "fitting": len(fitting[corpus]), "validation": len(valid[corpus]),
                        "validation_removed": removed,
                        "train_sources": Counter(r["source"] for r in split.train),
                        "test_sources": Counter(r["source"] for r in split.test),
                        "validation_sources": Counter(r["source"] for r in valid[corpus])}
    validation = valid["bbc"] + valid["cnndm"]
    print(f"fitting parts: BBC {len(fitting['bbc'])}, CNN/DM {len(fitting['cnndm'])};"
          f" validation: BBC {len(valid['bbc'])}, CNN/DM {len(valid['cnndm'])}", flush=True)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    # Beside the destination, so that the finished file moves there by a rename.
    work = Path(tempfile.mkdtemp(prefix=".summarizer-selection-", dir=args.output.parent))
    try:
        # -- selection: validation scores only ------------------------------------------
        candidates = []
        for mix, corpora in MIXES.items():
            records = [r for corpus in corpora for r in fitting[corpus]]
            for paragraph_share in PARAGRAPH_SHARE:
                for encoder, options in ENCODERS.items():
                    path = work / f"candidate-{len(candidates) // len(RULES)}.nlpt"
                    # Candidates of minutes are trained again rather than resumed: ``again`` is None.
                    report = train("summarize", records, engine="trained", output=path, valid=validation, seed=args.seed,
                                   progress=False, again=None, **{"name": args.output.stem, **RECIPE,
                                                                  "paragraph_share": paragraph_share, **options,
                                                                  **settings})
                    for rule in RULES:
                        cells = {}
                        for corpus, k in CELLS:
                            scores = evaluate(lambda n, p=path, r=rule: summarizer(p, n, r), valid[corpus], k)
                            cells[cell_name(corpus, k)] = scores["rouge1"] + scores["rouge2"]
                        candidate = {"data": mix, "paragraph_share": paragraph_share, "encoder": encoder,
                                     "length_rule": rule, "cells": cells,
                                     "criterion": sum(cells.values()) / len(cells),
                                     "best_epoch": report["best_epoch"], "train_seconds": report["seconds"],
                                     "file": str(path)}
                        candidates.append(candidate)
                        print(f"{mix:<11} paragraph_share={paragraph_share!s:<5} encoder={encoder:<10}"
                              f" rule={rule:<6} epoch {report['best_epoch']:>2} ({report['seconds']:.0f} s): "
                              + " ".join(f"{v:.2f}" for v in cells.values())
                              + f" -> {candidate['criterion']:.3f}", flush=True)
        chosen = max(candidates, key=lambda c: c["criterion"])  # max keeps the first of equal values
        print(f"chosen: {describe(chosen)}, criterion {chosen['criterion']:.3f}", flush=True)

        # -- the one test evaluation ------------------------------------------------------
        model = Path(chosen["file"])
        engines = {
            "trained": lambda k: summarizer(model, k, chosen["length_rule"]),
            "centrality": lambda k: CentralitySummarizer(sentences=k),
            "lead": lambda k: LeadSummarizer(sentences=k),
        }
        test = {"BBC": splits["bbc"].test}
        for name in ("cnn", "dailymail"):
            test[SOURCE_NAMES[name]] = [r for r in splits["cnndm"].test if r["source"] == name]
        results: dict = {}
        for part, records in test.items():
            for length, k in (("reference", None), ("3", 3)):
                for engine, make in engines.items():
                    results.setdefault(part, {}).setdefault(length, {})[engine] = evaluate(make, records, k)
        for length in ("reference", "3"):
            for engine in engines:
                results.setdefault("CNN/DM", {}).setdefault(length, {})[engine] = pool(
                    [results[SOURCE_NAMES[s]][length][engine] for s in ("cnn", "dailymail")])
        results = {part: {length: {engine: rounded(scores) for engine, scores in by_engine.items()}
                          for length, by_engine in results[part].items()}
                   for part in ("BBC", "CNN/DM", "CNN", "Daily Mail")}
        for part, by_length in results.items():
            for length, by_engine in by_length.items():
                for engine, m in by_engine.items():
                    print(f"{part} test k={length} {engine}: R-1 {m['rouge1']:.2f} R-2 {m['rouge2']:.2f}"
                          f" R-L {m['rougeL']:.2f} R-Lsum {m['rougeLsum']:.2f}", flush=True)
        slice_metrics = {part: {"ids": [r["id"] for r in records[:SLICE]],
                                **{engine: {m: engines[engine](3).evaluate(records[:SLICE])[m] for m in METRICS}
                                   for engine in ("trained", "lead")}}
                         for part, records in test.items()}

        # -- the file: checked before it reaches its destination ----------------------------
        selection = {
            "criterion": CRITERION,
            "validation_fraction": VALID_FRACTION,
            "candidates": [{key: (round(value, 4) if isinstance(value, float) else value)
                            for key, value in c.items() if key not in ("file", "cells")}
                           | {"cells": {cell: round(v, 4) for cell, v in c["cells"].items()}} for c in candidates],
            "chosen": candidates.index(chosen),
        }

        def finish(meta: dict) -> None:
            meta["length_rule"] = chosen["length_rule"]
            meta["training"]["command"] = command
            meta["splits"] = data
            meta["selection"] = selection
            meta["test_metrics"] = {part: {length: by_engine["trained"] for length, by_engine in by_length.items()}
                                    for part, by_length in results.items()}
            meta["test_baselines"] = {part: {length: {e: m for e, m in by_engine.items() if e != "trained"}
                                             for length, by_engine in by_length.items()}
                                      for part, by_length in results.items()}
            meta["test_slice"] = slice_metrics

        final = work / args.output.name
        meta = rewrite_metadata(model, finish, final)
        try:
            size = move_within(final, args.output, MAX_BYTES)
        except TooLarge as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with AtomicFile(args.output.parent / "MODEL_CARD.md") as card:
        card.write(model_card(args, command, meta, results, size, time.perf_counter() - started).encode("utf-8"))
    print(f"{size / 2**20:.2f} MB -> {args.output}")
    return 0


def cell_name(corpus: str, k: int | None) -> str:
    return f"{'BBC' if corpus == 'bbc' else 'CNN/DM'} k={'ref' if k is None else k}"


def describe(c: dict) -> str:
    return (f"data {c['data']}, paragraph_share {'on' if c['paragraph_share'] else 'off'},"
            f" encoder {c['encoder']}, length rule {c['length_rule']}")


def model_card(args: argparse.Namespace, command: str, meta: dict, results: dict, size: int, seconds: float) -> str:
    training, selection, data = meta["training"], meta["selection"], meta["splits"]
    options = training["options"]
    chosen = selection["candidates"][selection["chosen"]]
    cells = [cell_name(corpus, k) for corpus, k in CELLS]  # the metadata's JSON has them sorted
    candidate_rows = "\n".join(
        f"| {'**' if n == selection['chosen'] else ''}{n + 1}{'**' if n == selection['chosen'] else ''}"
        f" | {c['data']} | {'on' if c['paragraph_share'] else 'off'} | {c['encoder']} | {c['length_rule']} |"
        f" {c['best_epoch']} | " + " | ".join(f"{c['cells'][cell]:.2f}" for cell in cells)
        + f" | {c['criterion']:.3f} |" for n, c in enumerate(selection["candidates"]))
    test_rows = "\n".join(
        f"| {part} ({by_length['3']['trained']['records']:,}) | {length} | {engine} | {m['rouge1']:.2f} |"
        f" {m['rouge2']:.2f} | {m['rougeL']:.2f} | {m['rougeLsum']:.2f} |"
        for part, by_length in results.items() for length, by_engine in by_length.items()
        for engine, m in by_engine.items())
    cnndm = results["CNN/DM"]
    verdicts = []
    for length, name in (("3", "Lead-3"), ("reference", "Lead-k")):
        ours, lead = cnndm[length]["trained"]["rouge1"], cnndm[length]["lead"]["rouge1"]
        verdicts.append(f"k = {length}: {ours:.2f} against {name}'s {lead:.2f},"
                        f" {'above' if ours > lead else 'not above'} it")
    bbc, cnn = data["bbc"], data["cnndm"]
    return f"""# Model card: {meta['name']} (default model of `nlp-tool summarize`)

Extractive summaries of English news for `nlp-tool summarize` and
`toolkit.pipeline("summarize")`: the model of the task's default engine,
`trained`. Everything below was written by `scripts/train_default_summarizer.py`
from what it did in this run.

## How it was made

    {command}

- Data: the fixed parts of `plugins/summarization/corpora.py` (rule and counts:
  docs/data-splits.md), near duplicates (word 8-gram Jaccard >= 0.9) removed.
  BBC News Summary, articles without their headline: train {bbc['train']:,}, test
  {bbc['test']:,} (removed: {bbc['removed']['train']} within train, {bbc['removed']['test']} within test,
  {bbc['removed']['test~train']} test copies of train articles). CNN/DailyMail: train {cnn['train']:,}
  ({cnn['train_sources'].get('cnn', 0):,} CNN, {cnn['train_sources'].get('dailymail', 0):,} Daily Mail), test
  {cnn['test']:,} ({cnn['test_sources'].get('cnn', 0):,} CNN, {cnn['test_sources'].get('dailymail', 0):,} Daily Mail)
  (removed: {cnn['removed']['train']} within train, {cnn['removed']['test']} within test,
  {cnn['removed']['test~train']} test copies of train articles).
- Validation: {selection['validation_fraction']:.0%} of each train part, seeded ({training['seed']}),
  stratified by source, near copies of fitting records dropped ({bbc['validation_removed']} +
  {cnn['validation_removed']}): BBC {bbc['validation']}, CNN/DM {cnn['validation']}
  ({cnn['validation_sources'].get('cnn', 0)} CNN, {cnn['validation_sources'].get('dailymail', 0)} Daily Mail).
  The rest of the train parts is the fitting part (BBC {bbc['fitting']}, CNN/DM {cnn['fitting']:,}).
- Every candidate below was fitted on the fitting part of its data mix; the
  engine kept the epoch whose summaries of the whole validation part (both
  corpora) scored best (ROUGE-1 + ROUGE-2 F1, k = reference sentences, oracle
  counting, ranked with the length rule "short"; the rule is applied at
  inference, so each model was trained once and scored under the three
  rules).
- Criterion, fixed in the script before any score was seen: {selection['criterion']}.
  An exact tie would go to the first candidate in the table's order.
- The chosen model was fitted on {training['records']:,} records ({training['sentences']:,}
  candidate sentences, {training['positive_sentences']:,} labelled as summary sentences by the
  greedy ROUGE oracle); epoch {training['best_epoch']} of {len(training['epochs'])} run.
  Options: {', '.join(f'{k}={v}' for k, v in options.items() if k != 'name')}; seed {training['seed']}.
- The whole run (splits, {len(selection['candidates']) // len(RULES)} trainings, validation and test
  scoring) took {seconds / 60:.0f} min on {args.threads} thread(s) ({platform.machine()},
  {os.cpu_count()} CPUs visible, shared with other work, so times are noisy). Model file:
  `{args.output.name}`, {size / 2**20:.2f} MB (weights stored as float16).

## Selection (validation part only)

Cells: ROUGE-1 F1 + ROUGE-2 F1 (x 100) on the validation part; the criterion
is their mean. The chosen candidate is in bold.

| # | data | paragraph_share | encoder | length rule | epoch | {' | '.join(cells)} | criterion |
| ---: | --- | --- | --- | --- | ---: | {' | '.join('---:' for _ in cells)} | ---: |
{candidate_rows}

Chosen: {describe(chosen)}.

## Test metrics (ROUGE F1 x 100, rouge-score with Porter stemming)

The test parts were read once, by this evaluation, after the choice above
was made; nothing was changed after it. k: sentences in the summary, 3 or the
reference's own sentence count. CNN/DM is the pooled test part; CNN and Daily
Mail are its two sources.

| test part | k | engine | R-1 | R-2 | R-L | R-Lsum |
| --- | --- | --- | ---: | ---: | ---: | ---: |
{test_rows}

Against the CNN/DM target "above Lead-3" (R-1): {'; '.join(verdicts)}.

CNN/DM text is lower-cased and tokenized: the splitter ends its sentences at
each lone " . ".

## Limits

Trained on news: BBC articles of 2004-2005 (summaries about 40% of the
article) and CNN/DailyMail stories of 2015 (three or four highlights), given
without headlines; with a headline, the `title_similarity` feature compares
sentences with it rather than with the lead sentence. The document features
(position, paragraphs, lengths, TF-IDF centrality and similarity, word
frequencies) work in any language, but only English news was measured.
"""


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
