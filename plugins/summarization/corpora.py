"""The fixed train/test splits of the summarization corpora in ``../shared/data``.

Neither corpus comes with a split, so one is fixed here, once, for the
shipped trained model (fitted on ``train`` only) and for
benchmarks/summarize.py (scored on ``test`` only):

- BBC News Summary (2,225 records): the records in file order, shuffled with
  ``random.Random(0)``; the first 1,000 are train, the other 1,225 test. The
  centrality engine's constants were tuned on the first 500, inside train.
- CNN/DailyMail (4,490 records of the test split): ids ``test_00000`` to
  ``test_01999`` (the first 2,000 in file order) are train, the other 2,490 test.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BBC = DATA / "bbc_news_summary" / "test.jsonl.gz"
CNNDM = DATA / "cnn_dailymail" / "test.jsonl.gz"
BBC_TRAIN = 1000
CNNDM_TRAIN = 2000


def read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def bbc_split(path: Path = BBC) -> tuple[list[dict], list[dict]]:
    """(train, test) records of BBC News Summary."""
    records = read_jsonl_gz(path)
    random.Random(0).shuffle(records)
    return records[:BBC_TRAIN], records[BBC_TRAIN:]


def cnndm_split(path: Path = CNNDM) -> tuple[list[dict], list[dict]]:
    """(train, test) records of the CNN/DailyMail part in ../shared/data."""
    records = read_jsonl_gz(path)
    return records[:CNNDM_TRAIN], records[CNNDM_TRAIN:]
