"""The fixed train/test splits of the summarization corpora in ``../shared/data``.

Neither corpus comes with a split, so one is fixed here, once, for the
shipped trained model (fitted and selected on ``train`` only) and for
benchmarks/summarize.py (scored on ``test`` only). docs/data-splits.md gives
the rule and the counts.

- BBC News Summary (2,225 records): the records in file order, shuffled with
  ``random.Random(0)``; the first 1,000 are train, the other 1,225 test. The
  centrality engine's constants were tuned on the first 500, inside train.
  Each article's first line is its headline (the ``title`` field): it is cut
  from ``article``, so no system, ours or a peer, is given the headline.
- CNN/DailyMail (4,490 records of the test split): split by story (one record
  each), stratified by source, the host of the record's ``url`` (``source``:
  "cnn" or "dailymail"): each source's records shuffled with
  ``random.Random(0)``, the first ``round(n * 2000 / 4490)`` of them train
  (the share of the first split, which put every CNN story in train), the
  rest test; both parts keep file order.

Then near duplicates go (``toolkit.text.duplicates.near_duplicates``: word
8-gram Jaccard >= 0.9, on the articles as given to the systems): within each
part the later copy, then every test record that nearly repeats a record of
the train part as drawn. :func:`carve_validation` holds out validation
records from a train part in the same way.
"""

from __future__ import annotations

import functools
import gzip
import json
import random
import re
from pathlib import Path
from typing import NamedTuple

from toolkit.errors import DataError

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BBC = DATA / "bbc_news_summary" / "test.jsonl.gz"
CNNDM = DATA / "cnn_dailymail" / "test.jsonl.gz"
BBC_TRAIN = 1000
# The train share of the first CNN/DM split (ids test_00000-test_01999), now kept in each source.
CNNDM_TRAIN_SHARE = 2000 / 4490
SEED = 0
SOURCES = {"cnn.com": "cnn", "dailymail.co.uk": "dailymail"}
SOURCE_NAMES = {"bbc": "BBC", "cnn": "CNN", "dailymail": "Daily Mail"}
# The last host of a record's url: the archived page's, after web.archive.org's.
HOST = re.compile(r"https?://([^/]+)")


class Split(NamedTuple):
    """The parts of a corpus after de-duplication, and how many near duplicates each lost."""

    train: list[dict]
    test: list[dict]
    #: records dropped: "train" and "test" (a later copy within the part), "test~train" (a copy of a train record)
    removed: dict[str, int]


def read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def source(url: str) -> str:
    """The site a CNN/DailyMail record's url points to, "cnn" or "dailymail": ValueError for another."""
    hosts = HOST.findall(url)
    host = hosts[-1].lower() if hosts else ""
    for domain, name in SOURCES.items():
        if host == domain or host.endswith("." + domain):
            return name
    raise DataError(f"not a CNN or Daily Mail url: {url!r}")


def deduplicate(first: list[str], second: list[str]) -> tuple[list[int], list[int], dict[str, int]]:
    """The positions kept in two lists of texts: within each the later of two near duplicates goes, and every
    text of ``second`` that nearly repeats one of ``first`` (as given) goes.

    The counts of texts dropped: "first" and "second" (within), "second~first" (across).
    """
    from toolkit.text.duplicates import near_duplicates

    def within(texts: list[str]) -> list[int]:
        later = {i for i, _, _ in near_duplicates(texts)}
        return [i for i in range(len(texts)) if i not in later]

    kept_first, kept_second = within(first), within(second)
    copies = {i for i, _, _ in near_duplicates([second[i] for i in kept_second], first)}
    across = [i for n, i in enumerate(kept_second) if n not in copies]
    return kept_first, across, {"first": len(first) - len(kept_first), "second": len(second) - len(kept_second),
                                "second~first": len(copies)}


def bbc_records(path: Path = BBC) -> list[dict]:
    """BBC News Summary in file order, each article without its first line (the headline, kept in ``title``)."""
    records = read_jsonl_gz(path)
    for record in records:
        head, _, body = record["article"].partition("\n")
        if head.strip() != record["title"].strip():
            raise DataError(f"{path}: record {record['id']} does not start with its title")
        record["article"] = body.lstrip("\n")
        record["source"] = "bbc"
    return records


def cnndm_records(path: Path = CNNDM) -> list[dict]:
    """CNN/DailyMail in file order, each with its ``source`` ("cnn" or "dailymail")."""
    records = read_jsonl_gz(path)
    for record in records:
        record["source"] = source(record["url"])
    return records


def bbc_split(path: Path = BBC) -> Split:
    """The train and test parts of BBC News Summary (see the module docstring)."""
    return _split(bbc_records(path), "bbc")


def cnndm_split(path: Path = CNNDM) -> Split:
    """The train and test parts of the CNN/DailyMail records in ../shared/data (see the module docstring)."""
    return _split(cnndm_records(path), "cnndm")


def _split(records: list[dict], corpus: str) -> Split:
    train, test, removed = _positions(corpus, tuple(r["article"] for r in records),
                                      tuple(r["source"] for r in records))
    return Split([records[i] for i in train], [records[i] for i in test], dict(removed))


# Cached by the articles themselves (the near-duplicate search takes seconds); the records are read
# afresh on each call, so a caller may change its records without changing another's.
@functools.lru_cache(maxsize=None)
def _positions(corpus: str, articles: tuple[str, ...],
               sources: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[tuple[str, int], ...]]:
    """Positions of the train and test records (BBC: in the shuffled order; CNN/DM: in file order) after
    de-duplication, and the counts removed."""
    if corpus == "bbc":
        order = list(range(len(articles)))
        random.Random(SEED).shuffle(order)
        train, test = order[:BBC_TRAIN], order[BBC_TRAIN:]
    else:
        rng = random.Random(SEED)
        drawn: set[int] = set()
        for name in sorted(set(sources)):
            positions = [i for i, s in enumerate(sources) if s == name]
            rng.shuffle(positions)
            drawn.update(positions[: round(len(positions) * CNNDM_TRAIN_SHARE)])
        train, test = sorted(drawn), [i for i in range(len(articles)) if i not in drawn]
    kept_train, kept_test, removed = deduplicate([articles[i] for i in train], [articles[i] for i in test])
    return (tuple(train[i] for i in kept_train), tuple(test[i] for i in kept_test),
            (("train", removed["first"]), ("test", removed["second"]), ("test~train", removed["second~first"])))


def carve_validation(train: list[dict], fraction: float, seed: int = SEED) -> tuple[list[dict], list[dict], int]:
    """(fitting part, validation part, near duplicates removed) of a train part.

    About ``fraction`` of each ``source``'s records go to validation
    (``toolkit.datasets.split_positions``, stratified by source, seeded);
    a validation record that nearly repeats a fitting one is dropped.
    """
    from toolkit.datasets import split_positions

    fit, valid = split_positions([{"label": r["source"]} for r in train], fraction, seed)
    kept_fit, kept_valid, removed = deduplicate([train[i]["article"] for i in fit],
                                                [train[i]["article"] for i in valid])
    return ([train[fit[i]] for i in kept_fit], [train[valid[i]] for i in kept_valid],
            removed["first"] + removed["second"] + removed["second~first"])
