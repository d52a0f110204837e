"""Language identification: our toolkit.text.language against the libraries it could have been, side by side.

    python benchmarks/language_id.py [--split test|dev] [--sentences 1000] [--reviews 2000]
                                     [--peer-reviews 300] [--threads 2] [--only NAME]

Measured per candidate:

- accuracy on sentences of the shared corpora, per corpus and language, and
  over all of them (micro) and the lowest language (min);
- speed: microseconds per sentence (over all those sentences, one call
  each), and per IMDb test review; for ours also in batches of 32
  (``detect_many``, the pipelines' batch size), which is the figure compared
  with classify;
- the cost relative to a classify run: ``toolkit.pipeline("classify")`` (the
  shipped default model) over the same IMDb test reviews, per review, timed
  in this process before and after the candidates (the lower time is used);
- "imdb en": the share of reviews detected as English (the corpus is English,
  bar a few reviews made of cast lists);
- import + first call, in a fresh interpreter (seconds), and the installed
  size of the library's own files (MB; numpy and scipy not counted).

Data (../shared/data, never copied): Tatoeba eng-fra / eng-spa / eng-cmn has
no official split, so each file's pairs, one per distinct non-English
sentence, are shuffled with random.Random(0): the first --sentences are the
test part, the next --sentences the dev part. Tatoeba English is the English
side of a third of each file's part. Multi30k: test2016 (test) or val (dev),
English and German. Our module's choices (prefix length, script rules) were
made on the dev part; the test part is the reported one.

Peers are run as their documentation says, on the whole text, with their
codes mapped to ISO 639-1 as ours are (zh-Hant, cmn, yue -> zh).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from toolkit.threads import use_threads

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--split", choices=("test", "dev"), default="test")
    p.add_argument("--sentences", type=int, default=1000, help="sentences per Tatoeba language")
    p.add_argument("--reviews", type=int, default=2000, help="IMDb test reviews for classify and ours")
    p.add_argument("--peer-reviews", type=int, default=300,
                   help="the first this many of those reviews for the peers (some take 30 ms a review)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default=None, help="run only the candidates whose name contains this")
    return p.parse_args()


args = parse_args()
use_threads(args.threads)


# -- data ---------------------------------------------------------------------


def read_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def tatoeba_part(name: str) -> list[tuple[str, str]]:
    seen: set[str] = set()
    pairs = []
    for line in read_lines(args.data / "tatoeba" / f"{name}.tsv.gz"):
        english, other = line.split("\t")
        if other not in seen:
            seen.add(other)
            pairs.append((english, other))
    random.Random(0).shuffle(pairs)
    n = args.sentences
    return pairs[:n] if args.split == "test" else pairs[n:2 * n]


def corpora() -> dict[tuple[str, str], list[str]]:
    sets: dict[tuple[str, str], list[str]] = {("tatoeba", "en"): []}
    for code, name in (("fr", "eng-fra"), ("es", "eng-spa"), ("zh", "eng-cmn")):
        part = tatoeba_part(name)
        sets[("tatoeba", code)] = [other for _, other in part]
        sets[("tatoeba", "en")] += [english for english, _ in part[: len(part) // 3]]
    m30k = "test2016" if args.split == "test" else "val"
    for code in ("en", "de"):
        sets[("multi30k", code)] = read_lines(args.data / "multi30k" / f"{m30k}.{code}.gz")
    return sets


def imdb_reviews(n: int) -> list[str]:
    with gzip.open(args.data / "imdb" / "test.jsonl.gz", "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    random.Random(0).shuffle(records)  # the file is sorted by label
    return [r["text"] for r in records[:n]]


# -- candidates -----------------------------------------------------------------
# Each: (distribution for the size, import + first call for a fresh interpreter, factory of text -> code).


def iso(code: str | None) -> str:
    from toolkit.text.language import iso_code

    if not code or code in ("un", "xx", "xxx"):
        return "und"
    code = code.split("-")[0].lower()
    return "zh" if code == "cmn" else iso_code(code)


def ours() -> Callable[[str], str]:
    from toolkit.text.language import detect

    return detect


def py3langid() -> Callable[[str], str]:
    import py3langid

    return lambda text: iso(py3langid.classify(text)[0])


def langid() -> Callable[[str], str]:
    import langid

    return lambda text: iso(langid.classify(text)[0])


def lingua(low: bool = False) -> Callable[[str], str]:
    from lingua import LanguageDetectorBuilder

    builder = LanguageDetectorBuilder.from_all_languages()
    detector = (builder.with_low_accuracy_mode() if low else builder).build()

    def detect(text: str) -> str:
        language = detector.detect_language_of(text)
        return iso(language.iso_code_639_1.name) if language else "und"
    return detect


def pycld2() -> Callable[[str], str]:
    import pycld2

    def detect(text: str) -> str:
        try:  # bestEffort: otherwise most short sentences come back "un"
            return iso(pycld2.detect(text, bestEffort=True)[2][0][1])
        except pycld2.error:  # C0/C1 control characters, which IMDb has, are "invalid UTF-8" to it
            return "error"
    return detect


def langdetect() -> Callable[[str], str]:
    import langdetect

    langdetect.DetectorFactory.seed = 0

    def detect(text: str) -> str:
        try:
            return iso(langdetect.detect(text))
        except langdetect.LangDetectException:
            return "und"
    return detect


def cld3() -> Callable[[str], str]:
    import gcld3

    identifier = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)
    return lambda text: iso(identifier.FindLanguage(text=text).language)


CANDIDATES = {
    "ours": (["py3langid"], "from toolkit.text.language import detect; detect('Hello world')", ours),
    "py3langid": (["py3langid"], "import py3langid; py3langid.classify('Hello world')", py3langid),
    "langid": (["langid"], "import langid; langid.classify('Hello world')", langid),
    "lingua": (["lingua-language-detector"], "from lingua import LanguageDetectorBuilder as B; "
               "B.from_all_languages().build().detect_language_of('Hello world')", lingua),
    "lingua-low": (["lingua-language-detector"], "from lingua import LanguageDetectorBuilder as B; "
                   "B.from_all_languages().with_low_accuracy_mode().build().detect_language_of('Hello world')",
                   lambda: lingua(low=True)),
    "pycld2": (["pycld2"], "import pycld2; pycld2.detect('Hello world')", pycld2),
    "langdetect": (["langdetect"], "import langdetect; langdetect.detect('Hello world')", langdetect),
    "cld3": (["cld3-py"], "import gcld3; gcld3.NNetLanguageIdentifier(0, 1000).FindLanguage(text='Hello world')",
             cld3),
}


def installed_mb(distributions: list[str]) -> float:
    total = 0
    for name in distributions:
        for file in importlib.metadata.distribution(name).files or []:
            path = Path(file.locate())
            if path.is_file() and "__pycache__" not in path.parts:
                total += path.stat().st_size
    return total / 1e6


def import_seconds(code: str) -> float:
    """Import and first call in a fresh interpreter: the best of 3."""
    timer = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    return min(float(subprocess.run([sys.executable, "-c", timer], capture_output=True, text=True,
                                    check=True).stdout) for _ in range(3))


def time_per_item(fn: Callable[[str], str], texts: list[str]) -> tuple[list[str], float]:
    start = time.perf_counter()
    out = [fn(t) for t in texts]
    return out, (time.perf_counter() - start) / len(texts) * 1e6


def classify_us(reviews: list[str]) -> float:
    import toolkit

    classify = toolkit.pipeline("classify")
    classify(reviews[:32])  # the model loaded, the kernels warm
    start = time.perf_counter()
    classify(reviews)
    return (time.perf_counter() - start) / len(reviews) * 1e6


# -- run --------------------------------------------------------------------------


def main() -> None:
    sets = corpora()
    reviews = imdb_reviews(args.reviews)
    peer_reviews = reviews[: args.peer_reviews]
    sentences = [(lang, text) for (_, lang), texts in sets.items() for text in texts]
    columns = [f"{corpus[:4]} {lang}" for corpus, lang in sets]
    print(f"split: {args.split}; sentences: " + ", ".join(f"{c} {len(t)}" for c, t in zip(columns, sets.values()))
          + f"; IMDb test reviews: {len(reviews)} (peers: the first {len(peer_reviews)})", flush=True)
    classify_first = classify_us(reviews)

    rows = []
    for name, (distributions, first_call, factory) in CANDIDATES.items():
        if args.only and args.only not in name:
            continue
        try:
            fn = factory()
            fn("warm up")
        except ImportError as error:
            print(f"{name}: skipped ({error})")
            continue
        row: dict = {"name": name}
        out, row["us/sent"] = time_per_item(fn, [text for _, text in sentences])
        i = 0
        for column, texts in zip(columns, sets.values()):
            hits = sum(o == lang for o, (lang, _) in zip(out[i:i + len(texts)], sentences[i:]))
            row[column] = 100 * hits / len(texts)
            i += len(texts)
        row["all"] = 100 * sum(o == lang for o, (lang, _) in zip(out, sentences)) / len(sentences)
        by_lang: dict[str, list[int]] = {}
        for o, (lang, _) in zip(out, sentences):
            by_lang.setdefault(lang, []).append(o == lang)
        row["min"] = min(100 * sum(v) / len(v) for v in by_lang.values())
        texts = reviews if name == "ours" else peer_reviews
        out, row["us/review"] = time_per_item(fn, texts)
        row["imdb en"] = 100 * sum(o == "en" for o in out) / len(out)
        if name == "ours":
            from toolkit.text.language import detect_many

            start = time.perf_counter()
            batched = [code for i in range(0, len(reviews), 32) for code in detect_many(reviews[i:i + 32])]
            row["us/review (batch 32)"] = (time.perf_counter() - start) / len(reviews) * 1e6
            assert batched == out, "detect_many differs from detect"
        row["import s"] = import_seconds(first_call)
        row["MB"] = installed_mb(distributions)
        rows.append(row)
        print(f"  {name} done", file=sys.stderr, flush=True)

    per_review = min(classify_first, classify_us(reviews))
    print(f"\nclassify (shipped default model, toolkit.pipeline, {args.threads} threads): "
          f"{per_review:.0f} us per review\n")
    head = ["candidate", *columns, "all", "min", "us/sent", "us/review", "% classify", "imdb en", "import s", "MB"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(" --- " if h == "candidate" else " ---: " for h in head) + "|")
    for row in rows:
        review_us = row.get("us/review (batch 32)", row["us/review"])
        cells = [row["name"], *(f"{row[c]:.1f}" for c in columns), f"{row['all']:.2f}", f"{row['min']:.1f}",
                 f"{row['us/sent']:.0f}", f"{review_us:.0f}", f"{100 * review_us / per_review:.1f}",
                 f"{row['imdb en']:.1f}", f"{row['import s']:.3f}", f"{row['MB']:.1f}"]
        print("| " + " | ".join(cells) + " |")
    for row in rows:
        if row["name"] == "ours":
            print(f"\nours: {row['us/review (batch 32)']:.1f} us per review in batches of 32 "
                  f"({100 * row['us/review (batch 32)'] / per_review:.2f} % of classify), "
                  f"{row['us/review']:.1f} us one call per review "
                  f"({100 * row['us/review'] / per_review:.2f} %); target <= 5 %")
            others = [r for r in rows if r["name"] != "ours"]
            for other in others:
                print(f"  vs {other['name']}: accuracy {row['all'] - other['all']:+.2f} points; "
                      f"{other['name']} takes {other['us/review'] / row['us/review (batch 32)']:.1f}x ours per review")


if __name__ == "__main__":
    main()
