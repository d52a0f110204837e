"""Extractive summarization, our engines vs Lead-k and sumy: ROUGE and speed on BBC News Summary and CNN/DailyMail.

    python benchmarks/summarize.py [--corpus bbc|cnndm|all] [--limit N] [--systems a,b,...] [--json FILE]

Contenders, all run in one process on the same documents:

- ours: every engine registered for the task "summarize" (found through the
  registry at run time, so a new engine shows up by itself), called through
  ``toolkit.pipeline("summarize", engine=NAME, sentences=k)``; an engine that
  cannot load (say, a trained engine whose default model is absent) is
  skipped with the reason. The ``lead`` engine is the Lead-3 / Lead-k baseline;
- sumy 0.13 (``pip install sumy``, benchmark-only): LexRank, TextRank, LSA,
  Luhn, SumBasic and KL, with sumy's English stop words and its Snowball
  stemmer, as its command line sets them up.

Same input, same sentences, same length rule for everybody. Every system
gets the same text, without a headline (corpora.py cuts the BBC article's
first line, its title, for all of them), and sees the sentences of
``toolkit.text.sentences.split_sentences``: our engines split the text
themselves; sumy gets a document built from those sentences (sumy's own
parser needs NLTK's punkt data, which is not installed), with words from
``SumyTokenizer`` below. Two length rules, each a table: k = 3 sentences,
and k = the number of sentences in the reference.

Data: the fixed test parts of plugins/summarization/corpora.py, near
duplicates of train and of each other removed (docs/data-splits.md): BBC News
Summary, 1,103 articles; CNN/DailyMail, 2,487 articles (606 CNN, 1,881 Daily
Mail; lower-cased and tokenized, which the splitter handles: a lone " . "
ends a sentence). Each CNN/DailyMail table is followed by the ROUGE of the
same summaries on each source's articles.

ROUGE: F1 x 100 of ROUGE-1, -2, -L and -Lsum from the rouge-score package
with Porter stemming, as plugins/summarization/rouge.py computes it:
references split into lines with its ``reference_lines`` (the BBC references
lack the space after full stops), one chosen sentence per line in the
prediction. Its tokenizer is memoised here (references and sentences come
back once per system), which gives the same numbers in a fraction of the time.

Speed: documents per second of each system alone, sentence splitting
included for everybody, ROUGE excluded: per wall-clock second and per CPU
second of this process (the latter is steadier on a shared machine). Systems
take turns on chunks of CHUNK documents, so background load hits them alike.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import toolkit  # noqa: E402
from toolkit_plugins.summarization.corpora import BBC, CNNDM, SOURCE_NAMES, bbc_split, cnndm_split  # noqa: E402
from toolkit_plugins.summarization.rouge import METRICS, reference_lines  # noqa: E402
from toolkit.text.sentences import split_sentences  # noqa: E402

TASK = "summarize"
# Systems take turns in chunks of this many documents. Turns of one document
# each ran every system on caches another had just filled: a system timed
# right after sumy ran 1.5x slower than on its own.
CHUNK = 20
SUMY = {
    "sumy-lexrank": ("sumy.summarizers.lex_rank", "LexRankSummarizer"),
    "sumy-textrank": ("sumy.summarizers.text_rank", "TextRankSummarizer"),
    "sumy-lsa": ("sumy.summarizers.lsa", "LsaSummarizer"),
    "sumy-luhn": ("sumy.summarizers.luhn", "LuhnSummarizer"),
    "sumy-sumbasic": ("sumy.summarizers.sum_basic", "SumBasicSummarizer"),
    "sumy-kl": ("sumy.summarizers.kl", "KLSummarizer"),
}
CORPORA = {"bbc": "BBC News Summary", "cnndm": "CNN/DailyMail"}
RULES = {"k3": "k = 3 sentences", "kref": "k = sentences in the reference"}

# sumy's own tokenizer keeps only tokens of letters, with inner ' or -.
LETTERS = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")


class SumyTokenizer:
    """What sumy's Sentence and parsers ask of a tokenizer, without NLTK data."""

    language = "english"

    @staticmethod
    def to_words(sentence: str) -> tuple[str, ...]:
        return tuple(LETTERS.findall(sentence))

    @staticmethod
    def to_sentences(paragraph: str) -> tuple[str, ...]:
        return tuple(s.text for s in split_sentences(paragraph))


Summarize = Callable[[str], list[str]]


class System:
    """One contender: ``prepare(k)`` (untimed) fixes the summary length, then ``summarize(text)``
    gives the chosen sentences in document order."""

    def __init__(self, name: str, make: Callable[[int], Summarize]) -> None:
        self.name = name
        self._make = make
        self.summarize: Summarize | None = None

    def prepare(self, k: int) -> None:
        self.summarize = self._make(k)


def engine_system(name: str) -> System:
    """A registered engine through the public pipeline; raises whatever stops it from loading."""
    toolkit.pipeline(TASK, engine=name, sentences=3)("Check that it loads. And runs.")

    def make(k: int) -> Summarize:
        pipe = toolkit.pipeline(TASK, engine=name, sentences=k)
        return lambda text: [s["text"] for s in pipe(text)["sentences"]]

    return System(name, make)


def sumy_system(name: str) -> System:
    """A sumy summarizer fed with our sentences; raises ImportError without sumy."""
    import importlib

    from sumy.models.dom import ObjectDocumentModel, Paragraph
    from sumy.models.dom import Sentence as SumySentence
    from sumy.nlp.stemmers import Stemmer
    from sumy.utils import get_stop_words

    module, cls = SUMY[name]
    summarizer = getattr(importlib.import_module(module), cls)(Stemmer("english"))
    summarizer.stop_words = get_stop_words("english")
    tokenizer = SumyTokenizer()

    def make(k: int) -> Summarize:
        def summarize(text: str) -> list[str]:
            sentences = [SumySentence(s.text, tokenizer) for s in split_sentences(text)]
            document = ObjectDocumentModel([Paragraph(sentences)])
            return [str(s) for s in summarizer(document, k)]

        return summarize

    return System(name, make)


def available_systems(wanted: list[str] | None) -> list[System]:
    """Every contender asked for (all by default), the ones that cannot run reported and left out."""
    systems = []
    for name in list(toolkit.tasks()[TASK]) + list(SUMY):
        if wanted is not None and name not in wanted:
            continue
        try:
            systems.append(sumy_system(name) if name in SUMY else engine_system(name))
        except Exception as error:  # any engine may fail its own way; the others still run
            print(f"{name}: skipped ({type(error).__name__}: {error})")
    return systems


class CachedTokenizer:
    """rouge-score's default tokenizer with Porter stemming, memoised per text and per word."""

    def __init__(self) -> None:
        from nltk.stem import porter
        from rouge_score import tokenize

        self._stemmer = SimpleNamespace(stem=functools.lru_cache(maxsize=None)(porter.PorterStemmer().stem))
        self._tokenize = tokenize.tokenize
        self._cache: dict[str, list[str]] = {}

    def tokenize(self, text: str) -> list[str]:
        tokens = self._cache.get(text)
        if tokens is None:
            tokens = self._cache[text] = self._tokenize(text, self._stemmer)
        return tokens


class Rouge:
    """Mean ROUGE F1 x 100, the numbers of plugins/summarization/rouge.py's ``rouge_f1``."""

    def __init__(self) -> None:
        from rouge_score import rouge_scorer

        self._scorer = rouge_scorer.RougeScorer(list(METRICS), tokenizer=CachedTokenizer())

    def __call__(self, references: list[str], predictions: list[list[str]]) -> dict[str, float]:
        totals = dict.fromkeys(METRICS, 0.0)
        for reference, chosen in zip(references, predictions, strict=True):
            scores = self._scorer.score(reference, "\n".join(chosen))
            for name in METRICS:
                totals[name] += scores[name].fmeasure
        return {name: 100.0 * total / max(len(references), 1) for name, total in totals.items()}


def load(corpus: str, limit: int | None) -> tuple[list[str], list[str], list[str]]:
    """(articles, references with one sentence per line, sources) of a corpus's test part."""
    path = BBC if corpus == "bbc" else CNNDM
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the benchmark needs ../shared/data beside the checkout")
    test = (bbc_split() if corpus == "bbc" else cnndm_split()).test[:limit]
    return [r["article"] for r in test], [reference_lines(r["summary"]) for r in test], [r["source"] for r in test]


def run_rule(systems: list[System], articles: list[str], lengths: list[int]) -> tuple[dict, dict, dict]:
    """Each system's chosen sentences per article, and its total wall and CPU seconds; documents grouped by k."""
    outputs: dict[str, list] = {s.name: [None] * len(articles) for s in systems}
    wall = dict.fromkeys(outputs, 0.0)
    cpu = dict.fromkeys(outputs, 0.0)
    for k in sorted(set(lengths)):
        for system in systems:
            system.prepare(k)
        rows = [i for i, n in enumerate(lengths) if n == k]
        for first in range(0, len(rows), CHUNK):
            chunk = rows[first : first + CHUNK]
            for system in systems:
                for i in chunk:
                    start, start_cpu = time.perf_counter(), time.process_time()
                    outputs[system.name][i] = system.summarize(articles[i])
                    cpu[system.name] += time.process_time() - start_cpu
                    wall[system.name] += time.perf_counter() - start
    return outputs, wall, cpu


def source_rows(rouge: Rouge, systems: list[System], references: list[str], outputs: dict[str, list],
                sources: list[str]) -> list[dict]:
    """ROUGE of each system's summaries on each source's documents (none for a corpus of one source)."""
    if len(set(sources)) < 2:
        return []
    rows = []
    for name in sorted(set(sources)):
        rows_of = [i for i, s in enumerate(sources) if s == name]
        for system in systems:
            scores = rouge([references[i] for i in rows_of], [outputs[system.name][i] for i in rows_of])
            rows.append({"source": name, "system": system.name, "documents": len(rows_of),
                         **{m: round(v, 2) for m, v in scores.items()}})
    return rows


def source_table(title: str, rows: list[dict]) -> str:
    names = list(dict.fromkeys(row["source"] for row in rows))
    counts = {row["source"]: row["documents"] for row in rows}
    lines = [f"{title}, by source: " + ", ".join(f"{SOURCE_NAMES[n]} {counts[n]:,}" for n in names),
             f"{'system':<16}" + "".join(f"{SOURCE_NAMES[n] + ' ' + label:>18}" for n in names
                                         for label in ("R-1", "R-2", "R-Lsum"))]
    for system in dict.fromkeys(row["system"] for row in rows):
        by_source = {row["source"]: row for row in rows if row["system"] == system}
        lines.append(f"{system:<16}" + "".join(f"{by_source[n][m]:18.2f}" for n in names
                                              for m in ("rouge1", "rouge2", "rougeLsum")))
    return "\n".join(lines)


def table(title: str, rows: list[dict]) -> str:
    lines = [title, f"{'system':<16}{'R-1':>8}{'R-2':>8}{'R-L':>8}{'R-Lsum':>8}{'docs/s':>10}{'docs/cpu-s':>12}"]
    for row in rows:
        lines.append(f"{row['system']:<16}" + "".join(f"{row[m]:8.2f}" for m in METRICS)
                     + f"{row['docs_per_second']:10.1f}{row['docs_per_cpu_second']:12.1f}")
    peer = next((row for row in rows if row["system"] == "sumy-lexrank"), None)
    for ours in rows:
        if peer and ours["system"] in ("trained", "centrality"):
            lines.append(f"speed {ours['system']} / sumy-lexrank: {ours['docs_per_second'] / peer['docs_per_second']:.1f}x"
                         f" (wall), {ours['docs_per_cpu_second'] / peer['docs_per_cpu_second']:.1f}x (CPU)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", choices=["bbc", "cnndm", "all"], default="all")
    p.add_argument("--limit", type=int, default=None,
                   help="only the first N test articles of each corpus (CNN/DM in file order: CNN stories first)")
    p.add_argument("--systems", default=None,
                   help=f"comma-separated contenders (default: all; the sumy ones are {', '.join(SUMY)})")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    if args.systems is not None:
        args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
        unknown = sorted(set(args.systems) - set(toolkit.tasks()[TASK]) - set(SUMY))
        if unknown or not args.systems:
            p.error(f"unknown system(s) {', '.join(unknown) or '(none given)'}; known: "
                    f"{', '.join(list(toolkit.tasks()[TASK]) + list(SUMY))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    systems = available_systems(args.systems)
    if not systems:
        print("no system can run", file=sys.stderr)
        return 1
    results = []
    for corpus in (["bbc", "cnndm"] if args.corpus == "all" else [args.corpus]):
        try:
            articles, references, sources = load(corpus, args.limit)
        except FileNotFoundError as error:
            print(error, file=sys.stderr)
            return 2
        rouge = Rouge()
        rules = {"k3": [3] * len(articles), "kref": [r.count("\n") + 1 for r in references]}
        for rule, lengths in rules.items():
            outputs, wall, cpu = run_rule(systems, articles, lengths)
            rows = [{"corpus": corpus, "rule": rule, "system": s.name, "documents": len(articles),
                     **{m: round(v, 2) for m, v in rouge(references, outputs[s.name]).items()},
                     "seconds": round(wall[s.name], 3), "cpu_seconds": round(cpu[s.name], 3),
                     "docs_per_second": round(len(articles) / max(wall[s.name], 1e-9), 1),
                     "docs_per_cpu_second": round(len(articles) / max(cpu[s.name], 1e-9), 1)}
                    for s in systems]
            title = f"\n{CORPORA[corpus]} test ({len(articles):,} articles), {RULES[rule]}"
            print(table(title, rows), flush=True)
            by_source = source_rows(rouge, systems, references, outputs, sources)
            if by_source:
                print(source_table(title, by_source), flush=True)
            results += rows + [{"corpus": corpus, "rule": rule, **row} for row in by_source]
            if args.json:  # after every table, so a long run that is stopped keeps what it measured
                args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
