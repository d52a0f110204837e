"""Text classification, our engines vs the usual peers: IMDb test accuracy and speed, the same models on
out-of-domain sentences, ChnSentiCorp (Chinese), AG News cross-validated.

    python benchmarks/classify.py [--threads 2] [--limit N] [--skip-fasttext] [--skip-chinese] [--skip-agnews]
        [--only NAME] [--cnn-epochs N]

Contenders, all trained and scored in one process, one after the other:

- tfidf-lr: scikit-learn TfidfVectorizer (word 1-2-grams, min_df 2,
  sublinear tf) + LogisticRegression (C 10, lbfgs; multinomial for
  multi-class);
- nb-lr: NB-weighted bigram logistic regression (Wang & Manning 2012, NBSVM
  with a logistic loss): binary word 1-2-gram counts scaled by the log-count
  ratio r = log((p / |p|1) / (q / |q|1)), alpha 1, then LogisticRegression
  (C 1, liblinear, dual); one-vs-rest with one r per class for multi-class;
- fasttext: fastText supervised (`pip install fasttext`), wordNgrams 2,
  dim 100, epoch 10, lr 0.5, on lower-cased text with punctuation split off;
  its row is skipped, with the reason, when the module does not import;
- ours:shipped (IMDb and UCI; and ChnSentiCorp, the Chinese model shipped beside it): the model shipped in
  the package that ``nlp-tool classify`` gives the language (nothing trained; "train s" is 0);
- ours: every engine registered for the task "classify" (found through the
  registry at run time), trained with ``EngineClass.train(records,
  output=FILE, seed=...)`` on its default options, then run through
  ``toolkit.pipeline("classify", engine=NAME, model=FILE)`` on all test texts
  in batches of 256.

The peers see the text with IMDb's ``<br />`` tags replaced by spaces; our
engines get the raw text (they must cope with it themselves). Chinese has no
spaces between words: there the peers' features are character 1-3-grams (our
engines' default, ``cjk="char"``), and fastText, which reads words, sits out.

Data: ../shared/data/imdb (25,000 train / 25,000 test reviews; the files are
sorted by label, so they are shuffled with --seed); ../shared/data/uci_sentiment_sentences
(UCI Sentiment Labelled Sentences: 1,000 amazon, yelp and imdb sentences each,
scored by the models trained on IMDb train, zero-shot: amazon and yelp are the
out-of-domain measure, the imdb sentences overlap IMDb test), ../shared/data/chnsenticorp (9,600 train /
1,200 test hotel, laptop and book reviews; non-commercial terms) and ../shared/data/agnews
(only the official test split exists: 7,600 headlines + descriptions, 4
classes). IMDb and ChnSentiCorp: train on train, score on test. AG News: 5-fold stratified
cross-validation (folds fixed by --seed), each contender trained per fold.

Reported per contender: accuracy (IMDb test, then each UCI file); training wall time (s), vectorization
included; prediction speed on the whole test set (reviews/s), tokenization /
vectorization included, and for our engines loading the model file too. For
AG News: mean and standard deviation of the fold accuracies, and the mean
training time per fold.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from toolkit.threads import use_threads

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="folder holding imdb/, uci_sentiment_sentences/, chnsenticorp/ and agnews/")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None,
                   help="use only this many train and test reviews of each set, and AG News examples (smoke runs)")
    p.add_argument("--skip-fasttext", action="store_true")
    p.add_argument("--skip-chinese", action="store_true", help="leave out the ChnSentiCorp part")
    p.add_argument("--skip-agnews", action="store_true", help="leave out the AG News part")
    p.add_argument("--only", metavar="NAME[,NAME...]", default=None,
                   help="run only the contenders whose name contains one of the NAMEs, e.g. --only ngram,shipped")
    p.add_argument("--cnn-epochs", type=int, default=None,
                   help="training epochs for our engines that take an 'epochs' option (default: theirs)")
    p.add_argument("--folds", type=int, default=5, help="AG News cross-validation folds")
    return p.parse_args()


args = parse_args()
use_threads(args.threads)

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402

import toolkit  # noqa: E402
from toolkit.plugins import get_registry  # noqa: E402

TASK = "classify"
PREDICT_BATCH = 256
UCI_SETS = ("amazon", "yelp", "imdb")  # amazon and yelp: other domains; imdb: overlaps IMDb test


def clean(text: str) -> str:
    return text.replace("<br />", " ")


# -- peers --------------------------------------------------------------------


# Chinese: character 1-3-grams where the peers read word 1-2-grams elsewhere.
CHARACTERS = {"analyzer": "char", "ngram_range": (1, 3)}


class TfidfLR:
    name = "tfidf-lr"

    def __init__(self, features: dict | None = None) -> None:
        self.features = features or {"ngram_range": (1, 2)}

    def fit(self, texts: list[str], labels: np.ndarray) -> None:
        self.vectorizer = TfidfVectorizer(min_df=2, sublinear_tf=True, preprocessor=self.prep, **self.features)
        self.model = LogisticRegression(C=10, max_iter=1000)
        self.model.fit(self.vectorizer.fit_transform(texts), labels)

    @staticmethod
    def prep(text: str) -> str:
        return clean(text).lower()

    def predict(self, texts: list[str]) -> np.ndarray:
        return self.model.predict(self.vectorizer.transform(texts))


class NBLR:
    """NBSVM-style log-count-ratio features, logistic regression; one-vs-rest for more than two classes."""

    name = "nb-lr"

    def __init__(self, features: dict | None = None) -> None:
        self.features = features or {"ngram_range": (1, 2), "token_pattern": r"\w+|[!?]"}

    def fit(self, texts: list[str], labels: np.ndarray) -> None:
        self.vectorizer = CountVectorizer(binary=True, preprocessor=TfidfLR.prep, **self.features)
        x = self.vectorizer.fit_transform(texts)
        self.classes = np.unique(labels)
        # Two classes: one model, "classes[1] vs classes[0]".
        targets = self.classes[1:] if len(self.classes) == 2 else self.classes
        self.ratios, self.models = [], []
        for c in targets:
            inside = labels == c
            p = np.asarray(x[inside].sum(axis=0)).ravel() + 1.0
            q = np.asarray(x[~inside].sum(axis=0)).ravel() + 1.0
            r = np.log((p / p.sum()) / (q / q.sum()))
            model = LogisticRegression(C=1, solver="liblinear", dual=True, max_iter=1000)
            model.fit(sp.csr_matrix(x.multiply(r)), inside)
            self.ratios.append(r)
            self.models.append(model)

    def predict(self, texts: list[str]) -> np.ndarray:
        x = self.vectorizer.transform(texts)
        margins = np.column_stack([m.decision_function(sp.csr_matrix(x.multiply(r)))
                                   for r, m in zip(self.ratios, self.models)])
        if len(self.classes) == 2:
            return self.classes[(margins[:, 0] > 0).astype(int)]
        return self.classes[margins.argmax(axis=1)]


class FastText:
    name = "fasttext"
    TOKEN = re.compile(r"\w+|[^\w\s]")

    def __init__(self, fasttext, workdir: str) -> None:
        self.fasttext = fasttext
        self.workdir = workdir

    def prep(self, text: str) -> str:
        return " ".join(self.TOKEN.findall(clean(text).lower()))

    def fit(self, texts: list[str], labels: np.ndarray) -> None:
        path = os.path.join(self.workdir, "fasttext.train")
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(f"__label__{label.replace(' ', '_')} {self.prep(text)}\n"
                         for text, label in zip(texts, labels))
        self.labels = {f"__label__{label.replace(' ', '_')}": label for label in np.unique(labels)}
        self.model = self.fasttext.train_supervised(path, wordNgrams=2, dim=100, epoch=10, lr=0.5, minCount=1,
                                                    thread=args.threads, seed=args.seed, verbose=0)

    def predict(self, texts: list[str]) -> np.ndarray:
        predicted, _ = self.model.predict([self.prep(t) for t in texts])
        return np.array([self.labels[p[0]] for p in predicted])


class Ours:
    """One of our engines: train() to a model file, predict through toolkit.pipeline."""

    def __init__(self, engine_class: type, workdir: str) -> None:
        self.engine_class = engine_class
        self.name = f"ours:{engine_class.name}"
        self.path = os.path.join(workdir, f"{engine_class.name}.model")
        self.options = {}
        if args.cnn_epochs is not None and "epochs" in engine_class.train_options:
            self.options["epochs"] = args.cnn_epochs

    def fit(self, texts: list[str], labels: np.ndarray) -> None:
        records = [{"text": t, "label": str(y)} for t, y in zip(texts, labels)]
        self.engine_class.train(records, output=self.path, seed=args.seed, progress=False, **self.options)

    def predict(self, texts: list[str]) -> np.ndarray:
        classify = toolkit.pipeline(TASK, engine=self.engine_class.name, model=self.path, batch_size=PREDICT_BATCH)
        return np.array([r["label"] for r in classify(texts)])


class Shipped:
    """The model shipped for ``language``, as ``nlp-tool classify --language`` uses it: nothing to train."""

    name = "ours:shipped"

    def __init__(self, language: str) -> None:
        self.language = language

    def fit(self, texts: list[str], labels: np.ndarray) -> None:
        pass

    def predict(self, texts: list[str]) -> np.ndarray:
        classify = toolkit.pipeline(TASK, language=self.language, batch_size=PREDICT_BATCH)
        return np.array([r["label"] for r in classify(texts)])


def contenders(workdir: str, chinese: bool = False) -> list:
    found = [TfidfLR(CHARACTERS), NBLR(CHARACTERS)] if chinese else [TfidfLR(), NBLR()]
    if chinese:
        print("fasttext: sits out (it reads words, and Chinese has no spaces between them)")
    elif args.skip_fasttext:
        print("fasttext: skipped (--skip-fasttext)")
    else:
        try:
            import fasttext
        except ImportError as error:
            print(f"fasttext: skipped, it does not import ({error}); pip install fasttext (or fasttext-wheel)")
        else:
            found.append(FastText(fasttext, workdir))
    engines = get_registry().tasks().get(TASK, {})
    if not engines:
        print(f"ours: skipped, no engine is registered for the task {TASK!r} (tasks: {', '.join(toolkit.tasks())})")
    for entry in engines.values():
        found.append(Ours(entry.engine_class, workdir))
    return [c for c in found if selected(c.name)]


def selected(name: str) -> bool:
    """Whether --only lets the contender ``name`` run."""
    return not args.only or any(part in name for part in args.only.split(","))


# -- data and measurement ------------------------------------------------------


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        sys.exit(f"error: {path} not found (pass --data DIR with imdb/, chnsenticorp/ and agnews/)")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def read_imdb(split: str) -> tuple[list[str], np.ndarray]:
    rows = read_jsonl(args.data / "imdb" / f"{split}.jsonl.gz")
    rows = [rows[i] for i in np.random.default_rng(args.seed).permutation(len(rows))]  # sorted by label
    rows = rows[: args.limit] if args.limit else rows
    return [r["text"] for r in rows], np.array([r["label"] for r in rows])


def read_uci(name: str) -> tuple[list[str], np.ndarray]:
    rows = read_jsonl(args.data / "uci_sentiment_sentences" / f"{name}.jsonl.gz")
    return [r["text"] for r in rows], np.array([r["label"] for r in rows])


def read_chnsenticorp(split: str) -> tuple[list[str], np.ndarray]:
    rows = read_jsonl(args.data / "chnsenticorp" / f"{split}.jsonl.gz")
    if args.limit:
        rows = [rows[i] for i in np.random.default_rng(args.seed).permutation(len(rows))[: args.limit]]
    return [r["text"] for r in rows], np.array([r["label"] for r in rows])


def read_agnews() -> tuple[list[str], np.ndarray]:
    rows = read_jsonl(args.data / "agnews" / "test.jsonl.gz")
    if args.limit:
        rows = [rows[i] for i in np.random.default_rng(args.seed).permutation(len(rows))[: args.limit]]
    return [r["text"] for r in rows], np.array([r["label"] for r in rows])


def timed_fit_predict(contender, train_texts, train_y, test_texts, test_y) -> dict:
    start = time.perf_counter()
    contender.fit(train_texts, train_y)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    predicted = contender.predict(test_texts)
    predict_s = time.perf_counter() - start
    return {"accuracy": float(np.mean(predicted == test_y)), "train_s": train_s, "per_s": len(test_texts) / predict_s}


def run_imdb(workdir: str) -> None:
    train_texts, train_y = read_imdb("train")
    test_texts, test_y = read_imdb("test")
    uci = {name: read_uci(name) for name in UCI_SETS}
    print(f"\nIMDb: {len(train_texts)} train / {len(test_texts)} test reviews; UCI sentences: "
          + ", ".join(f"{name} {len(texts)}" for name, (texts, _) in uci.items()))
    rows = []
    from toolkit_plugins.classification.common import DEFAULT_MODEL_FILE

    shipped = [Shipped("en")] if DEFAULT_MODEL_FILE.is_file() and selected(Shipped.name) else []
    for contender in contenders(workdir) + shipped:
        result = timed_fit_predict(contender, train_texts, train_y, test_texts, test_y)
        # The same fitted model, zero-shot on the sentences (its test reviews' speed is the one reported).
        result["uci"] = {name: float(np.mean(contender.predict(texts) == y)) for name, (texts, y) in uci.items()}
        rows.append((contender.name, result))
        print(f"  {contender.name:<14} accuracy {result['accuracy']:.4f}  train {result['train_s']:.1f} s  "
              f"predict {result['per_s']:,.0f} reviews/s  UCI "
              + " ".join(f"{name} {a:.4f}" for name, a in result["uci"].items()), flush=True)
    print(f"\nIMDb test ({len(test_texts)} reviews) and UCI sentences (zero-shot), threads={args.threads}")
    print(f"{'contender':<16}{'IMDb test':>10}" + "".join(f"{'UCI ' + name:>12}" for name in UCI_SETS)
          + f"{'train s':>10}{'reviews/s':>12}")
    print("-" * (48 + 12 * len(UCI_SETS)))
    for name, r in rows:
        print(f"{name:<16}{100 * r['accuracy']:9.2f}%" + "".join(f"{100 * r['uci'][n]:11.2f}%" for n in UCI_SETS)
              + f"{r['train_s']:10.1f}{r['per_s']:12,.0f}")


def run_chnsenticorp(workdir: str) -> None:
    train_texts, train_y = read_chnsenticorp("train")
    test_texts, test_y = read_chnsenticorp("test")
    print(f"\nChnSentiCorp: {len(train_texts)} train / {len(test_texts)} test reviews")
    shipped = [Shipped("zh")] if selected(Shipped.name) else []
    rows = []
    for contender in contenders(workdir, chinese=True) + shipped:
        rows.append((contender.name, timed_fit_predict(contender, train_texts, train_y, test_texts, test_y)))
        print(f"  {contender.name:<14} accuracy {rows[-1][1]['accuracy']:.4f}", flush=True)
    print(f"\nChnSentiCorp test ({len(test_texts)} reviews), threads={args.threads}")
    print(f"{'contender':<16}{'test':>10}{'train s':>10}{'reviews/s':>12}")
    print("-" * 48)
    for name, r in rows:
        print(f"{name:<16}{100 * r['accuracy']:9.2f}%{r['train_s']:10.1f}{r['per_s']:12,.0f}")


def run_agnews(workdir: str) -> None:
    texts, y = read_agnews()
    folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=args.seed).split(np.zeros(len(y)), y))
    print(f"\nAG News: {len(texts)} examples, {len(np.unique(y))} classes, {args.folds}-fold stratified CV")
    rows = []
    for contender in contenders(workdir):
        results = []
        for train_rows, test_rows in folds:
            results.append(timed_fit_predict(contender, [texts[i] for i in train_rows], y[train_rows],
                                             [texts[i] for i in test_rows], y[test_rows]))
        acc = np.array([r["accuracy"] for r in results])
        train_s = float(np.mean([r["train_s"] for r in results]))
        rows.append((contender.name, acc, train_s))
        print(f"  {contender.name:<14} accuracy {acc.mean():.4f} ± {acc.std():.4f} "
              f"(folds {' '.join(f'{a:.4f}' for a in acc)})  train {train_s:.1f} s/fold", flush=True)
    print(f"\nAG News, {args.folds}-fold CV on {len(texts)} examples, threads={args.threads}")
    print(f"{'contender':<16}{'accuracy (mean ± std)':>24}{'train s/fold':>14}")
    print("-" * 54)
    for name, acc, train_s in rows:
        print(f"{name:<16}{100 * acc.mean():15.2f} ± {100 * acc.std():4.2f}%{train_s:14.1f}")


def main() -> int:
    start = time.perf_counter()
    print(f"threads={args.threads} seed={args.seed} limit={args.limit} numpy {np.__version__}")
    with tempfile.TemporaryDirectory(prefix="nlp-tool-bench-") as workdir:
        run_imdb(workdir)
        if not args.skip_chinese:
            run_chnsenticorp(workdir)
        if not args.skip_agnews:
            run_agnews(workdir)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
