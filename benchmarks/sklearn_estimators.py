"""toolkit.sklearn's TextClassifier on an IMDb slice, beside a scikit-learn TF-IDF + logistic regression.

    python benchmarks/sklearn_estimators.py [--train 5000] [--test 5000] [--seed 0]

Trains each estimator on ``--train`` random IMDb training reviews and
scores it on ``--test`` random test reviews (../shared/data/imdb; the files
are sorted by label, so both are shuffled with ``--seed``), then times
``GridSearchCV`` over the ngram engine's ``c`` with one and two worker
processes. Reported: fit and predict wall time, test accuracy, pickled
size. The numbers of docs/sklearn.md come from this script.
"""

from __future__ import annotations

import argparse
import gzip
import json
import pickle
import random
import time
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from toolkit.sklearn import TextClassifier

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb"


def reviews(part: str, count: int, seed: int) -> tuple[list[str], list[str]]:
    with gzip.open(DATA / f"{part}.jsonl.gz", "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    random.Random(seed).shuffle(rows)
    return [row["text"] for row in rows[:count]], [row["label"] for row in rows[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=5000)
    parser.add_argument("--test", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    texts, labels = reviews("train", args.train, args.seed)
    test_texts, test_labels = reviews("test", args.test, args.seed)
    contenders = {
        "TextClassifier() (ngram)": TextClassifier(),
        'TextClassifier("cnn", epochs=3)': TextClassifier("cnn", epochs=3),
        'TextClassifier("ensemble", valid_split=0.1)': TextClassifier("ensemble", valid_split=0.1),
        "TfidfVectorizer(1-2 grams, min_df 2) + LogisticRegression": make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2), LogisticRegression(max_iter=1000)),
    }
    print(f"| estimator | fit s | predict {args.test} s | test accuracy | pickled MB |\n|---|---|---|---|---|")
    for name, estimator in contenders.items():
        start = time.perf_counter()
        estimator.fit(texts, labels)
        fitted = time.perf_counter() - start
        start = time.perf_counter()
        accuracy = estimator.score(test_texts, test_labels)
        predicted = time.perf_counter() - start
        size = len(pickle.dumps(estimator)) / 1e6
        print(f"| {name} | {fitted:.1f} | {predicted:.1f} | {accuracy:.4f} | {size:.1f} |")
    for jobs in (1, 2):
        start = time.perf_counter()
        search = GridSearchCV(TextClassifier(), {"c": [0.1, 1.0, 10.0]}, cv=3, n_jobs=jobs).fit(texts, labels)
        print(f"GridSearchCV c in (0.1, 1, 10), cv=3, n_jobs={jobs}: {time.perf_counter() - start:.1f} s,"
              f" best {search.best_params_}, cv accuracy {search.best_score_:.4f},"
              f" test accuracy {search.score(test_texts, test_labels):.4f}")


if __name__ == "__main__":
    main()
