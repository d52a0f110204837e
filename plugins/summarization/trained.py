"""The "trained" summarizer: a sentence scorer learnt from articles and their reference summaries.

Each candidate sentence (``centrality.content_sentences``: Markdown/HTML noise
is never scored) gets a probability of belonging to the summary from

- optionally a sentence encoder on the compiled kernels: its words (the
  training vocabulary, unknown words -> the OOV id, CJK text one token per
  character) -> Embedding -> Conv1D(ReLU) -> global max-pool, run as the
  fused kernel;
- document context, ``features.FEATURES``: position, paragraph start and
  the share of sentences that start one (a model may leave that one out),
  lengths, the centrality engine's score and rank on its TF-IDF graph,
  TF-IDF similarity to the first sentence (a news headline when there is
  one) and to the whole document, word frequencies;

joined -> Dense(ReLU) -> Dense(1) -> sigmoid. Training labels come from the
greedy ROUGE oracle (``oracle.py``); the loss is binary cross-entropy, the
optimizer Adam (through the shared trainer), and the epoch kept is the one
whose summaries score best (ROUGE-1 + ROUGE-2 F1, k = reference sentences)
on the validation documents. At
inference, sentences are ranked by probability, times the centrality
engine's length factor as the model's length rule says, with its MMR, so
the summary does not repeat itself. The model file names its features and
its length rule; a file without a rule (written before there was a choice)
ranks as "short".
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from toolkit_plugins.summarization.common import SummarizerEngine
from toolkit_plugins.summarization.features import FEATURES, LENGTH_RULES, WIDTH, Document
from toolkit.engine import DataError, Option, train_settings
from toolkit.records import check_records
from toolkit.text.sentences import Sentence, split_sentences
from toolkit.training import trainer_options

if TYPE_CHECKING:
    import numpy as np

MODEL_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL_FILE = MODEL_DIR / "news.nlpt"
TRAINING_SCRIPT = "scripts/train_default_summarizer.py"
MAX_WORDS = 2**24  # ids travel as float32 (see scorer.SentenceScorer) and stay exact below this
# A model file written before the length rule was an option ranks as it did then.
OLD_LENGTH_RULE = "short"

TRAIN_OPTIONS = {
    **trainer_options(epochs=15, patience=3),
    "batch": Option(int, 64, "Sentences per training step (mini-batch size).", minimum=1),
    "learning_rate": Option(float, 2e-3, "Adam learning rate.", minimum=0, min_open=True, deprecated=("lr",)),
    "max_len": Option(int, 50, f"Words kept per sentence (the first ones); at least the convolution width {WIDTH}.",
                      minimum=WIDTH, deprecated=("maxlen",)),
    "vocab_size": Option(int, 20000, "Vocabulary size (most frequent words of the training articles).",
                         minimum=1, maximum=MAX_WORDS, max_open=True, deprecated=("num_words",)),
    "dim": Option(int, 32, "Word embedding size.", minimum=1),
    "filters": Option(int, 64, f"Convolution filters (width {WIDTH}); 0: no sentence encoder, the document"
                      " features alone (no tokenizing, no convolution: faster).", minimum=0),
    "hidden": Option(int, 32, "Units of the hidden dense layer.", minimum=1),
    "dropout": Option(float, 0.5, "Fraction of the sentence encoding dropped in training.",
                      minimum=0, maximum=1, max_open=True),
    "paragraph_share": Option(bool, True, "Give the scorer the share of the document's sentences that start a"
                              " paragraph (text in paragraphs against text on one line)."),
    "length_rule": Option(str, "short", "When the ranking multiplies the probabilities by the sentence length"
                          " factor: always, short (only for a summary shorter than the probabilities' sum) or"
                          " never.", choices=LENGTH_RULES),
}


def sigmoid(logits: np.ndarray) -> np.ndarray:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -30.0, 30.0)))


def reference_length(summary: str) -> int:
    """Sentences in a reference summary: how many the held-out summaries keep."""
    from toolkit_plugins.summarization.rouge import reference_lines

    return max(1, len(reference_lines(summary).splitlines()))


def labelled(records: list[dict], progress: bool | None, desc: str,
             what: str) -> list[tuple[Document, list[int], str]]:
    """(document, oracle positions in its candidates, summary) of the records whose oracle picks something.

    DataError when there is none: no article has a sentence sharing a word with its summary.
    """
    from toolkit_plugins.summarization.oracle import oracle
    from toolkit.progress import ProgressBar

    out = []
    with ProgressBar(len(records), desc, unit="doc", enabled=progress) as bar:
        for record in records:
            bar.update(1)
            article, summary = record["article"], record["summary"]
            doc = Document(article, split_sentences(article))
            chosen = oracle(doc.texts, summary) if doc.texts else []
            if chosen:
                out.append((doc, chosen, summary))
    if not out:
        raise DataError(f"{what}: none of the {len(records)} records has an article with a sentence that shares"
                        " a word with its summary (are the article and summary fields the right way round?)")
    return out


class TrainedSummarizer(SummarizerEngine):
    name = "trained"
    description = ("Sentence scorer trained on reference summaries (document features, optionally a CNN"
                   " sentence encoder; greedy ROUGE oracle labels) with MMR; ships a model for news.")
    version = "1.0"
    default_model = str(DEFAULT_MODEL_FILE)
    default_model_hint = (f"train it with `python {TRAINING_SCRIPT}` or pass --model FILE"
                          " (from `nlp-tool train summarize`)")
    train_options: ClassVar[dict[str, Option]] = TRAIN_OPTIONS

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        self.model_metadata()
        self.scorer, self.tokenizer, self.metadata = load(self.model)
        self.columns = [FEATURES.index(name) for name in self.metadata["features"]]
        self.length_rule = self.metadata.get("length_rule", OLD_LENGTH_RULE)

    def loaded_metadata(self) -> dict:
        return self.metadata

    def scores(self, doc: Document) -> np.ndarray:
        """Probability of each candidate of ``doc`` to be in the summary."""
        from toolkit.nn import predict

        return sigmoid(predict(self.scorer, doc.inputs(self.tokenizer, self.scorer.maxlen, self.columns))[:, 0])

    def _rank(self, text: str, sentences: list[Sentence], k: int | None) -> list[tuple[int, float]]:
        doc = Document(text, sentences)
        if not doc.candidates:
            return []
        scores = self.scores(doc)
        return [(doc.candidates[i], float(scores[i])) for i in doc.ranked(scores, k, self.length_rule)]

    @classmethod
    def train(cls, records: list[dict], output: str, *, valid: list[dict] | None = None, seed: int = 0,
              progress: bool | None = None, **options: Any) -> dict:
        """Fit on ``records`` ({"article", "summary"}), write one model file to ``output``, return a report.

        With ``valid`` the epoch kept is the one whose summaries of its
        documents score best (ranked by the ``length_rule`` option), and it is
        scored with ROUGE in the report; without, the last epoch is kept.
        """
        import numpy as np

        import toolkit.nn as nn
        from toolkit_plugins.summarization.oracle import rouge12
        from toolkit_plugins.summarization.scorer import SentenceScorer
        from toolkit.nn import save_arrays
        from toolkit.text import WordTokenizer
        from toolkit.training import history_report, model_header, resumed, trainer_settings

        settings = train_settings(cls, options)
        check_records(records, cls.record_fields, "training data", empty=True)
        if valid is not None:
            check_records(valid, cls.record_fields, "validation data", empty=True)
        saved = resumed(settings, output, seed)
        start = time.perf_counter()
        docs = labelled(records, progress, "labelling", "training data")
        held_docs = labelled(valid, progress, "labelling validation", "validation data") if valid else []

        # Without a sentence encoder the model needs no words: an empty vocabulary.
        encoder = settings["filters"] > 0
        if saved is not None:
            tokenizer = WordTokenizer.from_config(saved.setup["tokenizer"])
        else:
            tokenizer = WordTokenizer(num_words=settings["vocab_size"]).fit(
                t for doc, _, _ in docs if encoder for t in doc.texts)
        maxlen = settings["max_len"] if encoder else 0
        names = [name for name in FEATURES if settings["paragraph_share"] or name != "paragraph_share"]
        columns = [FEATURES.index(name) for name in names]
        rule = settings["length_rule"]

        def arrays(part: list) -> tuple[np.ndarray, np.ndarray]:
            x = np.concatenate([doc.inputs(tokenizer, maxlen, columns) for doc, _, _ in part])
            y = np.concatenate([np.isin(np.arange(len(doc.texts)), chosen) for doc, chosen, _ in part])
            return x, y.astype(np.float32)

        x, y = arrays(docs)
        bounds = np.cumsum([0] + [len(doc.texts) for doc, _, _ in held_docs])
        lengths = [reference_length(summary) for _, _, summary in held_docs]

        def held_rouge(_: np.ndarray, logits: np.ndarray) -> float:
            # ROUGE-1 + ROUGE-2 F1 of the summaries the engine would write, k = reference sentences.
            total = 0.0
            for (doc, _, summary), k, a, b in zip(held_docs, lengths, bounds, bounds[1:]):
                picked = doc.ranked(sigmoid(logits[a:b, 0]), k, rule)[:k]
                total += rouge12([doc.texts[k] for k in picked], summary)
            return total / len(held_docs)

        scorer = SentenceScorer(tokenizer.vocab_size, maxlen, len(names), settings["dim"], settings["filters"],
                                settings["hidden"], settings["dropout"], seed=seed)
        history = nn.fit(
            scorer, nn.binary_cross_entropy_with_logits, nn.Adam(scorer, settings["learning_rate"]), x, y,
            batch_size=settings["batch"], validation=arrays(held_docs) if held_docs else None,
            metrics={"rouge12": held_rouge}, resume=saved,
            **trainer_settings(settings, output, seed, progress, setup={"tokenizer": tokenizer.to_config()}),
        )
        seconds = time.perf_counter() - start
        trained = history_report(history)
        header = model_header(
            cls, output, settings, seed, texts=[r["article"] for r in records], records=len(records),
            valid_records=None if valid is None else len(valid),
            seconds=seconds, documents=len(docs), sentences=int(len(y)), positive_sentences=int(y.sum()),
            validation_documents=len(held_docs), **trained)
        metadata = {**header, "features": names, "length_rule": rule, "tokenizer": tokenizer.to_config()}
        # float16 halves the file; the scorer computes in float32 after loading.
        weights = {key: value.astype(np.float16) for key, value, _ in scorer.named_parameters()}
        save_arrays(output, weights, metadata, architecture=scorer.to_config())
        report = {"engine": f"{cls.task}:{cls.name}", "model": str(output), "name": header["name"],
                  "records": len(records), "documents": len(docs), "seconds": round(seconds, 2), **trained}
        if valid is not None:
            report["validation_rouge12"] = round(history.best_value, 6)
            report["metrics"] = cls(model=str(output)).evaluate(valid)
        return report


def load(model: str) -> tuple[Any, Any, dict]:
    """The scorer, tokenizer and metadata of a summarization model file; ModelFileError saying what is wrong."""
    from toolkit_plugins.summarization.scorer import SentenceScorer
    from toolkit.nn import ModelFileError, read_model_file
    from toolkit.nn.layer_configs import layer_from_arrays
    from toolkit.text import WordTokenizer

    config, arrays = read_model_file(model)
    meta = config.get("metadata", {})
    names = meta.get("features")
    if (not isinstance(names, list) or not names or len(set(names)) != len(names)
            or not all(isinstance(name, str) and name in FEATURES for name in names)):
        raise ModelFileError(f"{model}: made for other sentence features ({names});"
                             " retrain it with this version of nlp-tool")
    if meta.get("length_rule", OLD_LENGTH_RULE) not in LENGTH_RULES:
        raise ModelFileError(f"{model}: unknown length rule {meta['length_rule']!r} (this version knows"
                             f" {', '.join(LENGTH_RULES)}); retrain it with this version of nlp-tool")
    try:
        scorer = layer_from_arrays(config["architecture"], arrays, kind=SentenceScorer)
        words = (scorer.maxlen >= WIDTH) if scorer.filters else (scorer.maxlen == 0)
        if scorer.features != len(names) or not words:
            raise ValueError(f"the scorer takes {scorer.features} features and {scorer.maxlen} words,"
                             f" not {len(names)} features and at least {WIDTH} words (0 without encoder)")
        tokenizer = WordTokenizer.from_config(meta["tokenizer"])
        if tokenizer.vocab_size != scorer.vocab_size:
            raise ValueError(f"the vocabulary has {tokenizer.vocab_size} ids, the scorer {scorer.vocab_size}")
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{model}: not a usable summarization model ({type(err).__name__}: {err})") from err
    return scorer, tokenizer, meta
